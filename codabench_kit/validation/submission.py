"""``cbk validate`` as a library call: a zip, the images to run it on (a labelled file,
or the built-in demo images), and the verdict, with agreement against the predictions a
build recorded when the file has them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.validation.check import Check
from codabench_kit.validation.fidelity import Budget
from codabench_kit.validation.runner import NUM_CLASSES, TIMEOUT_S, ValidationReport, validate_zip


def validation_images(data: str | Path | None, *, num_classes: int = NUM_CLASSES,
                      limit: int | None = None):
    """``(images, labels, expected)``: the images of ``data`` (a labelled .npz or class
    folders) with their labels and, from a build's ``.heldout.npz``, its ``predictions``;
    without ``data``, 64 built-in demo images and no labels."""
    if data is None:
        from codabench_kit.data import demo_dataset

        return demo_dataset(seed=1, per_class=8).images[:limit], None, None
    from codabench_kit.data import load_dataset

    dataset = load_dataset(data, num_classes=num_classes)
    expected = None
    if str(data).endswith(".npz"):
        with np.load(data, allow_pickle=False) as archive:
            if "predictions" in archive.files:
                expected = archive["predictions"][:limit]
    return dataset.images[:limit], dataset.labels[:limit], expected


def agreement_check(predictions: np.ndarray, expected: np.ndarray) -> Check:
    """Whether the zip predicts what the build's trained model predicted."""
    same = int(np.sum(predictions == expected))
    return Check("agreement", same == len(expected),
                 f"{same}/{len(expected)} predictions equal the build's")


def validate_submission(zip_path: str | Path, *, data: str | Path | None = None,
                        limit: int | None = None, num_classes: int = NUM_CLASSES,
                        timeout: float = TIMEOUT_S, python: Callable[[], str] | str | None = None,
                        budget: Budget | None = None,
                        progress: Callable[[str], None] | None = None,
                        conditions: str | None = None) -> ValidationReport:
    """Validate ``zip_path`` on ``data`` (see :func:`validation_images`); with recorded
    predictions, the report has an ``agreement`` check too. ``python`` may be a function
    that makes the interpreter (a target's venv), called after the inputs are checked;
    ``conditions`` names how the ingestion runs it (see :data:`~.targets.CONDITIONS`)."""
    images, labels, expected = validation_images(data, num_classes=num_classes, limit=limit)
    interpreter = python() if callable(python) else python
    report = validate_zip(zip_path, images=images, labels=labels, num_classes=num_classes,
                          timeout=timeout, python=interpreter, progress=progress,
                          budget=budget if budget is not None else Budget(),
                          conditions=conditions)
    if expected is None or report.predictions is None:
        return report
    return dataclasses.replace(
        report, checks=report.checks + (agreement_check(report.predictions, expected),))
