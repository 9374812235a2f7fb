"""The manifest: what a run is and how well it did, written as ``run.json`` in a run
folder and, with packaging's sections added, as ``manifest.json`` in a submission zip.

:class:`RunManifest` is the one place its keys are written; :meth:`RunManifest.from_dict`
reads a run's back, so packaging and the run record use attributes, not key strings.
Readers of foreign zips (``cbk history``) read the JSON defensively instead.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from codabench_kit import __version__


def library_versions() -> dict[str, str]:
    """Versions of Python, cbk and the libraries a run depends on, where installed."""
    from importlib import metadata

    versions = {"python": platform.python_version(), "codabench_kit": __version__}
    for name in ("numpy", "keras", "tensorflow", "tensorflow-cpu", "jax", "torch",
                 "scikit-learn"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def data_section(dataset, kept: int) -> dict[str, Any]:
    """Where the data came from, its fingerprint and class counts, and what cleaning kept."""
    return {"source": dataset.source, "fingerprint": dataset.fingerprint(),
            "images": int(len(dataset.labels)),
            "class_counts": dataset.class_counts().tolist(), "after_cleaning": int(kept)}


def split_section(parts, *, val_fraction: float, test_fraction: float) -> dict[str, Any]:
    """The sizes of the train, validation and test splits and the fractions asked for."""
    train, validation, test = parts
    return {"train": int(len(train)), "validation": int(len(validation)),
            "test": int(len(test)), "val_fraction": val_fraction,
            "test_fraction": test_fraction}


@dataclass
class RunManifest:
    """A trained run: its components, data, split, training and test figures."""

    seed: int
    components: dict[str, list[dict[str, Any]]]
    """Per kind, each component's ``name``, ``provider`` and ``options`` (Selection.describe)."""
    num_classes: int
    class_names: list[str]
    image_shape: list[int]
    data: dict[str, Any]
    cleaning: list[dict[str, Any]]
    split: dict[str, Any]
    heldout: dict[str, Any]
    """HeldoutSets.describe(): seed, policy, ops per image, images."""
    training: dict[str, Any]
    metrics: dict[str, Any]
    """``clean_test`` and ``augmented_test`` (classification_metrics), ``tta_gain`` if any."""
    robustness: dict[str, Any] | None = None
    libraries: dict[str, str] = field(default_factory=library_versions)
    cbk_version: str = __version__
    created: str = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, manifest: dict[str, Any]) -> "RunManifest":
        """A run's manifest from its JSON (keys this version does not know are dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in manifest.items() if k in known})

    def component(self, kind: str) -> dict[str, Any]:
        """The spec (``name``, ``options``) of the run's one backbone or TTA strategy."""
        return self.components[kind][0]

    def split_identity(self) -> tuple:
        """What makes two runs' test splits the same images: data, seed and fractions."""
        return (self.data.get("fingerprint"), self.seed, self.split.get("val_fraction"),
                self.split.get("test_fraction"))
