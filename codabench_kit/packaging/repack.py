"""``cbk repack``: turn a zip whose model file the target cannot load (a ``.keras`` saved
by a newer Keras, say) into one that loads there, with the same outputs.

1. unpack the zip safely and find its one model file: a ``.keras``, ``.h5``/``.hdf5``, or
   a SavedModel folder (one with ``saved_model.pb``); none or several is an error that
   names what was found;
2. load it HERE, with this interpreter's Keras (``safe_mode`` on: no Lambda code), in this
   process: repack only zips you trust;
3. export it as a SavedModel (:func:`~.export.export_savedmodel`) under ``artifact/``
   with cbk's ``model.py`` (templates/model.py: ``tf.saved_model.load``, predict =
   argmax of the model's output on ``float32(X)``) and a ``manifest.json``;
4. check parity: the SavedModel's outputs against the loaded model's on a probe batch of
   seeded uint8 images, max |dp| within 1e-4; the probe goes in ``probe.npz``, so
   ``cbk validate`` checks the same parity again in the target;
5. validate the new zip in the target (unless told not to), then publish it; the output
   is never overwritten and nothing partial is left on failure.

What it cannot carry over: whatever the original ``model.py`` did around the model
(preprocessing in Python such as ``X / 255``, TTA, ensembling, thresholds, label
remapping). :func:`python_work` reads the original ``predict`` and says where it does
more than call the model, so the caller can warn.
"""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from codabench_kit.errors import BuildError, ZipRejectedError
from codabench_kit.packaging.bundle import ensure_absent, publish, tree_entries, write_zip
from codabench_kit.validation.fidelity import PARITY_TOLERANCE, PROBE_FILE

PROBE_IMAGES = 16
PROBE_SEED = 0
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
PLAIN_CALLS = frozenset({
    "predict", "predict_on_batch", "__call__", "argmax", "astype", "asarray", "array",
    "squeeze", "reshape", "ravel", "flatten", "numpy", "int", "len", "constant",
    "convert_to_tensor", "cast", "predict_proba", "concatenate", "int64", "int32",
})
"""Calls a ``predict`` that only runs the model and takes the argmax may make."""
MODEL_CALLS = frozenset({"serve", "serving_default", "call", "predict_step"})
"""Endpoints of a loaded model (``self.artifact.serve(...)``)."""


@dataclass(frozen=True)
class RepackResult:
    out: Path
    model_file: str
    """The model file repacked, relative to the zip's root."""
    max_dp: float
    """Largest difference between the original and the repacked model on the probe."""
    warnings: tuple[str, ...] = ()
    report: object | None = field(default=None, repr=False)
    """The :class:`~codabench_kit.validation.runner.ValidationReport` of the new zip."""


def find_model_file(root: Path) -> Path:
    """The submission's one model file (or SavedModel folder), else a :class:`BuildError`
    naming what was found."""
    found = [p for p in sorted(root.rglob("*"))
             if (p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
             or (p.is_dir() and (p / "saved_model.pb").is_file())]
    names = [p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in found]
    if len(found) == 1:
        return found[0]
    if not found:
        listed = ", ".join(sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                                  if p.is_file())[:10]) or "nothing"
        raise BuildError("no model file to repack: expected one .keras, .h5/.hdf5 or "
                         f"SavedModel folder (with saved_model.pb) in the zip; it holds: {listed}")
    raise BuildError(f"several model files in the zip ({', '.join(names)}): cbk repack "
                     "repacks a zip with exactly one")


def load_model_here(path: Path):
    """The model of ``path`` loaded with this interpreter's Keras, as a single-input model."""
    from codabench_kit.backend import import_keras

    keras = import_keras()
    if path.is_dir():  # a SavedModel: wrap its serving endpoint in a functional model
        layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
        spec = _savedmodel_input(path)
        inputs = keras.Input(shape=spec[0], dtype=spec[1])
        outputs = layer(inputs)
        if isinstance(outputs, dict):
            if len(outputs) != 1:
                raise BuildError(f"{path.name}: the SavedModel has {len(outputs)} outputs "
                                 f"({', '.join(outputs)}); cbk repack expects one")
            outputs = next(iter(outputs.values()))
        return keras.Model(inputs, outputs)
    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        raise BuildError(f"cannot load {path.name} with Keras {keras.__version__} here: "
                         f"{type(exc).__name__}: {_last_line(exc)}") from exc
    if len(getattr(model, "inputs", None) or []) != 1:
        raise BuildError(f"{path.name}: cbk repack expects a model with one input")
    return model


def _savedmodel_input(path: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    specs = list(signature.structured_input_signature[1].values())
    if len(specs) != 1:
        raise BuildError(f"{path.name}: cbk repack expects a SavedModel with one input")
    return tuple(specs[0].shape[1:]), specs[0].dtype.name


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def python_work(model_py: str) -> list[str]:
    """Where the original ``Model.predict`` does more than run the model and take the
    argmax: arithmetic (``X / 255``) and calls to anything else, as ``model.py:LINE: CODE``."""
    try:
        tree = ast.parse(model_py)
    except SyntaxError:
        return ["model.py does not parse"]
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ClassDef) and node.name == "Model"):
            continue
        methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
        for method in node.body:
            if not (isinstance(method, ast.FunctionDef) and method.name == "predict"):
                continue
            for inner in ast.walk(method):
                if isinstance(inner, ast.BinOp) or (
                        isinstance(inner, ast.Call) and not _runs_the_model(inner, methods)):
                    segment = ast.get_source_segment(model_py, inner) or ""
                    found.append(f"model.py:{inner.lineno}: {' '.join(segment.split())[:60]}")
    return sorted(set(found), key=lambda s: (int(s.split(":")[1]), s))


