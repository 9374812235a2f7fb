"""The held-out test sets of a build, as one typed value that travels between stages.

The build makes them (clean test images and a corrupted copy), evaluation adds the
shipped model's probabilities, and the run record, packaging, saliency and the report
read them. On disk they are one ``.npz`` (:meth:`HeldoutSets.to_npz`) plus the
manifest's ``heldout`` section (:meth:`HeldoutSets.describe`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import numpy as np

SPLITS = ("clean_test", "augmented_test")
"""The metric name of each test set, in the order every report shows them."""


@dataclass(frozen=True)
class TestSet:
    """Labelled uint8 images, and a model's class probabilities once it has predicted."""

    __test__ = False  # not a pytest test class

    images: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray | None = None

    @property
    def predictions(self) -> np.ndarray:
        if self.probabilities is None:
            raise ValueError("this test set has not been predicted on yet")
        return np.asarray(self.probabilities).argmax(-1)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class HeldoutSets:
    """The build's clean test split and its corrupted copy (see
    :func:`codabench_kit.evaluation.heldout.make_heldout_set`)."""

    clean: TestSet
    augmented: TestSet
    corruptions: np.ndarray
    """What was applied to each augmented image, e.g. ``"blur@3+jpeg@1"``."""
    seed: int
    policy: str
    ops_per_image: int
    families: tuple[str, ...] = ()
    """The held-out corruption families the augmented images were drawn from (empty:
    every corruption)."""
    holdout: dict | None = None
    """How the build decided them (:meth:`codabench_kit.evaluation.families.HoldoutPlan.describe`)."""

    def splits(self) -> Iterator[tuple[str, TestSet]]:
        """``("clean_test", clean)`` then ``("augmented_test", augmented)``."""
        yield SPLITS[0], self.clean
        yield SPLITS[1], self.augmented

    def with_probabilities(self, clean: np.ndarray, augmented: np.ndarray) -> "HeldoutSets":
        """A copy with a model's probabilities on both test sets."""
        return dataclasses.replace(
            self, clean=dataclasses.replace(self.clean, probabilities=clean),
            augmented=dataclasses.replace(self.augmented, probabilities=augmented))

    def describe(self) -> dict:
        """The manifest's ``heldout`` section."""
        return {"seed": self.seed, "policy": self.policy, "ops_per_image": self.ops_per_image,
                "images": int(len(self.augmented)), "families": list(self.families),
                **({"holdout": self.holdout} if self.holdout else {})}

    def to_npz(self) -> dict[str, np.ndarray]:
        """The arrays of a run folder's ``heldout.npz`` (probabilities once predicted)."""
        arrays = {"images": self.clean.images, "labels": self.clean.labels,
                  "images_augmented": self.augmented.images,
                  "labels_augmented": self.augmented.labels,
                  "corruptions": np.asarray(self.corruptions)}
        for suffix, test_set in (("", self.clean), ("_augmented", self.augmented)):
            if test_set.probabilities is not None:
                arrays[f"probabilities{suffix}"] = np.asarray(test_set.probabilities)
        return arrays

    @classmethod
    def from_npz(cls, arrays: dict[str, np.ndarray], description: dict) -> "HeldoutSets":
        """The inverse of :meth:`to_npz`, with the manifest's ``heldout`` section.
        A run without ``labels_augmented`` (one augmented copy per image) uses ``labels``."""
        labels = arrays["labels"]
        return cls(
            clean=TestSet(arrays["images"], labels, arrays.get("probabilities")),
            augmented=TestSet(arrays["images_augmented"],
                              arrays.get("labels_augmented", labels),
                              arrays.get("probabilities_augmented")),
            corruptions=arrays.get("corruptions", np.array([], dtype=str)),
            seed=int(description.get("seed", 0)), policy=str(description.get("policy", "")),
            ops_per_image=int(description.get("ops_per_image", 0)),
            families=tuple(description.get("families", ())),
            holdout=description.get("holdout"))

    def predictions_npz(self) -> dict[str, np.ndarray]:
        """The ``<zip>.heldout.npz`` published beside a submission: the test sets with the
        shipped model's predicted labels, for ``cbk validate --data`` and ``cbk evaluate``."""
        return {"images": self.clean.images, "labels": self.clean.labels,
                "predictions": self.clean.predictions,
                "images_augmented": self.augmented.images,
                "labels_augmented": self.augmented.labels,
                "predictions_augmented": self.augmented.predictions}
