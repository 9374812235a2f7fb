"""Running cleaners and reporting what each removed.

A cleaner (see ``register_cleaners``) is a callable ``clean(images, labels) ->
CleanResult``. :func:`run_cleaners` chains them, each on what the previous kept, and
refuses to go on when one would remove more than ``max_removed_share`` of the data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from codabench_kit.errors import BuildError


@dataclass
class CleanResult:
    """What one cleaner decided: a keep mask over its input and a reason per removed row."""

    keep: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)


@dataclass
class CleanerReport:
    name: str
    seen: int
    removed: int
    reasons: dict[str, int]

    def to_dict(self) -> dict:
        return {"name": self.name, "seen": self.seen, "removed": self.removed,
                "reasons": dict(self.reasons)}


def run_cleaners(cleaners, dataset, *, max_removed_share: float = 0.5):
    """Apply ``[(name, clean_fn), ...]`` in order. Returns ``(kept_index, reports)``,
    where ``kept_index`` indexes rows of ``dataset``."""
    index = np.arange(len(dataset.labels))
    reports: list[CleanerReport] = []
    for name, clean in cleaners:
        images, labels = dataset.images[index], dataset.labels[index]
        result = clean(images, labels)
        keep = np.asarray(result.keep, dtype=bool)
        if keep.shape != (len(index),):
            raise BuildError(
                f"cleaner {name!r} returned a keep mask of shape {keep.shape}; "
                f"expected ({len(index)},)"
            )
        removed = int((~keep).sum())
        if removed > max_removed_share * len(index):
            raise BuildError(
                f"cleaner {name!r} would remove {removed} of {len(index)} images "
                f"({removed / len(index):.0%}), more than the allowed "
                f"{max_removed_share:.0%}; nothing was written"
            )
        counts = Counter(result.reasons.get(int(i), "unspecified") for i in np.flatnonzero(~keep))
        reports.append(CleanerReport(name, len(index), removed, dict(sorted(counts.items()))))
        index = index[keep]
    return index, reports
