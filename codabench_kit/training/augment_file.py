"""``cbk augment``: a labelled set with augmenters applied, written as a new .npz.

To look at what the augmenters do, or to test a submission on corrupted images
(``--plugins corrupt --set corrupt.severity=3 --set corrupt.probability=1``, then
``cbk validate ZIP --data OUT``). The augmenters run as in training (compiled, seeded),
one batch at a time; the images are written as uint8 in the AN2DL layout.
"""

from __future__ import annotations

import numpy as np


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
