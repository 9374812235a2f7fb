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
                 chart: str | Path | None = None,
                 progress: Callable[[str], None] = lambda s: None) -> ZipEvaluation:
    """Apply every corruption at every severity to the labelled images of ``data`` (fixed
    seed), run the zip on all of them at once, and report accuracy per corruption and
    severity; draw the chart to ``chart`` (never overwritten; checked first)."""
    from codabench_kit.data import load_dataset
    from codabench_kit.evaluation.robustness import report_from_predictions, robustness_inputs
    from codabench_kit.packaging.bundle import ensure_absent

    if chart:
        ensure_absent(Path(chart))
    dataset = load_dataset(data, num_classes=num_classes)
    progress(f"evaluate: {len(dataset.labels)} labelled images from {data}")
    images = robustness_inputs(dataset.images, progress=progress)
    report = validate_zip(zip_path, images=images, num_classes=num_classes, timeout=timeout,
                          python=python, progress=progress)
    if not report.ok or report.predictions is None:
        return ZipEvaluation(report, None)
    robustness = report_from_predictions(report.predictions, dataset.labels)
    if not chart:
        return ZipEvaluation(report, robustness)
    from codabench_kit.report.chart import write_chart

    written = write_chart(robustness, Path(chart), title=(
        f"Robustness of {Path(zip_path).name} ({robustness['n']} images, "
        f"seed {robustness['seed']})"))
    return ZipEvaluation(report, robustness, written)
