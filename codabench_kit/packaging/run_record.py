"""A trained run on disk: the recipe, the classifier's weights and the held-out sets.

Training writes a run; packaging reads one. The split lets a GPU machine without
TensorFlow (Keras on JAX or torch) train, and a machine with TensorFlow export the
SavedModel later with ``cbk package RUN_DIR``: weights files are backend-neutral.

Files: ``run.json`` (recipe, data, metrics), ``classifier.weights.h5``, ``heldout.npz``
(clean and augmented test images, labels, and the trained model's probabilities).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codabench_kit.errors import BuildError

RECIPE = "run.json"
WEIGHTS = "classifier.weights.h5"
HELDOUT = "heldout.npz"


@dataclass
class Run:
    path: Path
    recipe: dict

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS

    def heldout(self) -> dict[str, np.ndarray]:
        with np.load(self.path / HELDOUT, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


def save_run(path: Path, recipe: dict, classifier, heldout: dict[str, np.ndarray]) -> Run:
    path.mkdir(parents=True, exist_ok=True)
    classifier.save_weights(str(path / WEIGHTS))
    np.savez(path / HELDOUT, **heldout)
    (path / RECIPE).write_text(json.dumps(recipe, indent=2, sort_keys=True))
    return Run(path, recipe)


def load_run(path: str | Path) -> Run:
    path = Path(path)
    missing = [name for name in (RECIPE, WEIGHTS, HELDOUT) if not (path / name).is_file()]
    if missing:
        raise BuildError(
            f"expected a cbk run folder holding {RECIPE}, {WEIGHTS} and {HELDOUT}; "
            f"{path} lacks {', '.join(missing)}"
        )
    try:
        recipe = json.loads((path / RECIPE).read_text())
    except json.JSONDecodeError as exc:
        raise BuildError(f"{path / RECIPE} is not valid JSON: {exc}") from None
    return Run(path, recipe)


def rebuild_classifier(recipe: dict, registry):
    """Build the untrained classifier the recipe describes (weights come from the file)."""
    from codabench_kit.training.model import assemble_classifier, classifier_for
    from codabench_kit.training.recipe import Recipe

    backbone_spec = recipe["components"]["backbone"][0]
    component = registry.get(backbone_spec["name"], "backbone")
    backbone = component.create(input_shape=tuple(recipe["image_shape"]), weights=None,
                                **backbone_spec["options"])
    training = recipe["training"]
    if "recipe" in training:
        classifier = classifier_for(backbone, recipe["num_classes"],
                                    Recipe.from_dict(training["recipe"]))
    else:  # runs from cbk 0.1.0 before recipes: a linear head
        classifier = assemble_classifier(backbone, recipe["num_classes"],
                                         dropout=training["dropout"])
    return classifier, backbone


def make_tta(recipe: dict, registry):
    spec = recipe["components"]["tta"][0]
    return registry.get(spec["name"], "tta").create(**spec["options"])
