"""Augmentation policies: ``randaugment`` and ``augmix``."""

from __future__ import annotations

import math
import random as py_random

from codabench_kit.errors import OptionError
from codabench_kit.plugins.augmenters.base import Augmenter, _keras, _on_subset, _per_image
from codabench_kit.plugins.augmenters.image_ops import _affine, _contrast, _gray


# --- policies: RandAugment, AugMix ---------------------------------------------------------


_RANDAUGMENT_OPS = ("identity", "autocontrast", "equalize", "rotate", "solarize", "color",
                    "posterize", "contrast", "brightness", "sharpness", "shear_x", "shear_y",
                    "translate_x", "translate_y")


def _autocontrast(images):
    from keras import ops

    low = ops.min(images, axis=(1, 2), keepdims=True)
    high = ops.max(images, axis=(1, 2), keepdims=True)
    span = high - low
    scale = ops.where(span > 0, 255.0 / ops.maximum(span, 1e-6), 1.0)
    return (images - ops.where(span > 0, low, 0.0)) * scale


def _equalize(images):
    """Histogram equalisation per image and channel (256 bins), one bincount for all."""
    from keras import ops

    batch, height, width, channels = ops.shape(images)
    rows = batch * channels
    pixels = ops.cast(ops.clip(ops.round(images), 0, 255), "int32")
    flat = ops.reshape(ops.transpose(pixels, (0, 3, 1, 2)), (rows, height * width))
    offset = ops.arange(rows, dtype="int32")[:, None] * 256
    counts = ops.reshape(ops.bincount(ops.reshape(flat + offset, (-1,)), minlength=rows * 256),
                         (rows, 256))
    counts = ops.cast(counts, "float32")
    cdf = ops.cumsum(counts, axis=1)
    total = float(height * width)
    first = ops.min(ops.where(counts > 0, cdf, total), axis=1, keepdims=True)
    lut = (cdf - first) / ops.maximum(total - first, 1.0) * 255.0
    lut = ops.where(total - first > 0, lut, ops.arange(256, dtype="float32")[None, :])
    out = ops.take(ops.reshape(lut, (-1,)), flat + offset)
    return ops.transpose(ops.reshape(out, (batch, channels, height, width)), (0, 2, 3, 1))


def _smooth3(images):
    """PIL's SMOOTH filter ([[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13, the sharpness op's
    blurred reference), as shifted sums: faster than a 3-channel depthwise conv on CPU."""
    from keras import ops

    p = ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
    rows = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
    box = rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]
    return (box + 4.0 * images) / 13.0


def _solarize(images, level):
    """Invert the pixels above 255 x (1 - level) (level 1: all)."""
    from keras import ops

    threshold = _per_image(255.0 * (1.0 - level))
    return images + ops.cast(images >= threshold, "float32") * (255.0 - 2.0 * images)


def _saturate(images, factor):
    gray = _gray(images)
    return gray + (images - gray) * _per_image(factor)


def _posterize(images, level):
    """Keep 8 - round(4 x level) bits."""
    from keras import ops

    step = _per_image(ops.power(2.0, ops.round(4.0 * level)))
    return ops.floor(images / step) * step


def _sharpen(images, factor):
    smooth = _smooth3(images)
    return smooth + (images - smooth) * _per_image(factor)


