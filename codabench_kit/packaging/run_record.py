"""A trained run on disk: the manifest, the classifier's weights and the held-out sets.

Training writes a run; packaging reads one. The split lets a GPU machine without
TensorFlow (Keras on JAX or torch) train, and a machine with TensorFlow export the
SavedModel later with ``cbk package RUN_DIR``: weights files are backend-neutral.

Files: ``run.json`` (the :class:`RunManifest`: components, recipe, data, metrics), ``classifier.weights.h5``, ``heldout.npz``
(clean and augmented test images, labels, and the trained model's probabilities).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codabench_kit.errors import BuildError
from codabench_kit.evaluation.heldout_sets import HeldoutSets
from codabench_kit.packaging.manifest import RunManifest

RECIPE = "run.json"
WEIGHTS = "classifier.weights.h5"
HELDOUT = "heldout.npz"


@dataclass
class Run:
    path: Path
    manifest: RunManifest

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS

    def heldout(self) -> HeldoutSets:
        with np.load(self.path / HELDOUT, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return HeldoutSets.from_npz(arrays, self.manifest.heldout)


def save_run(path: Path, manifest: RunManifest, classifier, heldout: HeldoutSets) -> Run:
    path.mkdir(parents=True, exist_ok=True)
    classifier.save_weights(str(path / WEIGHTS))
    np.savez(path / HELDOUT, **heldout.to_npz())
    (path / RECIPE).write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True))
    return Run(path, manifest)


def load_run(path: str | Path) -> Run:
    path = Path(path)
    missing = [name for name in (RECIPE, WEIGHTS, HELDOUT) if not (path / name).is_file()]
    if missing:
        raise BuildError(
            f"expected a cbk run folder holding {RECIPE}, {WEIGHTS} and {HELDOUT}; "
            f"{path} lacks {', '.join(missing)}"
        )
    try:
        manifest = RunManifest.from_dict(json.loads((path / RECIPE).read_text()))
    except json.JSONDecodeError as exc:
        raise BuildError(f"{path / RECIPE} is not valid JSON: {exc}") from None
    except TypeError as exc:
        raise BuildError(f"{path / RECIPE} is not a cbk run's manifest: {exc}") from None
    return Run(path, manifest)


def rebuild_classifier(manifest: RunManifest, registry):
    """Build the untrained classifier the manifest describes (weights come from the file)."""
    from codabench_kit.training.model import assemble_classifier, classifier_for
    from codabench_kit.training.recipe import Recipe

    backbone_spec = manifest.component("backbone")
    component = registry.get(backbone_spec["name"], "backbone")
    backbone = component.create(input_shape=tuple(manifest.image_shape), weights=None,
                                **backbone_spec["options"])
    training = manifest.training
    if "recipe" in training:
        classifier = classifier_for(backbone, manifest.num_classes,
                                    Recipe.from_dict(training["recipe"]))
    else:  # runs from cbk 0.1.0 before recipes: a linear head
        classifier = assemble_classifier(backbone, manifest.num_classes,
                                         dropout=training["dropout"])
    return classifier, backbone


def make_tta(manifest: RunManifest, registry):
    spec = manifest.component("tta")
    return registry.get(spec["name"], "tta").create(**spec["options"])
