"""Choosing the Keras backend before Keras is imported.

TensorFlow is the default (the submission artifact is a TensorFlow SavedModel). Where
TensorFlow is missing but JAX or PyTorch is installed, as on a GPU machine without
TensorFlow, Keras runs on that backend; ``KERAS_BACKEND`` set by the user always wins.
"""

from __future__ import annotations

import importlib.util
import os

PREFERENCE = ("tensorflow", "jax", "torch")


def available_backends() -> list[str]:
    return [name for name in PREFERENCE if importlib.util.find_spec(name) is not None]


def choose_backend() -> str:
    """Set ``KERAS_BACKEND`` (unless already set) and return the backend Keras will use."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    chosen = os.environ.get("KERAS_BACKEND")
    if not chosen:
        found = available_backends()
        chosen = found[0] if found else "tensorflow"
        os.environ["KERAS_BACKEND"] = chosen
    return chosen


def import_keras():
    """Import Keras on the chosen backend and return the module."""
    choose_backend()
    import keras

    return keras


def has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def device_summary() -> str:
    """One line naming the accelerator Keras trains on, e.g. ``GPU (NVIDIA H100)`` or ``CPU``."""
    keras = import_keras()
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"GPU x{len(gpus)} (tensorflow)" if gpus else "CPU (tensorflow)"
        if backend == "jax":
            import jax

            devices = jax.devices()
            kind = devices[0].platform.upper()
            return f"{kind} x{len(devices)} (jax: {devices[0].device_kind})"
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"GPU x{torch.cuda.device_count()} (torch: {torch.cuda.get_device_name(0)})"
            return "CPU (torch)"
    except Exception as exc:  # device discovery must never stop a build
        return f"unknown ({backend}: {exc})"
    return f"? ({backend})"
