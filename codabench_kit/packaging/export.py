"""Exporting the inference model as a TensorFlow SavedModel and reading it back.

A ``.keras`` file saved by a recent Keras does not load in the Keras 3.4 of the
Codabench image; a SavedModel from ``model.export()`` does, with identical outputs.
Augmentation is never part of it: only preprocessing, the classifier and TTA.
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
    model.export(str(directory), format="tf_saved_model", verbose=False)


def savedmodel_probabilities(directory: Path, images: np.ndarray, batch_size: int = 64):
    """Class probabilities from the exported artifact, as model.py will compute them."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))  # keep it alive: serve uses its variables
    chunks = [np.asarray(loaded.serve(tf.constant(images[i:i + batch_size], dtype=tf.float32)))
              for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), "float32")
