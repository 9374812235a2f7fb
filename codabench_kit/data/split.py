"""Seeded, stratified train/validation/test split."""

from __future__ import annotations

import numpy as np

from codabench_kit.errors import DataError

MIN_PER_CLASS = 3
"""A stratified three-way split needs at least one image per class in each part."""


def stratified_split(labels: np.ndarray, *, val_fraction: float, test_fraction: float,
                     seed: int, class_names=None):
    """Return index arrays ``(train, val, test)`` into ``labels``, each sorted."""
    from sklearn.model_selection import train_test_split

    for name, value in (("validation", val_fraction), ("test", test_fraction)):
        if not 0 < value < 1:
            raise DataError(f"expected the {name} fraction in (0, 1); received {value}")
    if val_fraction + test_fraction >= 0.9:
        raise DataError(
            f"expected validation + test fractions below 0.9 so training keeps data; "
            f"received {val_fraction} + {test_fraction}"
        )
    counts = np.bincount(labels)
    scarce = [i for i, c in enumerate(counts) if 0 < c < MIN_PER_CLASS]
    if scarce:
        names = ", ".join(
            f"{i} ({class_names[i] if class_names else i}: {counts[i]})" for i in scarce)
        raise DataError(
            f"expected at least {MIN_PER_CLASS} images per class after cleaning for a "
            f"stratified train/val/test split; received too few in class {names}"
        )
    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=test_fraction, stratify=labels,
                                  random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=labels[rest], random_state=seed + 1)
    return np.sort(train), np.sort(val), np.sort(test)
