"""Writing the result of ``cbk clean``: the input's layout, row-selected, plus ``index``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codabench_kit.packaging.bundle import write_new_file


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


def write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` via a temporary file; never replaces an existing file."""
    write_new_file(path, lambda partial: np.savez_compressed(partial, **arrays))
