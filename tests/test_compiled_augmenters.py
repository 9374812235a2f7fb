"""The fast paths of the augmenters: compiled augmenters (tf.function / XLA) give the
same kind of output as eager ones, deterministically; AugMix's level maps and warp agree
with the plain image operations."""

import math
import warnings

import numpy as np
import pytest

from codabench_kit.training.compiled import Compiled, compile_mode
from conftest import installed_registry

BUILT_INS = [c.name for c in installed_registry().components("augmenter")
             if not c.metadata.get("requires")]


@pytest.fixture(scope="module")
def batch():
    from codabench_kit.data.demo import demo_dataset

    data = demo_dataset(seed=0, per_class=2)
    return (data.images[:16].astype("float32"),
            np.eye(8, dtype="float32")[data.labels[:16]])


@pytest.fixture
def create(registry):
    """``create(name, seed=0)``: the augmenter with its registered options."""
    def create(name, seed=0):
        component = registry.get(name, "augmenter")
        return component.create(seed=seed, **component.options)

    return create


def numpy(pair):
    import keras

    return tuple(np.asarray(keras.ops.convert_to_numpy(t)) for t in pair)


@pytest.mark.parametrize("name", BUILT_INS)
def test_compiled_runs_are_seeded_and_in_range(name, batch, create):
    images, labels = batch
    first, again = Compiled(create(name, seed=3)), Compiled(create(name, seed=3))
    outputs = []
    for x in (images, images[::-1].copy(), images[:10]):  # a new batch size retraces
        a, b = numpy(first(x, labels[:len(x)])), numpy(again(x, labels[:len(x)]))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[0].shape == x.shape and a[0].dtype == np.float32
        assert 0.0 <= a[0].min() and a[0].max() <= 255.0
        outputs.append(a[0])
    assert not np.array_equal(outputs[0], outputs[1][::-1]), f"{name}: same draws twice"


def test_built_ins_declare_how_they_compile(create):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("only the TensorFlow backend compiles augmenters")
    modes = {name: compile_mode(create(name)) for name in BUILT_INS}
    assert modes["flips"] == "xla" and modes["augmix"] == "graph"
    assert set(modes.values()) <= {"xla", "graph", None}


