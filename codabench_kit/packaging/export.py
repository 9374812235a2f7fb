"""Exporting the inference model as a TensorFlow SavedModel and reading it back.

A ``.keras`` file saved by a recent Keras does not load in the Keras 3.4 of the
Codabench image; a SavedModel from ``model.export()`` does, with identical outputs.
Augmentation is never part of it: only preprocessing, the classifier and TTA.

The export is deterministic: the same model gives the same bytes from one process to
the next (within one process, TensorFlow numbers the traced functions' names with a
process-wide counter, so a second export there names them differently). TensorFlow
alone is not: a traced function lists the variables it uses in
the order of a set keyed by object address, and that order numbers the variables in
``saved_model.pb`` and the checkpoint (``_all_variables/N``); ``fingerprint.pb`` holds
a random uuid. So :func:`export_savedmodel` lists the variables in the model's own order
before writing, and :func:`normalise_fingerprint` derives the uuid from the fingerprint's
content hashes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codabench_kit.backend import has_tensorflow
from codabench_kit.errors import BuildError


def require_tensorflow(run_path: Path | None = None, out_path: Path | None = None) -> None:
    if has_tensorflow():
        return
    where = f" The trained run is saved in {run_path}." if run_path else ""
    raise BuildError(
        "exporting the submission's SavedModel needs TensorFlow, which is not installed "
        f"here.{where} On a machine with TensorFlow, run "
        f"`cbk package {run_path or 'RUN_DIR'} --out {out_path or 'ZIP'}`."
    )


def export_savedmodel(model, directory: Path) -> None:
    """What ``model.export(directory, format="tf_saved_model")`` writes (a ``serve``
    endpoint), with deterministic bytes (see the module's docstring) and every layer in
    inference mode. ``model`` is a single-input functional model.

    ``serve`` calls ``model(x, training=False)``, not ``model.__call__`` as
    ``model.export()`` does: traced without ``training``, a ``keras.layers.Resizing``
    (a backbone's ``size``) leaks ``training=True`` into the call context, so every
    BatchNormalization after it would normalise with the batch's statistics and update
    its moving averages on each call (keras-team/keras-hub#2776, keras-team/keras#23166).
    """
    from codabench_kit.backend import import_keras

    keras = import_keras()
    archive = keras.export.ExportArchive()
    archive.track(model)

    def inference(images):
        return model(images, training=False)

    serve = archive.add_endpoint("serve", inference, input_signature=[
        keras.InputSpec(dtype=x.dtype, shape=(None, *x.shape[1:]), name=x.name)
        for x in model.inputs])
    order_variables(serve.get_concrete_function(), model)
    archive.write_out(str(directory), verbose=False)
    normalise_fingerprint(Path(directory))


def order_variables(concrete_function, model) -> None:
    """List the variables ``concrete_function`` uses in ``model.variables``' order (any
    other by name), instead of TensorFlow's order of object addresses."""
    position = {}
    for index, variable in enumerate(model.variables):
        position.setdefault(id(getattr(variable, "value", variable)), index)
        position.setdefault(id(variable), index)
    used = concrete_function.variables
    concrete_function.set_variables(sorted(
        used, key=lambda v: (position.get(id(v), len(position)), v.name)))


FINGERPRINT = "fingerprint.pb"


def normalise_fingerprint(directory: Path) -> None:
    """Replace the random uuid of ``fingerprint.pb`` (written by recent TensorFlow) by
    one derived from its content hashes, so equal SavedModels get equal fingerprints."""
    import hashlib

    path = directory / FINGERPRINT
    if not path.is_file():
        return
    from tensorflow.core.protobuf import fingerprint_pb2

    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString(path.read_bytes())
    if "uuid" not in fingerprint.DESCRIPTOR.fields_by_name or not fingerprint.uuid:
        return
    fingerprint.uuid = ""
    content = fingerprint.SerializeToString(deterministic=True)
    fingerprint.uuid = str(int.from_bytes(hashlib.sha256(content).digest()[:16], "big"))
    path.write_bytes(fingerprint.SerializeToString(deterministic=True))


def savedmodel_probabilities(directory: Path, images: np.ndarray, batch_size: int = 64):
    """Class probabilities from the exported artifact, as model.py will compute them."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))  # keep it alive: serve uses its variables
    chunks = [np.asarray(loaded.serve(tf.constant(images[i:i + batch_size], dtype=tf.float32)))
              for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), "float32")
