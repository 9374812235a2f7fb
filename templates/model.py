"""Codabench submission made by codabench-kit (cbk).

Needs only numpy and tensorflow. ``Model().predict(X)`` takes uint8 images
(n, H, W, 3) and returns an (n,) int64 array of class labels; ``predict_proba(X)``
returns the (n, classes) float32 probabilities (what ``cbk validate`` compares with the
trained model's on ``probe.npz``). Preprocessing and
test-time augmentation are inside the exported SavedModel in ``artifact/``, which
loads in TF 2.17 + Keras 3.4 and in current versions alike.
"""

import json
import os

import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACT = os.path.join(HERE, "artifact")
BATCH_SIZE = 64


class Model:
    def __init__(self):
        # Keep the loaded object referenced: its serve function uses its variables.
        self.artifact = tf.saved_model.load(ARTIFACT)
        with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        self.image_shape = tuple(manifest["image_shape"])
        self.num_classes = int(manifest["num_classes"])

    def predict(self, X):
        return np.argmax(self.predict_proba(X), axis=-1).astype(np.int64)

    def predict_proba(self, X):
        X = np.asarray(X)
        if X.ndim != 4 or tuple(X.shape[1:]) != self.image_shape:
            raise ValueError(
                f"Expected images of shape (n, {', '.join(map(str, self.image_shape))}). "
                f"Received: shape={X.shape}"
            )
        batches = [np.asarray(self.artifact.serve(tf.constant(X[start:start + BATCH_SIZE],
                                                              dtype=tf.float32)))
                   for start in range(0, len(X), BATCH_SIZE)]
        if not batches:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        return np.concatenate(batches).astype(np.float32)
