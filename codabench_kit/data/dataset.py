"""The in-memory training set every other stage works on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from codabench_kit.errors import DataError

AN2DL_CLASS_NAMES = (
    "basophil",
    "eosinophil",
    "erythroblast",
    "immature granulocyte",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
)
"""The eight blood-cell classes of the AN2DL competition, in label order."""


@dataclass(frozen=True)
class Dataset:
    """A validated image-classification training set.

    Build one with :func:`codabench_kit.data.load_dataset` or
    :func:`codabench_kit.data.demo_dataset`; both check everything before returning,
    so code holding a ``Dataset`` may rely on the invariants below.

    Attributes:
        images: ``uint8`` array of shape ``(N, H, W, 3)``, C-contiguous.
        labels: ``int64`` array of shape ``(N,)`` with values in ``0..num_classes-1``.
        class_names: One name per class, in label order.
        source: Where the data came from: a path, or ``"demo(seed=0)"``.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, 3)``."""
        return tuple(int(d) for d in self.images.shape[1:])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def fingerprint(self) -> str:
        """A content hash, ``"sha256:<hex>"``, stable across runs and machines.

        Covers the image shape and bytes, the labels as little-endian ``int64`` and the
        class names; ``source`` is not part of it, so the same data loaded from two
        places has one fingerprint.
        """
        digest = hashlib.sha256()
        digest.update(b"cbk-dataset-v1\0")
        digest.update(repr(tuple(int(d) for d in self.images.shape)).encode())
        digest.update(b"\0")
        digest.update(np.ascontiguousarray(self.images, dtype=np.uint8).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        for name in self.class_names:
            digest.update(name.encode("utf-8") + b"\0")
        return "sha256:" + digest.hexdigest()

    def subset(self, index) -> "Dataset":
        """The rows at ``index`` (an integer index array), same class names and source.

        Raises:
            DataError: ``index`` is not an array of integers in range.
        """
        index = np.asarray(index)
        if index.dtype == bool or not np.issubdtype(index.dtype, np.integer) and index.size:
            raise DataError(
                f"Expected an integer index array for Dataset.subset(). "
                f"Received: dtype={index.dtype}"
            )
        index = index.astype(np.intp).reshape(-1)
        n = len(self)
        if index.size and (index.min() < -n or index.max() >= n):
            raise DataError(
                f"Expected subset indices in [0, {n}) for a dataset of {n} images. "
                f"Received: indices in [{int(index.min())}, {int(index.max())}]"
            )
        return Dataset(
            images=np.ascontiguousarray(self.images[index]),
            labels=np.ascontiguousarray(self.labels[index]),
            class_names=self.class_names,
            source=self.source,
        )

    def class_counts(self) -> np.ndarray:
        """Images per class, shape ``(num_classes,)``."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"Dataset(n={len(self)}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, source={self.source!r})"
        )
