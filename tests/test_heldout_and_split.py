import numpy as np
import pytest

from codabench_kit.errors import DataError
from codabench_kit.evaluation.heldout import (CORRUPTIONS, SEVERITIES, corrupt,
                                              make_augmented_test_set)
from codabench_kit.data.split import stratified_split


def test_augmented_test_set_is_deterministic_and_corrupted():
    images = np.random.default_rng(0).integers(0, 256, (40, 96, 96, 3), dtype=np.uint8)
    first, ops = make_augmented_test_set(images, seed=7)
    second, ops_again = make_augmented_test_set(images, seed=7)
    assert first.dtype == np.uint8 and first.shape == images.shape
    assert np.array_equal(first, second) and ops == ops_again
    assert not np.array_equal(first, make_augmented_test_set(images, seed=8)[0])
    changed = np.mean(np.any(first != images, axis=(1, 2, 3)))
    assert changed == 1.0
    assert all(len(o.split("+")) == 2 for o in ops)
    used = {step.split("@")[0] for o in ops for step in o.split("+")}
    assert used <= set(CORRUPTIONS) and len(used) >= 6


# What each corruption does to the pixels: d4 only moves them (a symmetry of the square);
# every other one changes their values, more at a higher severity.
VALUE_CORRUPTIONS = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise",
                     "blur", "defocus", "motion_blur", "jpeg", "pixelate", "brightness",
                     "contrast", "stain_shift", "saturate", "gamma", "bubbles", "deposits",
                     "dust", "uneven_light"]


@pytest.fixture(scope="module")
def cells():
    """16 demo images (uint8): a pale background with coloured cells."""
    from codabench_kit.data.demo import demo_dataset

    return demo_dataset(seed=0, per_class=2).images[:16]


def mean_change(images, corrupted):
    return float(np.mean(np.abs(corrupted.astype(np.float64) - images)))


def symmetries(image):
    """The 8 rotations and mirrors of a square image."""
    return [np.rot90(x, k) for k in range(4) for x in (image, image[:, ::-1])]


def test_the_corruptions_are_these_nineteen_family_by_family():
    from codabench_kit.evaluation.corruptions import FAMILIES, FAMILY_OF

    assert list(CORRUPTIONS) == [*VALUE_CORRUPTIONS, "d4"]
    assert list(FAMILIES) == ["noise", "blur", "digital", "color", "microscopy", "geometry"]
    assert [FAMILY_OF[name] for name in ("shot_noise", "defocus", "jpeg", "gamma", "dust",
                                         "d4")] == list(FAMILIES)


@pytest.mark.parametrize("name", VALUE_CORRUPTIONS)
def test_each_corruption_changes_every_image_and_more_at_a_higher_severity(name, cells):
    changes = []
    for severity in SEVERITIES:
        corrupted = corrupt(cells, name, severity, seed=3)
        assert corrupted.dtype == np.uint8 and corrupted.shape == cells.shape
        assert np.any(corrupted != cells, axis=(1, 2, 3)).all(), (name, severity)
        changes.append(mean_change(cells, corrupted))
    # Non-decreasing (pixelate uses 2-pixel blocks at severities 1 and 2), and 5 > 1.
    assert changes == sorted(changes) and changes[-1] > changes[0], (name, changes)


def test_d4_rotates_or_mirrors_each_image(cells):
    """d4 changes no pixel value: each output is one of the 8 symmetries of its input
    (the identity included), and over 16 images x 5 severities all 8 turn up."""
    drawn = set()
    for severity in SEVERITIES:
        for image, out in zip(cells, corrupt(cells, "d4", severity, seed=3)):
            same = [k for k, view in enumerate(symmetries(image)) if np.array_equal(view, out)]
            assert same, f"d4@{severity} gave an image that is no symmetry of its input"
            drawn.add(same[0])
    assert drawn == set(range(8)), sorted(drawn)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_deterministic_for_the_same_rng_seed(name, cells):
    image = cells[0].astype(np.float64)
    for severity in SEVERITIES:
        first = CORRUPTIONS[name](image, severity, np.random.default_rng(5))
        again = CORRUPTIONS[name](image, severity, np.random.default_rng(5))
        assert first.shape == image.shape and np.array_equal(first, again), (name, severity)
    assert np.array_equal(corrupt(cells, name, 4, seed=3), corrupt(cells, name, 4, seed=3))


LARGE_CHANGES = {"shot_noise", "speckle_noise", "impulse_noise", "bubbles", "deposits", "dust",
                 "uneven_light"}
"""Corruptions that may move a value by more than half the range (salt on black, a dark
blob on white, few photons): for them, the output is checked against the corruption's
own values, clipped."""


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_values_past_0_or_255_are_clipped_not_wrapped(name):
    """On black and white images, noise, brightness and stain shift push values out of
    0..255; they must stay at the end they passed (a wrapped value jumps across)."""
    import zlib

    black_white = np.stack([np.zeros((32, 32, 3), np.uint8), np.full((32, 32, 3), 255, np.uint8)])
    for severity in SEVERITIES:
        corrupted = corrupt(black_white, name, severity, seed=3)
        assert corrupted.dtype == np.uint8
        if name not in LARGE_CHANGES:
            assert np.abs(corrupted.astype(int) - black_white).max() <= 128, (name, severity)
            continue
        rng = np.random.default_rng([3, zlib.crc32(name.encode()), severity])
        expected = [np.round(np.clip(CORRUPTIONS[name](image.astype(np.float64), severity, rng),
                                     0, 255)) for image in black_white]
        assert np.array_equal(corrupted, np.array(expected)), (name, severity)


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(8), [30, 40, 50, 20, 25, 35, 60, 10])
    train, val, test = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=3)
    assert len(set(train) | set(val) | set(test)) == len(labels)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    for part in (train, val, test):
        assert set(labels[part]) == set(range(8))
    again = stratified_split(labels, val_fraction=0.15, test_fraction=0.15, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))


def test_split_names_a_class_too_small():
    labels = np.r_[np.zeros(10, int), np.ones(2, int)]
    with pytest.raises(DataError, match=r"at least 3 images per class.*class 1 \(b: 2\)"):
        stratified_split(labels, val_fraction=0.2, test_fraction=0.2, seed=0,
                         class_names=("a", "b"))