def _runs_the_model(call: ast.Call, methods: set[str]) -> bool:
    """A call that only runs the loaded model or takes the answer out of its output:
    ``np.argmax(...)``, ``self.model.predict(X)``, ``self.model(X)``, ``self.m.serve(...)``;
    not a method of Model's own (``self.preprocess(X)``)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    root = func
    while isinstance(root, ast.Attribute):
        root = root.value
    on_self = isinstance(root, ast.Name) and root.id == "self"
    if on_self and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return name not in methods  # self.model(X): the model object itself
    return name in PLAIN_CALLS or (on_self and name in MODEL_CALLS)


def probe_images(shape: tuple[int, ...], n: int = PROBE_IMAGES) -> np.ndarray:
    rng = np.random.default_rng(PROBE_SEED)
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def repack_zip(zip_path: str | Path, out: str | Path, *, validate: bool = True,
               python: Callable[[], str] | str | None = None, conditions: str | None = None,
               timeout: float | None = None,
               progress: Callable[[str], None] = lambda line: None) -> RepackResult:
    """Repack ``zip_path`` into ``out`` (see the module's docstring). ``python`` (or a
    function making it) and ``conditions`` say where the new zip is validated."""
    from codabench_kit.backend import has_tensorflow
    from codabench_kit.packaging.export import export_savedmodel
    from codabench_kit.packaging.package import model_py_template, npz_bytes
    from codabench_kit.validation.safe_zip import safe_extract

    zip_path, out = Path(zip_path), Path(out)
    ensure_absent(out)
    if not has_tensorflow():
        raise BuildError("cbk repack loads the model and exports a SavedModel: it needs "
                         "TensorFlow and Keras here (pip install tensorflow), a Keras that "
                         "can load the zip's model file")
    work = Path(tempfile.mkdtemp(prefix="cbk-repack-"))
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        source = work / "in"
        try:
            safe_extract(zip_path, source)
        except ZipRejectedError as exc:
            raise BuildError(f"cannot repack {zip_path.name}: {exc}") from exc
        model_file = find_model_file(source)
        name = model_file.relative_to(source).as_posix()
        warnings = []
        if (source / "model.py").is_file():
            extra = python_work((source / "model.py").read_text(encoding="utf-8", errors="replace"))
            if extra:
                warnings.append(
                    "the original predict does more than run the model ("
                    + "; ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
                    + "): the repacked model.py only feeds float32(X) to the model and takes the "
                    "argmax — put that work inside the model, or edit the new model.py")
        progress(f"repack: loading {name} with this interpreter's Keras")
        model = load_model_here(model_file)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        artifact = work / "out" / "artifact"
        progress("repack: exporting it as a SavedModel")
        export_savedmodel(model, artifact)
        images = probe_images(shape)
        original = np.asarray(model.predict(images.astype(np.float32), verbose=0), np.float32)
        repacked = _savedmodel_outputs(artifact, images)
        if original.ndim != 2 or original.shape != repacked.shape:
            raise BuildError(f"{name}: expected an output of shape (n, classes), received "
                             f"{original.shape}; cbk repack handles one-output classifiers")
        max_dp = float(np.max(np.abs(original - repacked)))
        progress(f"repack: parity on {len(images)} probe images: max |dp| {max_dp:.1e}")
        if not max_dp <= PARITY_TOLERANCE:
            raise BuildError(f"the SavedModel differs from {name} by max |dp| {max_dp:.1e} on the "
                             f"probe (tolerance {PARITY_TOLERANCE:g}); no zip was written")
        manifest = {"image_shape": list(shape), "num_classes": int(original.shape[1]),
                    "repacked": {"from": zip_path.name, "model_file": name,
                                 "probe": {"path": PROBE_FILE, "images": len(images),
                                           "max_dp": max_dp}}}
        entries = {"model.py": model_py_template(),
                   "manifest.json": (json.dumps(manifest, indent=2) + "\n").encode(),
                   PROBE_FILE: npz_bytes(images=images, probabilities=original),
                   **tree_entries(artifact, "artifact")}
        ensure_absent(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_zip(partial, entries)
        report = _validate(partial, python, conditions, timeout, progress) if validate else None
        publish(partial, out)
        return RepackResult(out, name, max_dp, tuple(warnings), report)
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _savedmodel_outputs(artifact: Path, images: np.ndarray) -> np.ndarray:
    from codabench_kit.packaging.export import savedmodel_probabilities

    return np.asarray(savedmodel_probabilities(artifact, images), np.float32)


def _validate(path: Path, python, conditions, timeout, progress):
    from codabench_kit.validation.runner import TIMEOUT_S, validate_zip

    interpreter = python() if callable(python) else python
    progress("repack: validating the new zip in the target")
    report = validate_zip(path, python=interpreter, conditions=conditions,
                          timeout=timeout or TIMEOUT_S, progress=progress)
    for line in report.lines():
        progress(f"  {line}")
    if not report.ok:
        raise BuildError("the repacked zip failed validation (lines above); no zip was written")
    return report
