"""``pixmix``: its generated pictures, its blends and its options (the checks every
augmenter passes are in test_augmenters.py)."""

import numpy as np
import pytest

from codabench_kit.errors import OptionError
from conftest import run_augmenter


def _numpy(tensor):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(tensor))


def test_pictures_span_zero_to_one_and_differ_per_image(build):
    pictures = _numpy(build("pixmix", seed=2).pictures(16, 40, 48))
    assert pictures.shape == (16, 40, 48, 3)
    np.testing.assert_allclose(pictures.min(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(pictures.max(axis=(1, 2, 3)), 1.0, atol=1e-6)
    assert len({p.tobytes() for p in pictures}) == 16
    grey = np.all(pictures[..., :1] == pictures, axis=(1, 2, 3))
    assert 0 < grey.sum() < 16, "colour and grey pictures, with even odds"


def test_pictures_are_fractal_noise_not_white_noise(build):
    """Neighbouring pixels of a picture are strongly correlated (coarse octaves weigh
    most); in white noise they are not."""
    pictures = _numpy(build("pixmix", seed=3).pictures(32, 96, 96))
    centred = pictures - pictures.mean(axis=(1, 2), keepdims=True)
    neighbours = np.mean(centred[:, 1:] * centred[:, :-1]) / np.mean(centred ** 2)
    assert neighbours > 0.8, neighbours


def test_a_larger_beta_keeps_more_of_the_image(build):
    """a ~ Beta(beta, 1) nears 1 and b ~ Beta(1, beta) nears 0 as beta grows: the mean
    change shrinks."""
    images = np.full((64, 32, 32, 3), 128.0, "float32") + np.random.default_rng(0).uniform(
        -60, 60, (64, 32, 32, 3)).astype("float32")
    labels = np.eye(8, dtype="float32")[np.arange(64) % 8]
    change = []
    for beta in (0.5, 8.0):
        out, _ = run_augmenter(build("pixmix", seed=4, probability=1.0, k=1, beta=beta),
                               images, labels)
        change.append(np.abs(out - images).mean())
    assert change[0] > 2 * change[1], change


def test_magnitude_scales_the_pictures_share(build):
    """At magnitude 0 the picture's weight b is 0: additive blends only rescale the
    image about mid-grey and multiplicative ones only raise it to a power, so two
    different pictures give the same output."""
    images = np.random.default_rng(1).uniform(0, 255, (8, 24, 24, 3)).astype("float32")
    labels = np.eye(8, dtype="float32")
    augmenter = build("pixmix", seed=5, probability=1.0, magnitude=0.0)
    out = _numpy(augmenter.transform_images(images))
    again = build("pixmix", seed=5, probability=1.0, magnitude=0.0)
    again.pictures = lambda *shape: 1.0 - type(again).pictures(again, *shape)  # same draws
    np.testing.assert_allclose(_numpy(again.transform_images(images)), out, atol=1e-3)
    assert not np.allclose(run_augmenter(build("pixmix", seed=5, probability=1.0), images,
                                         labels)[0], out, atol=1.0)


@pytest.mark.parametrize("option, value, expected", [
    ("k", 0, "pixmix.k expects an integer >= 1; received 0"),
    ("k", 2.5, "pixmix.k expects an integer >= 1; received 2.5"),
    ("beta", 0, "pixmix.beta expects a number > 0; received 0"),
    ("beta", "3", "pixmix.beta expects a number > 0; received '3'"),
])
def test_bad_options_say_what_was_expected(build, option, value, expected):
    with pytest.raises(OptionError) as error:
        build("pixmix", **{option: value})
    assert str(error.value) == expected
