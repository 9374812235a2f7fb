"""Running cleaners and reporting what each removed.

A cleaner (see ``register_cleaners``) is a callable ``clean(images, labels) ->
CleanResult``. :func:`run_cleaners` chains them, each on what the previous one kept, and
refuses to go on when one would remove more than ``max_removed_share`` of its input.
Besides removing rows, a cleaner may repeat rows (oversampling) or weight them (class
weights); the build trains with those repeats and weights.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from codabench_kit.errors import BuildError

MAX_REMOVED_SHARE = 0.5
"""Stop when one cleaner would remove more than this share of its input (default)."""


@dataclass
class CleanResult:
    """What one cleaner decided about its input rows.

    ``keep``: bool mask. ``reasons``: row -> why it was removed. ``repeats``: optional
    int per row, how many times a kept row appears afterwards (oversampling).
    ``weights``: optional float per row, multiplied into its training weight.
    """

    keep: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)
    repeats: np.ndarray | None = None
    weights: np.ndarray | None = None


@dataclass
class CleanerReport:
    name: str
    seen: int
    removed: int
    reasons: dict[str, int]
    added: int = 0
    weighted: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "seen": self.seen, "removed": self.removed,
                "added": self.added, "weighted": self.weighted, "reasons": dict(self.reasons)}


@dataclass
class CleaningOutcome:
    """``index``: input rows kept, each once, ascending. ``repeats`` and ``weights``: per
    kept row, how often it should appear in training and with what weight (balancing;
    applied to the training split only, so no copy leaks into validation or test).
    ``removed``: (input row, cleaner, reason)."""

    index: np.ndarray
    repeats: np.ndarray
    weights: np.ndarray
    reports: list[CleanerReport]
    removed: list[tuple[int, str, str]]

    def expanded_index(self) -> np.ndarray:
        """Kept rows with oversampled rows repeated, as ``cbk clean`` writes them."""
        return np.repeat(self.index, self.repeats)

    def expanded_weights(self) -> np.ndarray:
        return np.repeat(self.weights, self.repeats)


def _checked(name: str, result: CleanResult, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = np.asarray(result.keep, dtype=bool)
    if keep.shape != (n,):
        raise BuildError(f"cleaner {name!r} returned a keep mask of shape {keep.shape}; "
                         f"expected ({n},)")
    repeats = np.ones(n, dtype=np.int64) if result.repeats is None else \
        np.asarray(result.repeats, dtype=np.int64)
    weights = np.ones(n) if result.weights is None else np.asarray(result.weights, dtype=float)
    for what, array in (("repeats", repeats), ("weights", weights)):
        if array.shape != (n,) or (array < 0).any():
            raise BuildError(f"cleaner {name!r} returned {what} of shape {array.shape}; "
                             f"expected ({n},) non-negative values")
    return keep, repeats, weights


def run_cleaners(cleaners, dataset, *,
                 max_removed_share: float = MAX_REMOVED_SHARE) -> CleaningOutcome:
    """Apply ``[(name, clean_fn), ...]`` in order to ``dataset``; each cleaner sees the
    rows the previous ones kept (once each)."""
    index = np.arange(len(dataset.labels))
    repeats = np.ones(len(index), dtype=np.int64)
    weights = np.ones(len(index))
    reports: list[CleanerReport] = []
    removed: list[tuple[int, str, str]] = []
    for name, clean in cleaners:
        result = clean(dataset.images[index], dataset.labels[index])
        keep, more, weight = _checked(name, result, len(index))
        dropped = np.flatnonzero(~keep)
        if len(dropped) > max_removed_share * len(index):
            raise BuildError(
                f"cleaner {name!r} would remove {len(dropped)} of {len(index)} images "
                f"({len(dropped) / len(index):.0%}), more than the allowed "
                f"{max_removed_share:.0%} (raise it with --max-removed); nothing was written"
            )
        why = [result.reasons.get(int(i), "unspecified") for i in dropped]
        removed.extend((int(index[i]), name, reason) for i, reason in zip(dropped, why))
        added = int(((more - 1) * repeats)[keep].sum())
        reports.append(CleanerReport(name, len(index), len(dropped),
                                     dict(sorted(Counter(why).items())), added,
                                     result.weights is not None))
        index, repeats = index[keep], (repeats * more)[keep]
        weights = (weights * weight)[keep]
    return CleaningOutcome(index, repeats, weights, reports, removed)


def report_lines(reports: list[CleanerReport]) -> list[str]:
    """One line per cleaner: what it removed and why (and what balancing added)."""
    lines = []
    for report in reports:
        detail = ", ".join(f"{n} {why}" for why, n in report.reasons.items()) or "nothing"
        extra = f"; added {report.added} repeated rows" if report.added else ""
        extra += "; set class weights" if report.weighted else ""
        lines.append(f"clean {report.name}: removed {report.removed} of {report.seen} "
                     f"({detail}){extra}")
    return lines


def report_table(outcome: CleaningOutcome, total: int) -> list[str]:
    """A table of what each cleaner removed, one row per (cleaner, reason)."""
    lines = [f"{'cleaner':<14}{'removed':>8}  reason"]
    for report in outcome.reports:
        if not report.reasons:
            lines.append(f"{report.name:<14}{0:>8}  -")
        for why, count in report.reasons.items():
            lines.append(f"{report.name:<14}{count:>8}  {why}")
        if report.added:
            lines.append(f"{report.name:<14}{-report.added:>8}  rows repeated to balance classes")
        if report.weighted:
            lines.append(f"{report.name:<14}{0:>8}  class weights set")
    kept = len(outcome.expanded_index())
    lines.append(f"{'total':<14}{len(outcome.removed):>8}  of {total} images removed; "
                 f"{kept} rows kept")
    return lines