class RandAugment(Augmenter):
    """RandAugment (Cubuk et al.) with ``keras.ops``: ``num_ops`` operations per image,
    each chosen per image from identity, autocontrast, equalize, rotate (up to 30 deg),
    solarize (threshold down to 0), color/saturation, posterize (down to 4 bits),
    contrast, brightness, sharpness (factors 1 +- 0.9), shear x/y (up to 0.3),
    translate x/y (up to 30% of the size), at a strength drawn per image up to
    ``magnitude``. The geometric ones of a round share one warp (reflect borders)."""

    NAME = "randaugment"
    DESCRIPTION = ("RandAugment with keras.ops: num_ops per-image random operations of 14. "
                   "magnitude 1: rotate 30 deg, shear 0.3, shift 30%, factors 1+-0.9, "
                   "posterize 4 bits, solarize all.")
    OPTIONS = {"probability": 1.0, "magnitude": 0.5, "num_ops": 2}

    def __init__(self, seed=0, probability=1.0, magnitude=0.5, num_ops=2):
        super().__init__(seed, probability, magnitude)
        self.num_ops = int(num_ops)
        if self.num_ops < 1:
            raise OptionError(f"randaugment.num_ops must be at least 1; received {num_ops!r}")

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        code = {name: i for i, name in enumerate(_RANDAUGMENT_OPS)}
        x = images
        for _ in range(self.num_ops):
            op = self.randint((batch,), 0, len(_RANDAUGMENT_OPS))
            level = self.strengths(batch)
            signed = level * self.signs((batch,))
            factor = 1.0 + 0.9 * signed

            def chosen(name, value, _op=op):
                return ops.where(_op == code[name], value, 0.0)

            def is_(*names, _op=op):
                mask = _op == code[names[0]]
                for name in names[1:]:
                    mask = mask | (_op == code[name])
                return mask

            x = _on_subset(is_("rotate", "shear_x", "shear_y", "translate_x", "translate_y"),
                           lambda im, *p: _affine(im, *p, ops.ones_like(p[0])), x,
                           chosen("rotate", signed * math.pi / 6),
                           chosen("shear_x", signed * 0.3), chosen("shear_y", signed * 0.3),
                           chosen("translate_x", signed * 0.3 * width),
                           chosen("translate_y", signed * 0.3 * height))
            x = _on_subset(is_("autocontrast"), _autocontrast, x)
            x = _on_subset(is_("equalize"), _equalize, x)
            x = _on_subset(is_("solarize"), _solarize, x, level)
            x = _on_subset(is_("color"), _saturate, x, factor)
            x = _on_subset(is_("posterize"), _posterize, x, level)
            x = _on_subset(is_("contrast"), _contrast, x, factor)
            x = _on_subset(is_("brightness"), lambda im, f: im * _per_image(f), x, factor)
            x = _on_subset(is_("sharpness"), _sharpen, x, factor)
            x = ops.clip(x, 0.0, 255.0)
        return x


class AugMix(Augmenter):
    """AugMix (Hendrycks et al.) via ``keras.layers.AugMix``: ``num_chains`` chains of up
    to ``chain_depth`` operations mixed with Dirichlet(``alpha``) weights, then with the
    original by a Beta(``alpha``, ``alpha``) weight. ``magnitude`` is the layer's
    ``factor`` (each operation's strength drawn in [0, magnitude]). The layer picks the
    chains' operations and the mixing weights once per batch (per-image strengths), and
    picks the operations with Python's ``random``: it is seeded here from ``seed`` for
    each call, and its state restored, so the output is deterministic."""

    NAME = "augmix"
    DESCRIPTION = ("AugMix (Hendrycks et al.) via keras.layers.AugMix. magnitude: the "
                   "operations' strength (the layer's factor).")
    OPTIONS = {"probability": 1.0, "magnitude": 0.3, "num_chains": 3, "chain_depth": 3,
               "alpha": 1.0}

    def __init__(self, seed=0, probability=1.0, magnitude=0.3, num_chains=3, chain_depth=3,
                 alpha=1.0):
        super().__init__(seed, probability, magnitude)
        keras = _keras()
        self.layer = keras.layers.AugMix(value_range=(0, 255), num_chains=int(num_chains),
                                         chain_depth=int(chain_depth), factor=self.magnitude,
                                         alpha=float(alpha), seed=self.seed)
        self._choices = py_random.Random(self.seed)

    def transform_images(self, images):
        state = py_random.getstate()
        py_random.seed(self._choices.getrandbits(64))
        try:
            return self.layer(images, training=True)
        finally:
            py_random.setstate(state)


