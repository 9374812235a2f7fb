"""``cbk clean`` as a library call: run the cleaners on a data file, report what each
removed, draw the removed images, and write the cleaned file (the input's layout,
row-selected, plus ``index``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.cleaning.run import MAX_REMOVED_SHARE, CleaningOutcome
from codabench_kit.errors import OptionError
from codabench_kit.packaging.bundle import ensure_absent, write_new_file, write_npz_atomically


@dataclass
class CleanFileResult:
    outcome: CleaningOutcome
    table: list[str]
    """What each cleaner removed and why (codabench_kit.cleaning.run.report_table)."""
    out: Path | None
    """The cleaned .npz written; None on a dry run."""
    picture: Path | None
    """The PNG of the removed images, if drawn."""


def clean_file(data: str | Path, out: str | Path | None, cleaners, *,
               picture: str | Path | None = None, dry_run: bool = False,
               max_removed_share: float = MAX_REMOVED_SHARE,
               progress: Callable[[str], None] = lambda s: None) -> CleanFileResult:
    """Run ``cleaners`` (``(name, cleaner)`` pairs, in order) on ``data`` and write the
    cleaned file to ``out`` (never overwritten) and the removed images to ``picture``
    (default: ``out`` with ``.removed.png``; with ``dry_run``, only when given). The
    outputs are checked before any work; nothing is written when a cleaner removes
    more than ``max_removed_share``."""
    from codabench_kit.cleaning.run import report_table, run_cleaners
    from codabench_kit.data import load_dataset
    from codabench_kit.report.removed_grid import removed_grid

    out_path, picture_path = _check_outputs(out, picture, dry_run)
    dataset = load_dataset(data)
    progress(f"cleaning {len(dataset.labels)} images with "
             f"{', '.join(name for name, _ in cleaners)}")
    outcome = run_cleaners(cleaners, dataset, max_removed_share=max_removed_share)
    if picture_path is not None:
        write_new_file(picture_path, lambda partial: removed_grid(
            dataset.images, dataset.labels, dataset.class_names, outcome.removed, partial))
    if out_path is not None:
        write_npz_atomically(out_path, cleaned_arrays(data, dataset, outcome))
    return CleanFileResult(outcome, report_table(outcome, len(dataset.labels)), out_path,
                           picture_path)


def _check_outputs(out, picture, dry_run: bool) -> tuple[Path | None, Path | None]:
    if out is None and not dry_run:
        raise OptionError("expected --out OUT.npz (or --dry-run); received neither")
    out_path = None if dry_run or out is None else Path(out)
    if out is not None and Path(out).suffix != ".npz":
        raise OptionError(f"expected --out to end in .npz; received {str(out)!r}")
    picture_path = Path(picture) if picture else (
        None if out_path is None else out_path.with_suffix(".removed.png"))
    for path in (out_path, picture_path):
        if path is not None:
            ensure_absent(path)
    return out_path, picture_path


def cleaned_arrays(source: str | Path, dataset, outcome) -> dict[str, np.ndarray]:
    """Arrays for the cleaned file. From an .npz every key whose first axis has one entry
    per image is row-selected (labels keep their form: integers or one-hot), other keys
    are copied; a class-folder source gives ``images``, ``labels`` and ``class_names``.
    ``index`` holds the input rows kept (repeated where oversampled)."""
    rows = outcome.expanded_index()
    n = len(dataset.labels)
    arrays: dict[str, np.ndarray] = {}
    source = Path(source)
    if source.suffix == ".npz":
        with np.load(source, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    value = archive[key]
                except ValueError:  # an object array would need pickle: left out
                    continue
                arrays[key] = value[rows] if value.ndim and len(value) == n else value
    else:
        arrays = {"images": dataset.images[rows], "labels": dataset.labels[rows],
                  "class_names": np.array(dataset.class_names)}
    arrays["index"] = rows
    weights = outcome.expanded_weights()
    if not np.all(weights == 1):
        arrays["sample_weights"] = weights.astype(np.float32)
    return arrays

