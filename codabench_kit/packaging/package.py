"""From a trained run to a published submission zip that is proven to run.

1. rebuild the classifier from the run's recipe and load its weights;
2. wrap it with the TTA strategy and export a SavedModel;
3. check the SavedModel's probabilities on the clean test split against the trained
   model's (fidelity);
4. write ``model.py`` + ``artifact/`` + ``manifest.json`` into a temporary zip beside
   the target, run ``cbk validate`` on it, and only then publish it (never overwriting).
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.errors import BuildError
from codabench_kit.packaging.bundle import ensure_absent, publish, tree_entries, write_zip
from codabench_kit.packaging.export import (export_savedmodel, require_tensorflow,
                                             savedmodel_probabilities)
from codabench_kit.robustness_chart import chart_path_for, write_chart

FIDELITY_TOLERANCE = 1e-4


def model_py_template() -> bytes:
    return resources.files("codabench_kit.templates").joinpath("model.py").read_bytes()


def heldout_path_for(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.stem + ".heldout.npz")


def package_run(run, out_path: Path, registry, *, validate: bool = True,
                timeout: float = 600.0, progress: Callable[[str], None] = lambda s: None):
    """Package ``run`` (a :class:`codabench_kit.run_record.Run`, or a list of runs: an
    ensemble) into ``out_path``.

    Returns the manifest. Nothing is left at ``out_path`` unless every check passed.
    """
    runs = list(run) if isinstance(run, (list, tuple)) else [run]
    out_path = Path(out_path)
    ensure_absent(out_path)
    heldout_out = heldout_path_for(out_path)
    ensure_absent(heldout_out)
    chart_out = chart_path_for(out_path)
    ensure_absent(chart_out)
    for member in runs:
        require_tensorflow(member.path, out_path)
    if len(runs) > 1:
        check_ensemble(runs)
    recipe = runs[0].recipe
    heldout = runs[0].heldout()

    from codabench_kit.backend import import_keras

    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise BuildError(
            f"exporting needs the TensorFlow Keras backend; this process runs "
            f"{keras.backend.backend()!r}. Run `KERAS_BACKEND=tensorflow cbk package "
            f"{' '.join(str(r.path) for r in runs)} --out {out_path}`"
        )
    progress("packaging: rebuilding the classifier from the run's weights"
             if len(runs) == 1 else
             f"packaging: rebuilding the {len(runs)} members of the ensemble")
    model = shipped_model(runs, registry)
    if len(runs) > 1:
        recipe, heldout = ensemble_recipe(runs, model, heldout, progress)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cbk-package-") as scratch:
        artifact = Path(scratch) / "artifact"
        progress("packaging: exporting the SavedModel")
        export_savedmodel(model, artifact)

        expected = heldout["probabilities"]
        actual = savedmodel_probabilities(artifact, heldout["images"])
        difference = float(np.max(np.abs(actual - expected))) if len(expected) else 0.0
        agree = int(np.sum(actual.argmax(-1) == expected.argmax(-1)))
        fidelity = {"max_abs_probability_difference": difference,
                    "labels_equal": agree, "n": int(len(expected)),
                    "tolerance": FIDELITY_TOLERANCE}
        progress(f"packaging: artifact vs trained model on {len(expected)} test images: "
                 f"max |dp| {difference:.2e}, {agree}/{len(expected)} labels equal")
        if difference > FIDELITY_TOLERANCE or agree != len(expected):
            raise BuildError(
                f"the exported SavedModel does not reproduce the trained model: max "
                f"probability difference {difference:.2e} (allowed {FIDELITY_TOLERANCE:.0e}), "
                f"{agree}/{len(expected)} labels equal"
            )

        manifest = dict(recipe)
        manifest["artifact"] = {"format": "tf_saved_model", "path": "artifact",
                                "input": "float32 images 0..255, shape (n, H, W, 3)",
                                "output": "class probabilities averaged over TTA views"}
        manifest["fidelity"] = fidelity
        entries = {"model.py": model_py_template(),
                   "manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode(),
                   **tree_entries(artifact, "artifact")}
        partial = out_path.with_name(f".{out_path.name}.partial")
        partial_heldout = heldout_out.with_name(f".{heldout_out.name}.partial")
        try:
            write_zip(partial, entries)
            predictions = expected.argmax(-1)
            with open(partial_heldout, "wb") as fh:  # np.savez(path) would append .npz
                np.savez(fh, images=heldout["images"], labels=heldout["labels"],
                         predictions=predictions, images_augmented=heldout["images_augmented"],
                         labels_augmented=heldout.get("labels_augmented",
                                                      heldout["labels"]),
                         predictions_augmented=heldout["probabilities_augmented"].argmax(-1))
            if validate:
                _validate_before_publishing(partial, heldout, predictions, recipe, timeout,
                                            progress)
            publish(partial, out_path)
            publish(partial_heldout, heldout_out)
        finally:
            for leftover in (partial, partial_heldout):
                leftover.unlink(missing_ok=True)
    if manifest.get("robustness"):  # after the zip: a chart never stands beside a failure
        progress(f"robustness chart: {write_chart(manifest['robustness'], chart_out)}")
    return manifest


def shipped_model(runs, registry):
    """The inference model (TTA included) of one run, or of several averaged: each
    member under its own name (``member_0``...), so identical layer names never clash,
    and their probabilities averaged in the same graph: one artifact, one call."""
    from codabench_kit.backend import import_keras
    from codabench_kit.run_record import make_tta, rebuild_classifier
    from codabench_kit.training.model import inference_model

    keras = import_keras()
    members = []
    for index, run in enumerate(runs):
        classifier, _ = rebuild_classifier(run.recipe, registry)
        classifier.load_weights(str(run.weights_path))
        members.append(inference_model(classifier, make_tta(run.recipe, registry)))
    if len(members) == 1:
        return members[0]
    inputs = keras.Input(tuple(runs[0].recipe["image_shape"]), name="images")
    outputs = [keras.Model(m.input, m.output, name=f"member_{i}")(inputs)
               for i, m in enumerate(members)]
    return keras.Model(inputs, keras.ops.mean(keras.ops.stack(outputs), axis=0),
                       name="ensemble")


def check_ensemble(runs) -> None:
    """Members must agree on the image shape, the classes and their names."""
    first = runs[0].recipe
    for run in runs[1:]:
        for key in ("image_shape", "num_classes", "class_names"):
            if run.recipe.get(key) != first.get(key):
                raise BuildError(
                    f"the runs of an ensemble must share their {key}: expected "
                    f"{first.get(key)!r} (as {runs[0].path}), received {run.recipe.get(key)!r} "
                    f"from {run.path}")


def ensemble_recipe(runs, model, heldout, progress):
    """The manifest's recipe for an ensemble, and the first run's held-out sets with the
    ensemble's probabilities (what the artifact must reproduce) and metrics on them.

    Those metrics are honest only when every member was split the same way (same data
    fingerprint, seed and fractions): otherwise one member's test images may be another's
    training images, and the manifest says so."""
    from codabench_kit.evaluation import heldout_metrics

    first = runs[0].recipe
    heldout = dict(heldout)
    metrics = heldout_metrics(model, heldout, first["num_classes"])

    def split_of(recipe):
        return (recipe["data"]["fingerprint"], recipe["seed"], recipe["split"]["val_fraction"],
                recipe["split"]["test_fraction"])

    same_split = all(split_of(run.recipe) == split_of(first) for run in runs)
    recipe = dict(first)
    recipe["metrics"] = metrics
    recipe["robustness"] = None
    recipe["ensemble"] = {
        "members": [{"run": str(run.path), "components": run.recipe["components"],
                     "metrics": run.recipe.get("metrics", {})} for run in runs],
        "merge": "mean of the members' probabilities",
        "same_split": same_split,
    }
    progress(f"ensemble of {len(runs)} on the first run's test set: clean accuracy "
             f"{metrics['clean_test']['accuracy']:.3f}, augmented "
             f"{metrics['augmented_test']['accuracy']:.3f}"
             + ("" if same_split else " (members were split differently: these test "
                "images may have trained some members, so read these figures as optimistic)"))
    return recipe, heldout


def _validate_before_publishing(zip_path, heldout, predictions, recipe, timeout, progress):
    from codabench_kit.validation import validate_zip

    progress("packaging: validating the zip as Codabench runs it")
    report = validate_zip(zip_path, images=heldout["images"], labels=heldout["labels"],
                          num_classes=recipe["num_classes"], timeout=timeout)
    for line in report.lines():
        progress(f"  {line}")
    if not report.ok:
        raise BuildError("the submission failed validation; no zip was written")
    if report.predictions is not None and not np.array_equal(report.predictions, predictions):
        same = int(np.sum(report.predictions == predictions))
        raise BuildError(
            f"the zip's predictions differ from the trained model's: {same}/{len(predictions)} "
            f"equal; no zip was written"
        )
