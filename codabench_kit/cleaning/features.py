"""Image features for cleaners that compare pictures by content (outliers, similarity).

``thumbnail`` features need nothing but numpy: each image shrunk to ``size`` x ``size``,
centred and scaled to unit length, so the dot product of two is their cosine
similarity. ``backbone`` features use a registered backbone (ImageNet weights give the
VGG16-style features teams used), which imports Keras.
"""

from __future__ import annotations

import numpy as np

from codabench_kit.errors import OptionError


def thumbnail_features(images: np.ndarray, size: int = 16) -> np.ndarray:
    n, h, w = images.shape[:3]
    if h % size or w % size:
        raise OptionError(f"thumbnail size {size} must divide the image size {h}x{w}")
    small = images.reshape(n, size, h // size, size, w // size, -1).mean(axis=(2, 4))
    flat = small.reshape(n, -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    return unit_rows(flat)


def backbone_features(images: np.ndarray, backbone: str, weights: str | None,
                      batch_size: int = 64) -> np.ndarray:
    from codabench_kit.components.plugin_manager import get_plugin_manager
    from codabench_kit.components.registry import Registry
    from codabench_kit.training.weights import normalize_weights

    registry = Registry.from_plugin_manager(get_plugin_manager())
    model = registry.get(backbone, "backbone").create(
        input_shape=images.shape[1:], weights=normalize_weights(weights))
    features = model.predict(images.astype("float32"), batch_size=batch_size, verbose=0)
    return unit_rows(np.asarray(features, dtype=np.float64))


def image_features(images: np.ndarray, features: str = "thumbnail", weights: str = "none",
                   size: int = 16) -> np.ndarray:
    """``features``: ``"thumbnail"`` or the name of a registered backbone."""
    if features == "thumbnail":
        return thumbnail_features(images, size)
    return backbone_features(images, features, weights)


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)
