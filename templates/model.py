"""Codabench submission made by codabench-kit (cbk).

Needs only numpy and tensorflow. ``Model().predict(X)`` takes uint8 images
(n, H, W, 3) and returns an (n,) int64 array of class labels. Preprocessing and
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
            self.image_shape = tuple(json.load(fh)["image_shape"])

    def predict(self, X):
        X = np.asarray(X)
        if X.ndim != 4 or tuple(X.shape[1:]) != self.image_shape:
            raise ValueError(
                f"Expected images of shape (n, {', '.join(map(str, self.image_shape))}). "
                f"Received: shape={X.shape}"
            )
        labels = np.empty(len(X), dtype=np.int64)
        for start in range(0, len(X), BATCH_SIZE):
            batch = tf.constant(X[start:start + BATCH_SIZE], dtype=tf.float32)
            probs = self.artifact.serve(batch)
            labels[start:start + BATCH_SIZE] = np.argmax(np.asarray(probs), axis=-1)
        return labels
