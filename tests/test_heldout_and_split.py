import numpy as np
import pytest

from codabench_kit.errors import DataError
from codabench_kit.evaluation.heldout import CORRUPTIONS, make_augmented_test_set
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


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_keeps_shape_at_every_severity(name):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 96, 3)).astype(np.float64)
    for severity in range(1, 6):
        assert CORRUPTIONS[name](image, severity, rng).shape == image.shape


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
