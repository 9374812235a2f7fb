"""``cbk evaluate`` as a library call: the robustness report of any submission zip, run
as ``cbk validate`` runs it, on every corruption at every severity of labelled images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codabench_kit.validation import ValidationReport, validate_zip
from codabench_kit.validation.runner import TIMEOUT_S
from codabench_kit.validation.submission import NUM_CLASSES


@dataclass
class ZipEvaluation:
    validation: ValidationReport
    """How the run went; when it failed, there is no robustness report."""
    robustness: dict | None
    chart: Path | None = None


def evaluate_zip(zip_path: str | Path, data: str | Path, *, num_classes: int = NUM_CLASSES,
                 timeout: float = TIMEOUT_S, python: str | None = None,
                 chart: str | Path | None = None, holdout_families=None,
                 progress: Callable[[str], None] = lambda s: None) -> ZipEvaluation:
    """Apply every corruption at every severity to the labelled images of ``data`` (fixed
    seed), run the zip on all of them at once, and report accuracy per corruption and
    severity; draw the chart to ``chart`` (never overwritten; checked first).

    ``holdout_families`` are marked held out in the report, and its mixed set is drawn
    from their corruptions; ``None``: the held-out families the zip's manifest records
    (a cbk zip), else none (the mixed set draws from every corruption)."""
    from codabench_kit.data import load_dataset
    from codabench_kit.evaluation.families import check_families
    from codabench_kit.evaluation.robustness import report_from_predictions, robustness_inputs
    from codabench_kit.packaging.bundle import ensure_absent

    if chart:
        ensure_absent(Path(chart))
    trained = _recorded_families(Path(zip_path))
    if holdout_families is None:
        families = trained[0] if trained else ()
        source = "recorded in the zip's manifest" if trained else "none recorded"
    else:
        families, source = check_families(holdout_families), "asked for"
        overlap = [f for f in families if trained and f in trained[1]]
        if overlap:
            progress(f"warning: the zip's manifest says its training simulated "
                     f"{', '.join(overlap)}: those are not held out for this model")
    dataset = load_dataset(data, num_classes=num_classes)
    progress(f"evaluate: {len(dataset.labels)} labelled images from {data}; held-out "
             f"families: {', '.join(families) or 'none'} ({source})")
    images = robustness_inputs(dataset.images, heldout_families=families, progress=progress)
    report = validate_zip(zip_path, images=images, num_classes=num_classes, timeout=timeout,
                          python=python, progress=progress)
    if not report.ok or report.predictions is None:
        return ZipEvaluation(report, None)
    robustness = report_from_predictions(report.predictions, dataset.labels,
                                         heldout_families=families)
    if not chart:
        return ZipEvaluation(report, robustness)
    from codabench_kit.report.chart import write_chart

    written = write_chart(robustness, Path(chart), title=(
        f"Robustness of {Path(zip_path).name} ({robustness['n']} images, "
        f"seed {robustness['seed']})"))
    return ZipEvaluation(report, robustness, written)


def _recorded_families(zip_path: Path) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """``(held out, trained on)`` as a cbk zip's manifest records them; ``None`` for a
    zip without a readable cbk manifest, or one from before families were recorded."""
    from codabench_kit.evaluation.corruptions import FAMILIES
    from codabench_kit.errors import CbkError
    from codabench_kit.packaging.history import read_manifest

    try:
        heldout = read_manifest(zip_path).get("heldout") or {}
    except (CbkError, OSError):  # any zip may be evaluated; only cbk's carry the record
        return None
    if not isinstance(heldout, dict):
        return None
    families, holdout = heldout.get("families"), heldout.get("holdout") or {}
    if not isinstance(families, list):
        return None
    trained = holdout.get("trained_families") if isinstance(holdout, dict) else None
    known = [f for f in families if f in FAMILIES]
    return tuple(known), tuple(f for f in (trained or []) if f in FAMILIES)
