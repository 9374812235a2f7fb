"""The robustness report: accuracy per corruption and severity, family by family.

Every corruption of :data:`codabench_kit.evaluation.corruptions.CORRUPTIONS` is applied at
each severity 1-5 to the clean test images (:func:`codabench_kit.evaluation.heldout.corrupt`,
fixed seed), and a predict function ``images (uint8, n x H x W x 3) -> integer labels``
is scored on each block, next to its accuracy on the clean images and on the default
mixed held-out set (``mixed:n=2`` drawn from the held-out families' corruptions, the
build's augmented test set). The report marks the *held-out* families (those the model
never trained on, :mod:`codabench_kit.evaluation.families`) and gives their mean apart:
the figure that says how the model copes with what it never saw.

The predict function is anything: the in-memory model during ``cbk build``, or
(``cbk evaluate``) a submission zip run by :func:`codabench_kit.validation.validate_zip`
on :func:`robustness_inputs` all at once, its predictions scored with
:func:`report_from_predictions`. Both give the same numbers for the same predictions.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping

import numpy as np

from codabench_kit.evaluation.corruptions import CORRUPTIONS, FAMILIES
from codabench_kit.evaluation.families import heldout_corruptions
from codabench_kit.evaluation.heldout import (DEFAULT_POLICY, HELDOUT_SEED, SEVERITIES, corrupt,
                                              make_heldout_set)
from codabench_kit.progress import bar

Predict = Callable[[np.ndarray], np.ndarray]
Key = tuple[str, int]

CLEAN = "clean"
MIXED = DEFAULT_POLICY


def blocks() -> list[str | Key]:
    """The blocks of the report in order: clean, mixed, then (corruption, severity)."""
    return [CLEAN, MIXED, *((name, s) for name in CORRUPTIONS for s in SEVERITIES)]


def block_images(images: np.ndarray, key: str | Key, *, seed: int = HELDOUT_SEED,
                 heldout_families=()) -> np.ndarray:
    """The images of one block (see :func:`blocks`); the mixed block draws from the
    corruptions of ``heldout_families`` (every corruption when empty)."""
    if key == CLEAN:
        return images
    if key == MIXED:
        return make_heldout_set(images, MIXED, seed=seed,
                                names=heldout_corruptions(heldout_families)).images
    name, severity = key
    return corrupt(images, name, severity, seed=seed)


def robustness_inputs(images: np.ndarray, *, seed: int = HELDOUT_SEED, heldout_families=(),
                      progress: Callable[[str], None] = lambda s: None) -> np.ndarray:
    """Every block's images concatenated, in :func:`blocks` order: (2 + 19 x 5) x n images."""
    keys = blocks()
    out = np.empty((len(keys) * len(images), *images.shape[1:]), dtype=np.uint8)
    for i, key in enumerate(keys):
        out[i * len(images):(i + 1) * len(images)] = block_images(
            images, key, seed=seed, heldout_families=heldout_families)
    progress(f"robustness: {len(out)} images ({len(keys)} blocks of {len(images)})")
    return out


def report_from_predictions(predictions: np.ndarray, labels: np.ndarray, *,
                            seed: int = HELDOUT_SEED, heldout_families=()) -> dict:
    """The report from predictions on :func:`robustness_inputs` (same order)."""
    n = len(labels)
    keys = blocks()
    predictions = np.asarray(predictions)
    if predictions.shape != (len(keys) * n,):
        raise ValueError(f"expected {len(keys) * n} predictions ({len(keys)} blocks of {n}); "
                         f"received shape {predictions.shape}")
    known = {key: predictions[i * n:(i + 1) * n] for i, key in enumerate(keys)}
    return robustness_report(None, None, labels, known=known, seed=seed,
                             heldout_families=heldout_families)


def robustness_report(predict: Predict | None, images: np.ndarray | None, labels: np.ndarray,
                      *, known: Mapping[str | Key, np.ndarray] | None = None,
                      seed: int = HELDOUT_SEED, heldout_families=(),
                      progress: Callable[[str], None] = lambda s: None) -> dict:
    """Accuracy of ``predict`` on every block of :func:`blocks`.

    ``known`` maps blocks to predictions already made (e.g. the build's on the clean and
    mixed sets); only the other blocks are drawn and predicted, one corruption (its five
    severities together) per call. Returns a JSON-ready dict: ``clean``, ``mixed``,
    ``accuracy`` ({corruption: [accuracy at severity 1..5]}), ``mean`` (per corruption),
    ``severity_mean`` (per severity), ``corrupted_mean``, ``families`` (family ->
    corruptions), ``family_mean``, ``heldout_families`` and ``heldout_mean`` (the mean
    over the held-out families' corruptions; ``None`` when none is held out), and the
    setting.
    """
    labels = np.asarray(labels)
    n = len(labels)
    known = dict(known or {})
    started = time.perf_counter()
    work = _missing_groups(known)
    if work and (predict is None or images is None):
        raise ValueError(f"no predictions for {work[0][0]!r} and nothing to predict with")
    if work:
        progress(_work_line(work, n))
    _predict_groups(predict, images, work, known, n, seed=seed, progress=progress,
                    heldout_families=tuple(heldout_families))
    return _summary(known, labels, seed, started, tuple(heldout_families))


