"""From a trained run to a published submission zip that is proven to run.

1. rebuild the classifier from the run's recipe and load its weights;
2. wrap it with the TTA strategy and export a SavedModel;
3. check the SavedModel's probabilities on the clean test split against the trained
   model's (fidelity);
4. write ``model.py`` + ``artifact/`` + ``manifest.json`` + ``probe.npz`` (32 test images
   and the trained model's probabilities: the parity probe) into a temporary zip beside
   the target, run ``cbk validate`` on it, and only then publish it (never overwriting);
5. beside it, write the build record ``<name>.build.json``.

Reproducible zips: the same data, seed and options give, on CPU, a byte-identical zip
from one run of ``cbk build`` to the next (each run its own process).
So the manifest inside the zip holds nothing that depends on when or where the build
ran (:func:`split_manifest`): the build date, the durations and the data's full path go
to the build record beside the zip, with the zip's sha256; the manifest keeps the
data's file name and fingerprint. The entries have fixed dates and modes
(:func:`codabench_kit.packaging.bundle.write_zip`) and the SavedModel's bytes are made
deterministic (:mod:`codabench_kit.packaging.export`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import tempfile
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.errors import BuildError
from codabench_kit.evaluation.heldout_sets import HeldoutSets, TestSet
from codabench_kit.packaging.bundle import (ensure_absent, publish, tree_entries, write_new_file,
                                             write_zip)
from codabench_kit.packaging.export import (export_savedmodel, require_tensorflow,
                                             savedmodel_probabilities)
from codabench_kit.packaging.paths import SubmissionPaths
from codabench_kit.report.chart import write_chart
from codabench_kit.validation.fidelity import PARITY_TOLERANCE, PROBE_FILE, Budget
from codabench_kit.validation.runner import TIMEOUT_S

FIDELITY_TOLERANCE = 1e-4
PROBE_IMAGES = 32
"""Clean test images in a zip's ``probe.npz``, with the trained model's probabilities on
them, for ``cbk validate``'s parity check in the target environment."""


def model_py_template() -> bytes:
    return resources.files("codabench_kit.templates").joinpath("model.py").read_bytes()


VOLATILE_KEYS = (("created",), ("training", "seconds"), ("robustness", "seconds"))
"""Manifest values that change from one run of the same build to the next."""


def split_manifest(manifest: dict) -> tuple[dict, dict]:
    """``(inside, beside)``: the manifest for the zip, with nothing time- or
    path-dependent, and what was taken out of it, nested as in the manifest, for the
    build record beside the zip.

    Taken out: the build date (``created``), the durations (``training.seconds``,
    ``robustness.seconds``), the data's path (``data.source`` keeps the file or folder
    name; a demo source such as ``demo(seed=0)`` stays) and an ensemble's run folders
    (``ensemble.members[].run`` keeps the folder name)."""
    inside = copy.deepcopy(manifest)
    beside: dict = {}
    for keys in VOLATILE_KEYS:
        holder, outer = inside, beside
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
            outer = outer.setdefault(key, {})
        if isinstance(holder, dict) and keys[-1] in holder:
            outer[keys[-1]] = holder.pop(keys[-1])
    beside = {key: value for key, value in beside.items() if value != {}}
    data = inside.get("data")
    source = data.get("source") if isinstance(data, dict) else None
    if isinstance(source, str) and not source.startswith("demo("):
        beside.setdefault("data", {})["source"] = source
        data["source"] = Path(source).name or source
    ensemble = inside.get("ensemble")
    if isinstance(ensemble, dict):
        members = ensemble.get("members") or []
        beside["ensemble"] = {"runs": [m.get("run") for m in members]}
        for member in members:
            member["run"] = Path(str(member.get("run", ""))).name
    return inside, beside


def write_build_record(zip_path: Path, beside: dict) -> Path:
    """The build record: the zip's name and sha256 (so a record never describes another
    zip), the build date (now, when the run did not record one) and ``beside``."""
    record = {"zip": zip_path.name,
              "sha256": hashlib.sha256(zip_path.read_bytes()).hexdigest(),
              **beside}
    record.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    return write_new_file(SubmissionPaths(zip_path).build_record,
                          lambda partial: partial.write_text(text, encoding="utf-8"))


