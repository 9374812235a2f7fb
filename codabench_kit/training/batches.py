"""The training input pipeline: shuffled, augmented batches as numpy arrays.

A ``keras.utils.PyDataset`` works on every Keras backend (JAX and torch included, where
tf.data is missing). Augmenters run here, on each training batch, and nowhere else:
they are never part of the model that gets exported. Built-in augmenters run compiled
(``codabench_kit.training.compiled``).
"""

from __future__ import annotations

import numpy as np

from codabench_kit.backend import import_keras
from codabench_kit.training.compiled import compile_chain

keras = import_keras()


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.eye(num_classes, dtype="float32")[labels]


class TrainingBatches(keras.utils.PyDataset):
    """Batches of ``(images float32 0..255, one-hot labels[, sample weights])``,
    reshuffled each epoch."""

    def __init__(self, images, labels, num_classes, *, batch_size=64, augmenters=(),
                 seed=0, sample_weights=None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.images = images
        self.targets = one_hot(labels, num_classes)
        self.batch_size = batch_size
        self.augmenters = compile_chain(augmenters)
        self.sample_weights = (None if sample_weights is None
                               else np.asarray(sample_weights, dtype="float32"))
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return int(np.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, index):
        rows = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        x = self.images[rows].astype("float32")
        y = self.targets[rows]
        for augment in self.augmenters:
            x, y = augment(x, y)
        batch = (keras.ops.convert_to_numpy(x).astype("float32"),
                 keras.ops.convert_to_numpy(y).astype("float32"))
        if self.sample_weights is not None:
            batch += (self.sample_weights[rows],)
        return batch

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.images))