def _missing_groups(known: Mapping[str | Key, np.ndarray]) -> list[list[str | Key]]:
    """The blocks without predictions, grouped one predict call each: clean and mixed,
    then each corruption's severities."""
    groups = [[CLEAN, MIXED], *([(name, s) for s in SEVERITIES] for name in CORRUPTIONS)]
    return [missing for missing in ([k for k in g if k not in known] for g in groups) if missing]


def _work_line(work: list[list[str | Key]], n: int) -> str:
    """The progress line saying how many images are about to be drawn and predicted."""
    todo = [key for keys in work for key in keys]
    what = [key for key in todo if isinstance(key, str)]
    corrupted = len(todo) - len(what)
    if corrupted:
        what.append(f"{corrupted} (corruption, severity) pairs")
    return (f"robustness: drawing and predicting {len(todo) * n} images: {n} test images "
            f"x {' + '.join(what)}")


def _predict_groups(predict: Predict | None, images: np.ndarray | None,
                    work: list[list[str | Key]], known: dict, n: int, *, seed: int,
                    progress: Callable[[str], None], heldout_families=()) -> None:
    """Predict each group of ``work`` in one call, into ``known``. The next group is drawn
    (numpy, Pillow: both release the GIL) in a thread while the model predicts this one."""
    def draw(keys):
        return np.concatenate([block_images(images, k, seed=seed,
                                            heldout_families=heldout_families) for k in keys])

    with ThreadPoolExecutor(max_workers=1) as pool, \
            bar(progress, "robustness", len(work)) as steps:
        pending = pool.submit(draw, work[0]) if work else None
        for i, keys in enumerate(work):
            batch = pending.result()
            pending = pool.submit(draw, work[i + 1]) if i + 1 < len(work) else None
            predictions = np.asarray(predict(batch)).reshape(-1)
            if predictions.shape != (len(batch),):
                raise ValueError(f"predict returned shape {predictions.shape} for "
                                 f"{len(batch)} images")
            for j, key in enumerate(keys):
                known[key] = predictions[j * n:(j + 1) * n]
            steps.update(1)


def _accuracy(known: Mapping[str | Key, np.ndarray], key: str | Key, labels: np.ndarray) -> float:
    """The share of ``known[key]`` equal to ``labels``; NaN when there are no labels."""
    n = len(labels)
    predictions = np.asarray(known[key]).reshape(-1)
    if predictions.shape != (n,):
        raise ValueError(f"expected {n} predictions for {key!r}; received shape "
                         f"{predictions.shape}")
    return float(np.mean(predictions == labels)) if n else float("nan")


def _summary(known: Mapping[str | Key, np.ndarray], labels: np.ndarray, seed: int,
             started: float, heldout_families: tuple[str, ...] = ()) -> dict:
    """The report's dict (see :func:`robustness_report`) from predictions on every block."""
    table = {name: [_accuracy(known, (name, s), labels) for s in SEVERITIES]
             for name in CORRUPTIONS}
    grid = np.array(list(table.values())).reshape(len(table), len(SEVERITIES))
    means = {name: float(np.mean(row)) for name, row in table.items()}
    held = [means[name] for name in heldout_corruptions(heldout_families)] \
        if heldout_families else []
    return {
        "n": int(len(labels)),
        "seed": int(seed),
        "severities": list(SEVERITIES),
        "corruptions": list(table),
        "clean": _accuracy(known, CLEAN, labels),
        "mixed": _accuracy(known, MIXED, labels),
        "mixed_policy": MIXED,
        "accuracy": table,
        "mean": means,
        "families": {family: list(members) for family, members in FAMILIES.items()},
        "family_mean": {family: float(np.mean([means[name] for name in members]))
                        for family, members in FAMILIES.items()},
        "heldout_families": list(heldout_families),
        "heldout_mean": float(np.mean(held)) if held else None,
        "severity_mean": [float(v) for v in grid.mean(axis=0)] if len(table) else [],
        "corrupted_mean": float(grid.mean()) if grid.size else float("nan"),
        "seconds": round(time.perf_counter() - started, 2),
    }


def table_lines(report: dict) -> list[str]:
    """The report as a fixed-width table: a line per family (marked when held out), then
    its corruptions, columns severity 1..5 and mean; then the mean over corruptions, over
    the held-out families, the clean and the mixed accuracy."""
    severities = report["severities"]
    width = max([18, *(len(name) + 2 for name in report["accuracy"]),
                 len(report["mixed_policy"])])
    heldout = set(report.get("heldout_families") or ())

    def row(label: str, values) -> str:
        return f"{label:<{width}}" + "".join(f"{v:>7.3f}" for v in values)

    lines = [f"robustness: accuracy on {report['n']} test images per corruption and severity "
             f"(seed {report['seed']})",
             f"{'corruption':<{width}}" + "".join(f"{s:>7}" for s in severities) + f"{'mean':>7}"]
    families = report.get("families") or {"": report.get("corruptions") or
                                          list(report["accuracy"])}
    for family, members in families.items():
        if family:
            mark = " (held out)" if family in heldout else ""
            lines.append(f"{family}{mark}")
        for name in members:
            lines.append(row(f"  {name}", [*report["accuracy"][name], report["mean"][name]]))
    lines.append(row("all corruptions", [*report["severity_mean"], report["corrupted_mean"]]))
    if report.get("heldout_mean") is not None:
        lines.append(row("held-out families", [report["heldout_mean"]]))
    lines.append(row("clean", [report["clean"]]))
    lines.append(row(report["mixed_policy"], [report["mixed"]]))
    return lines