def package_run(run, out_path: Path, registry, *, validate: bool = True,
                timeout: float = TIMEOUT_S, progress: Callable[[str], None] = lambda s: None):
    """Package ``run`` (a :class:`codabench_kit.packaging.run_record.Run`, or a list of runs: an
    ensemble) into ``out_path``.

    Returns the manifest, whole: the zip's (see :func:`split_manifest`) with the build
    record's values put back. Nothing is left at ``out_path`` unless every check passed.
    """
    runs = list(run) if isinstance(run, (list, tuple)) else [run]
    paths = SubmissionPaths(out_path)
    for path in (paths.zip, paths.heldout, paths.chart, paths.build_record):
        ensure_absent(path)
    for member in runs:
        require_tensorflow(member.path, paths.zip)
    if len(runs) > 1:
        check_ensemble(runs)
    _require_tensorflow_backend(runs, paths.zip)
    progress("packaging: rebuilding the classifier from the run's weights"
             if len(runs) == 1 else
             f"packaging: rebuilding the {len(runs)} members of the ensemble")
    model = shipped_model(runs, registry)
    manifest, heldout = runs[0].manifest.to_dict(), runs[0].heldout()
    if len(runs) > 1:
        manifest, heldout = ensemble_manifest(runs, model, heldout, progress)
    paths.zip.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cbk-package-") as scratch:
        artifact = Path(scratch) / "artifact"
        progress("packaging: exporting the SavedModel")
        export_savedmodel(model, artifact)
        manifest.update(artifact_sections(artifact, heldout.clean, progress))
        inside, beside = split_manifest(manifest)
        entries = {"model.py": model_py_template(),
                   "manifest.json": json.dumps(inside, indent=2, sort_keys=True).encode(),
                   PROBE_FILE: probe_bytes(heldout.clean),
                   **tree_entries(artifact, "artifact")}
        _publish(paths, entries, heldout, manifest["num_classes"],
                 timeout=timeout if validate else None, progress=progress)
    # After the zip: a record or a chart never stands beside a failure.
    progress(f"build record: {write_build_record(paths.zip, beside)}")
    if manifest.get("robustness"):
        progress(f"robustness chart: {write_chart(manifest['robustness'], paths.chart)}")
    return manifest


def _require_tensorflow_backend(runs, out_path: Path) -> None:
    from codabench_kit.backend import import_keras

    keras = import_keras()
    if keras.backend.backend() != "tensorflow":
        raise BuildError(
            f"exporting needs the TensorFlow Keras backend; this process runs "
            f"{keras.backend.backend()!r}. Run `KERAS_BACKEND=tensorflow cbk package "
            f"{' '.join(str(r.path) for r in runs)} --out {out_path}`"
        )


def artifact_sections(artifact: Path, clean: TestSet, progress) -> dict:
    """The manifest's ``artifact``, ``fidelity`` and ``probe`` sections, after checking that
    the exported SavedModel reproduces the trained model's probabilities on ``clean``."""
    expected = clean.probabilities
    actual = savedmodel_probabilities(artifact, clean.images)
    difference = float(np.max(np.abs(actual - expected))) if len(expected) else 0.0
    agree = int(np.sum(actual.argmax(-1) == expected.argmax(-1)))
    progress(f"packaging: artifact vs trained model on {len(expected)} test images: "
             f"max |dp| {difference:.2e}, {agree}/{len(expected)} labels equal")
    if difference > FIDELITY_TOLERANCE or agree != len(expected):
        raise BuildError(
            f"the exported SavedModel does not reproduce the trained model: max "
            f"probability difference {difference:.2e} (allowed {FIDELITY_TOLERANCE:.0e}), "
            f"{agree}/{len(expected)} labels equal"
        )
    return {
        "artifact": {"format": "tf_saved_model", "path": "artifact",
                     "input": "float32 images 0..255, shape (n, H, W, 3)",
                     "output": "class probabilities averaged over TTA views"},
        "fidelity": {"max_abs_probability_difference": difference, "labels_equal": agree,
                     "n": int(len(expected)), "tolerance": FIDELITY_TOLERANCE},
        "probe": {"path": PROBE_FILE, "images": int(min(PROBE_IMAGES, len(expected))),
                  "tolerance": PARITY_TOLERANCE,
                  "probabilities": "the trained model's, on the first clean test images"},
    }


def probe_bytes(clean: TestSet) -> bytes:
    """``probe.npz``: the first clean test images and the trained model's probabilities."""
    probe = slice(0, PROBE_IMAGES)
    return npz_bytes(images=clean.images[probe],
                     probabilities=clean.probabilities[probe].astype(np.float32),
                     tolerance=np.float64(PARITY_TOLERANCE))


def _publish(paths: SubmissionPaths, entries: dict, heldout: HeldoutSets, num_classes: int,
             *, timeout: float | None, progress) -> None:
    """Write the zip and the held-out predictions as partial files, validate the zip
    (unless ``timeout`` is None), then publish both; nothing is left on failure."""
    partial = paths.zip.with_name(f".{paths.zip.name}.partial")
    partial_heldout = paths.heldout.with_name(f".{paths.heldout.name}.partial")
    try:
        write_zip(partial, entries)
        with open(partial_heldout, "wb") as fh:  # np.savez(path) would append .npz
            np.savez(fh, **heldout.predictions_npz())
        if timeout is not None:
            _validate_before_publishing(partial, heldout.clean, num_classes, timeout, progress)
        publish(partial, paths.zip)
        publish(partial_heldout, paths.heldout)
    finally:
        for leftover in (partial, partial_heldout):
            leftover.unlink(missing_ok=True)