def test_xla_falls_back_to_a_graph_once_with_a_warning(batch, create):
    """``geometric`` uses ImageProjectiveTransform, which XLA cannot compile."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("only the TensorFlow backend compiles augmenters")
    images, labels = batch
    forced = Compiled(create("geometric", seed=1))
    forced.mode = "xla"
    with pytest.warns(RuntimeWarning, match="XLA cannot compile it"):
        out = numpy(forced(images, labels))
    assert forced.mode == "graph"
    graph = Compiled(create("geometric", seed=1))
    graph.mode = "graph"
    np.testing.assert_array_equal(out[0], numpy(graph(images, labels))[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        forced(images, labels)


def test_third_party_augmenters_run_eagerly(batch):
    calls = []

    def plain(images, labels):
        calls.append(type(images))
        return images, labels

    images, labels = batch
    assert compile_mode(plain) is None
    Compiled(plain)(images, labels)
    assert calls == [np.ndarray]


@pytest.mark.parametrize("op", ["autocontrast", "equalize", "posterize", "solarize"])
def test_augmix_level_maps_match_the_image_operations(op, batch):
    """A pixel operation done on the 256 levels, then applied to the pixels, is the
    operation done on the image (to the rounding of 8-bit values)."""
    import keras
    from keras import ops

    from codabench_kit.plugins.augmenters import policies

    images = np.round(batch[0])
    images[0] = 100.0  # a flat image: autocontrast and equalize leave it alone
    levels = ops.cast(images, "int32")
    level = ops.convert_to_tensor(np.linspace(0.1, 0.9, len(images)).astype("float32"))
    maps = policies._LevelMaps(policies._levels_histogram(levels))
    codes = {name: i for i, name in enumerate(policies._AUGMIX_OPS)}
    maps.apply(ops.full((len(images),), codes[op], dtype="int32"), level, codes)
    via_maps = np.asarray(keras.ops.convert_to_numpy(maps.on(levels)))
    direct = {"autocontrast": lambda: policies._autocontrast(images),
              "equalize": lambda: policies._equalize(images),
              "posterize": lambda: policies._posterize(images, level),
              "solarize": lambda: policies._solarize(images, level)}[op]()
    direct = np.clip(np.round(np.asarray(keras.ops.convert_to_numpy(direct))), 0, 255)
    assert np.abs(via_maps - direct).max() <= 1.0
    assert not np.array_equal(via_maps, images)


def test_warp_is_exact_at_identity_and_agrees_with_affine_transform(batch):
    import keras
    from keras import ops

    from codabench_kit.plugins.augmenters.image_ops import _affine, _affine_matrices, _warp

    images = batch[0][:4]
    n, height, width = len(images), images.shape[1], images.shape[2]
    identity = np.tile(np.eye(3, dtype="float32"), (n, 1, 1))
    np.testing.assert_allclose(np.asarray(ops.convert_to_numpy(_warp(images, identity))),
                               images, atol=1e-4)
    angle = ops.convert_to_tensor(np.full(n, math.radians(12), "float32"))
    zero, one = ops.zeros((n,)), ops.ones((n,))
    shift = ops.convert_to_tensor(np.full(n, 3.5, "float32"))
    matrices = _affine_matrices(height, width, angle, zero, zero, shift, zero, one)
    ours = np.asarray(keras.ops.convert_to_numpy(_warp(images, matrices)))
    theirs = np.asarray(keras.ops.convert_to_numpy(
        _affine(images, angle, zero, zero, shift, zero, one)))
    inner = (slice(None), slice(20, -20), slice(20, -20))  # away from the borders
    assert np.abs(ours[inner] - theirs[inner]).max() < 0.05


def test_augmix_gamma_draws_have_the_right_moments():
    from codabench_kit.plugins.augmenters.policies import AugMix

    for alpha in (0.5, 1.0, 3.0):
        draws = np.asarray(AugMix(alpha=alpha).gamma((40000,)))
        assert draws.min() > 0
        assert abs(draws.mean() - alpha) < 0.05 * alpha + 0.02
        assert abs(draws.var() - alpha) < 0.1 * alpha + 0.03


def test_separable_blur_equals_the_full_gaussian_kernel(batch):
    """The two 1-D passes give what one 11x11 Gaussian kernel gives."""
    import keras
    from keras import ops

    from codabench_kit.plugins.augmenters.image_ops import (
        _convolve_per_image,
        _gaussian_blur,
        _kernel_taps,
    )

    images = batch[0][:4]
    sigma = ops.convert_to_tensor(np.array([0.5, 1.0, 1.7, 2.5], "float32"))
    dy, dx = _kernel_taps(11)
    s = ops.reshape(sigma, (-1, 1, 1))
    full = ops.exp(-(dy[None] ** 2 + dx[None] ** 2) / (2.0 * s * s))
    full = full / ops.sum(full, axis=(1, 2), keepdims=True)
    expected = np.asarray(keras.ops.convert_to_numpy(_convolve_per_image(images, full)))
    actual = np.asarray(keras.ops.convert_to_numpy(_gaussian_blur(images, sigma)))
    np.testing.assert_allclose(actual, expected, atol=1e-2)


class _Marker:
    """An augmenter that paints its images 7 and records the batch sizes it was traced
    or called with (None: known only at run time)."""

    NAME = "marker"

    def __init__(self, probability, mode):
        from codabench_kit.api import Augmenter

        class Marker(Augmenter):
            COMPILE = mode

            def transform_images(inner, images):
                self.seen.append(images.shape[0])
                return images * 0.0 + 7.0

        self.seen = []
        self.augmenter = Marker(seed=5, probability=probability)


@pytest.mark.parametrize("mode, whole_batch", [("graph", False), ("xla", True)])
def test_a_graph_transforms_only_the_chosen_subset_xla_the_whole_batch(mode, whole_batch,
                                                                       batch):
    """A plain graph gathers the chosen images (a batch size known at run time only), so
    the cost of ``probability`` 0.5 is half the batch's; XLA needs static shapes."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("only the TensorFlow backend compiles augmenters")
    images, labels = batch
    marker = _Marker(0.5, mode)
    out = numpy(Compiled(marker.augmenter)(images, labels))[0]
    assert marker.seen == ([len(images)] if whole_batch else [None])
    painted = np.all(out == 7.0, axis=(1, 2, 3))
    kept = np.all(out == images, axis=(1, 2, 3))
    assert np.all(painted | kept) and painted.any() and kept.any()


def test_a_graph_with_an_empty_subset_returns_the_batch_untouched(batch):
    images, labels = batch
    marker = _Marker(1e-9, "graph")
    out = numpy(Compiled(marker.augmenter)(images, labels))[0]
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("name", ["noise", "corrupt"])
def test_subset_augmenters_transform_about_their_share_in_a_graph(name, batch, create):
    """``noise`` and ``corrupt`` (probability 0.5) in a plain graph: about half of a
    large batch changes, the rest is exactly the input."""
    images, labels = batch
    images, labels = np.concatenate([images] * 8), np.concatenate([labels] * 8)
    compiled = Compiled(create(name, seed=2))
    compiled.mode = "graph"
    out = numpy(compiled(images, labels))[0]
    changed = np.any(out != images, axis=(1, 2, 3)).mean()
    assert 0.3 < changed < 0.7, f"{name}: {changed:.2f} of the images changed"
