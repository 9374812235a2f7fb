"""``cbk augment``: a labelled set with augmenters applied, written as a new .npz.

To look at what the augmenters do, or to test a submission on corrupted images
(``--plugins corrupt --set corrupt.severity=3 --set corrupt.probability=1``, then
``cbk validate ZIP --data OUT``). The augmenters run as in training (compiled, seeded),
one batch at a time; the images are written as uint8 in the AN2DL layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.errors import OptionError


def augment_file(data: str | Path, out: str | Path, augmenters, *, seed: int = 0,
                 batch_size: int = 64,
                 progress: Callable[[str], None] = lambda s: None) -> Path:
    """Apply ``augmenters`` (``(component, options)`` pairs, in order; each built with
    ``seed`` + its position) to the labelled set ``data`` and write ``out`` (a new .npz,
    never overwritten; checked before any work)."""
    from codabench_kit.data import load_dataset
    from codabench_kit.packaging.bundle import ensure_absent, write_npz_atomically

    if not augmenters:
        raise OptionError("expected one or more augmenters; received none")
    out_path = Path(out)
    if out_path.suffix != ".npz":
        raise OptionError(f"expected --out to end in .npz; received {str(out)!r}")
    ensure_absent(out_path)
    built = [component.create(seed=seed + i, **options)
             for i, (component, options) in enumerate(augmenters)]
    dataset = load_dataset(data)
    progress(f"augmenting {len(dataset.labels)} images with "
             f"{', '.join(component.name for component, _ in augmenters)}")
    write_npz_atomically(out_path, augmented_arrays(dataset, built, batch_size=batch_size))
    return out_path


def augmented_arrays(dataset, augmenters, *, batch_size: int = 64) -> dict[str, np.ndarray]:
    """``images`` (uint8, rounded), ``labels`` (the dataset's, integers) and
    ``class_names``; plus ``soft_labels`` when a mixing augmenter (cutmix, mixup) mixed
    them."""
    from codabench_kit.training.batches import one_hot
    from codabench_kit.training.compiled import compile_chain

    import keras

    chain = compile_chain(augmenters)
    images, soft = [], []
    for start in range(0, len(dataset.labels), batch_size):
        x = dataset.images[start:start + batch_size].astype("float32")
        y = one_hot(dataset.labels[start:start + batch_size], dataset.num_classes)
        for augment in chain:
            x, y = augment(x, y)
        images.append(np.clip(np.round(keras.ops.convert_to_numpy(x)), 0, 255).astype("uint8"))
        soft.append(np.asarray(keras.ops.convert_to_numpy(y), dtype="float32"))
    arrays = {"images": np.concatenate(images), "labels": dataset.labels.copy(),
              "class_names": np.array(dataset.class_names)}
    soft_labels = np.concatenate(soft)
    if not np.allclose(soft_labels, one_hot(dataset.labels, dataset.num_classes)):
        arrays["soft_labels"] = soft_labels
    return arrays