def shipped_model(runs, registry):
    """The inference model (TTA included) of one run, or of several averaged: each
    member under its own name (``member_0``...), so identical layer names never clash,
    and their probabilities averaged in the same graph: one artifact, one call."""
    from codabench_kit.backend import import_keras
    from codabench_kit.packaging.run_record import make_tta, rebuild_classifier
    from codabench_kit.training.model import inference_model

    keras = import_keras()
    members = []
    for run in runs:
        classifier, _ = rebuild_classifier(run.manifest, registry)
        classifier.load_weights(str(run.weights_path))
        members.append(inference_model(classifier, make_tta(run.manifest, registry)))
    if len(members) == 1:
        return members[0]
    inputs = keras.Input(tuple(runs[0].manifest.image_shape), name="images")
    outputs = [keras.Model(m.input, m.output, name=f"member_{i}")(inputs)
               for i, m in enumerate(members)]
    return keras.Model(inputs, keras.ops.mean(keras.ops.stack(outputs), axis=0),
                       name="ensemble")


def check_ensemble(runs) -> None:
    """Members must agree on the image shape, the classes and their names."""
    first = runs[0].manifest
    for run in runs[1:]:
        for key in ("image_shape", "num_classes", "class_names"):
            if getattr(run.manifest, key) != getattr(first, key):
                raise BuildError(
                    f"the runs of an ensemble must share their {key}: expected "
                    f"{getattr(first, key)!r} (as {runs[0].path}), received "
                    f"{getattr(run.manifest, key)!r} from {run.path}")


def ensemble_manifest(runs, model, heldout: HeldoutSets, progress) -> tuple[dict, HeldoutSets]:
    """The manifest of an ensemble, and the first run's held-out sets with the
    ensemble's probabilities (what the artifact must reproduce) and metrics on them.

    Those metrics are honest only when every member was split the same way (same data
    fingerprint, seed and fractions): otherwise one member's test images may be another's
    training images, and the manifest says so."""
    from codabench_kit.evaluation.metrics import heldout_metrics

    first = runs[0].manifest
    metrics, heldout = heldout_metrics(model, heldout, first.num_classes)
    same_split = all(run.manifest.split_identity() == first.split_identity() for run in runs)
    manifest = dataclasses.replace(first, metrics=metrics, robustness=None).to_dict()
    manifest["ensemble"] = {
        "members": [{"run": str(run.path), "components": run.manifest.components,
                     "metrics": run.manifest.metrics} for run in runs],
        "merge": "mean of the members' probabilities",
        "same_split": same_split,
    }
    progress(f"ensemble of {len(runs)} on the first run's test set: clean accuracy "
             f"{metrics['clean_test']['accuracy']:.3f}, augmented "
             f"{metrics['augmented_test']['accuracy']:.3f}"
             + ("" if same_split else " (members were split differently: these test "
                "images may have trained some members, so read these figures as optimistic)"))
    return manifest, heldout


def npz_bytes(**arrays) -> bytes:
    """An ``.npz`` (what ``np.load`` reads) with fixed entry dates: ``np.savez`` stamps the
    current time, which would make the zip differ from build to build."""
    entries = {}
    for name, array in arrays.items():
        entry = io.BytesIO()
        np.lib.format.write_array(entry, np.asarray(array), allow_pickle=False)
        entries[f"{name}.npy"] = entry.getvalue()
    buffer = io.BytesIO()
    write_zip(buffer, entries)
    return buffer.getvalue()


def _validate_before_publishing(zip_path, clean: TestSet, num_classes: int, timeout: float,
                                progress) -> None:
    """``cbk validate`` on the zip, on the clean test set: it must run, and its
    predictions must be the trained model's."""
    from codabench_kit.validation import validate_zip

    progress("packaging: validating the zip as Codabench runs it")
    report = validate_zip(zip_path, images=clean.images, labels=clean.labels,
                          num_classes=num_classes, timeout=timeout, budget=Budget())
    for line in report.lines():
        progress(f"  {line}")
    if not report.ok:
        raise BuildError("the submission failed validation; no zip was written")
    predictions = clean.predictions
    if report.predictions is not None and not np.array_equal(report.predictions, predictions):
        same = int(np.sum(report.predictions == predictions))
        raise BuildError(
            f"the zip's predictions differ from the trained model's: {same}/{len(predictions)} "
            f"equal; no zip was written"
        )
