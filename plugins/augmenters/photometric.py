"""Noise and microscopy corruptions: ``noise`` and ``corrupt``."""

from __future__ import annotations

import functools
import math

from codabench_kit.api import Augmenter, OptionError, check_choice
from codabench_kit.training.augmenter import on_subset, per_image, xla_compiled
from codabench_kit.plugins.augmenters.image_ops import (
    _contrast,
    _convolve_per_image,
    _disc_kernels,
    _gaussian_blur,
    _jpeg,
    _line_kernels,
    _pixelate,
)

NOISE_KINDS = ("gaussian", "blur", "jpeg")
"""The kinds of ``noise``, in the order of its ``kinds`` option."""

CORRUPTIONS = ("deposits", "bubbles", "defocus", "motion", "pixelate", "brightness",
               "contrast")
"""The corruptions of ``corrupt``, in the order of its ``kinds`` option."""


# --- noise and corruptions -----------------------------------------------------------------


class Noise(Augmenter):
    """Per transformed image one of ``kinds``, uniformly: ``gaussian`` noise (sigma up to
    30 x magnitude), Gaussian ``blur`` (sigma up to 2.5 px x magnitude), ``jpeg`` quality
    loss (quality down to 100 - 95 x magnitude; real 8x8 DCT quantisation with the
    standard tables and 4:2:0 chroma). Strengths drawn per image in [0.2, 1] x magnitude."""

    NAME = "noise"
    KIND_FAMILIES = {"gaussian": "noise", "blur": "blur", "jpeg": "digital"}
    DESCRIPTION = ("One of Gaussian noise, Gaussian blur, JPEG quality loss per image. "
                   "magnitude 1: noise sigma 30, blur sigma 2.5 px, JPEG quality 5.")

    def __init__(self, seed=0, probability=0.5, magnitude=0.5, kinds=NOISE_KINDS):
        super().__init__(seed, probability, magnitude)
        self.kinds = _check_kinds(self.NAME, kinds, NOISE_KINDS)

    def transform_images(self, images):
        from keras import ops

        from codabench_kit.training.compiled import dynamic_subsets

        batch = ops.shape(images)[0]
        codes = ops.convert_to_tensor([NOISE_KINDS.index(k) for k in self.kinds], dtype="int32")
        which = ops.take(codes, self.randint((batch,), 0, len(self.kinds)))
        strength = self.strengths(batch, low=0.2)
        x = on_subset(which == 0, lambda im, s: im + per_image(30.0 * s)
                       * self._normal(ops.shape(im)), images, strength)
        x = on_subset(which == 1, lambda im, s: _gaussian_blur(im, 2.5 * s), x, strength)
        # An XLA kernel compiles per batch size: whole batches only (see _jpeg_kernel).
        jpeg = _jpeg if dynamic_subsets() else _jpeg_kernel()
        return on_subset(which == 2, lambda im, s: jpeg(im, 100.0 - 95.0 * s), x, strength)

    def _normal(self, shape):
        from keras import random

        return random.normal(shape, dtype="float32", seed=self.seed_generator)


def _check_kinds(name, kinds, known) -> list[str]:
    """``kinds`` (a list or comma-separated text) checked against ``known``."""
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kinds = list(kinds)
    if not kinds:
        raise OptionError(f"{name}.kinds must name at least one of: {', '.join(known)}; "
                          f"received none")
    for kind in kinds:
        check_choice(name, "kinds", kind, known)
    return kinds


@functools.cache
def _jpeg_kernel():
    """``_jpeg`` as an XLA kernel: 5.6 ms per batch of 64 against 12.9 in a plain graph.
    Used where ``noise`` transforms whole batches and selects (JAX, where it is ``_jpeg``
    as it is, and eager calls, where it compiles once per subset size: slow, but the same
    result); a plain graph gathers subsets of run-time size, so it runs ``_jpeg`` there."""
    return xla_compiled(_jpeg)


_SEVERITY = {  # per severity 1..5
    "deposit_count": [1, 2, 3, 4, 6],
    "deposit_radius": [2.5, 3.5, 4.5, 5.5, 7.0],   # px at 96 px
    "deposit_opacity": [0.45, 0.55, 0.65, 0.75, 0.85],
    "bubble_count": [1, 1, 2, 2, 3],
    "bubble_radius": [8.0, 10.0, 12.0, 15.0, 18.0],  # px at 96 px
    "bubble_light": [0.15, 0.2, 0.25, 0.3, 0.35],
    "defocus_radius": [1.0, 1.5, 2.0, 3.0, 4.0],
    "motion_length": [3.0, 5.0, 7.0, 9.0, 11.0],
    "pixel_block": [2, 3, 4, 5, 6],
    "brightness": [15.0, 30.0, 45.0, 60.0, 80.0],
    "contrast": [0.8, 0.65, 0.5, 0.4, 0.3],
}
_MAX_DEPOSITS, _MAX_BUBBLES = 6, 3


class Corrupt(Augmenter):
    """Microscopy corruptions of the MedMNIST-C kind, one per transformed image, drawn
    uniformly from ``kinds``: ``deposits`` (dark irregular stain blobs), ``bubbles``
    (bright discs with a bright rim and a dark outline), ``defocus`` (disc blur),
    ``motion`` (line blur at a random angle), ``pixelate``, ``brightness`` (+-),
    ``contrast`` (mostly lower, sometimes higher). ``severity`` 1-5 fixes how strong;
    0 draws it per image from 1..round(1 + 4 x magnitude) (so magnitude 1: 1-5)."""

    NAME = "corrupt"
    KIND_FAMILIES = {"deposits": "microscopy", "bubbles": "microscopy", "defocus": "blur",
                     "motion": "blur", "pixelate": "digital", "brightness": "color",
                     "contrast": "color"}
    DESCRIPTION = ("Microscopy corruptions (MedMNIST-C kind): stain deposits, bubbles, "
                   "defocus, motion blur, pixelation, brightness, contrast. severity 1-5, "
                   "0: random per image up to round(1 + 4 x magnitude).")

    def __init__(self, seed=0, probability=0.5, magnitude=1.0, severity=0, kinds=CORRUPTIONS):
        super().__init__(seed, probability, magnitude)
        self.severity = int(severity)
        if not 0 <= self.severity <= 5:
            raise OptionError(f"corrupt.severity must be 0 (random per image) or 1-5; "
                              f"received {severity!r}")
        self.kinds = _check_kinds(self.NAME, kinds, CORRUPTIONS)

    def _table(self, key, severity):
        from keras import ops

        return ops.take(ops.convert_to_tensor(_SEVERITY[key], dtype="float32"), severity - 1)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        if self.severity:
            severity = ops.full((batch,), self.severity, dtype="int32")
        else:
            top = max(1, min(5, round(1 + 4 * self.magnitude)))
            severity = self.randint((batch,), 1, top + 1)
        codes = ops.convert_to_tensor([CORRUPTIONS.index(k) for k in self.kinds], dtype="int32")
        kind = ops.take(codes, self.randint((batch,), 0, len(self.kinds)))
        size = min(height, width) / 96.0
        x = images
        x = on_subset(kind == CORRUPTIONS.index("deposits"),
                       lambda im, s: self._deposits(im, s, size), x, severity)
        x = on_subset(kind == CORRUPTIONS.index("bubbles"),
                       lambda im, s: self._bubbles(im, s, size), x, severity)
        defocus_radius = self._table("defocus_radius", severity) * min(size, 1.25)
        x = on_subset(kind == CORRUPTIONS.index("defocus"),
                       lambda im, r: _convolve_per_image(im, _disc_kernels(r)), x, defocus_radius)
        length = self._table("motion_length", severity)
        angle = self.uniform((batch,), 0.0, math.pi)
        x = on_subset(kind == CORRUPTIONS.index("motion"),
                       lambda im, n, a: _convolve_per_image(im, _line_kernels(n, a)),
                       x, length, angle)
        blocks = ops.cast(self._table("pixel_block", severity), "int32")
        for block in sorted(set(_SEVERITY["pixel_block"])):
            x = on_subset((kind == CORRUPTIONS.index("pixelate")) & (blocks == block),
                           lambda im, b=block: _pixelate(im, b), x)
        delta = self._table("brightness", severity) * self.signs((batch,))
        x = on_subset(kind == CORRUPTIONS.index("brightness"),
                       lambda im, d: im + per_image(d), x, delta)
        factor = self._table("contrast", severity)
        boost = self.uniform((batch,)) < 0.3  # sometimes more contrast instead of less
        factor = ops.where(boost, ops.minimum(1.0 / factor, 1.6), factor)
        return on_subset(kind == CORRUPTIONS.index("contrast"), _contrast, x, factor)

    def _centres(self, batch, count, height, width, margin=0.0):
        cy = self.uniform((batch, count, 1, 1), margin, 1.0 - margin) * (height - 1)
        cx = self.uniform((batch, count, 1, 1), margin, 1.0 - margin) * (width - 1)
        return cy, cx

    @staticmethod
    def _coarse_grid(height, width):
        """Pixel-centre coordinates of a grid at half resolution (the blob and bubble
        masks are smooth: drawn there, then resized, 4x cheaper). ``(ys, xs, stride)``."""
        from keras import ops

        stride = 2 if min(height, width) >= 48 else 1
        ys = ops.arange(height // stride, dtype="float32") * stride + (stride - 1) / 2.0
        xs = ops.arange(width // stride, dtype="float32") * stride + (stride - 1) / 2.0
        return ys[None, None, :, None], xs[None, None, None, :], stride

    @staticmethod
    def _full_size(mask, height, width):
        from keras import ops

        if ops.shape(mask)[1] == height and ops.shape(mask)[2] == width:
            return mask
        return ops.image.resize(mask, (height, width), interpolation="bilinear")

    def _deposits(self, images, severity, size):
        """Dark, irregular blobs: stain precipitate / debris."""
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        n = _MAX_DEPOSITS
        ys, xs, stride = self._coarse_grid(height, width)
        cy, cx = self._centres(batch, n, height, width)
        count = ops.cast(self._table("deposit_count", severity), "int32")
        on = ops.arange(n, dtype="int32")[None, :] < count[:, None]
        radius = (self._table("deposit_radius", severity)[:, None] * size
                  * self.uniform((batch, n), 0.6, 1.4))
        p1 = self.uniform((batch, n, 1, 1), 0.0, 2 * math.pi)
        p2 = self.uniform((batch, n, 1, 1), 0.0, 2 * math.pi)
        opacity = (self._table("deposit_opacity", severity)[:, None]
                   * self.uniform((batch, n), 0.8, 1.0) * ops.cast(on, "float32"))
        colour = ops.stack([self.uniform((batch,), 20.0, 90.0),
                            self.uniform((batch,), 10.0, 60.0),
                            self.uniform((batch,), 30.0, 100.0)], axis=1)
        dy, dx = ys - cy, xs - cx
        dist = ops.sqrt(dy * dy + dx * dx)
        phi = ops.arctan2(dy, dx)
        edge = ops.reshape(radius, (batch, n, 1, 1)) * (1.0 + 0.2 * ops.sin(3 * phi + p1)
                                                        + 0.1 * ops.sin(5 * phi + p2))
        mask = ops.sigmoid((edge - dist) / (0.8 * stride))
        mask = mask * ops.reshape(opacity, (batch, n, 1, 1))
        cover = 1.0 - ops.prod(1.0 - mask, axis=1)[..., None]  # (B, h, w, 1)
        cover = self._full_size(cover, height, width)
        return images * (1.0 - cover) + ops.reshape(colour, (batch, 1, 1, 3)) * cover

    def _bubbles(self, images, severity, size):
        """Air bubbles: a brightened disc, a bright rim and a thin dark outline."""
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        n = _MAX_BUBBLES
        ys, xs, stride = self._coarse_grid(height, width)
        cy, cx = self._centres(batch, n, height, width, margin=0.05)
        count = ops.cast(self._table("bubble_count", severity), "int32")
        on = ops.cast(ops.arange(n, dtype="int32")[None, :] < count[:, None], "float32")
        on = ops.reshape(on, (batch, n, 1, 1))
        radius = ops.reshape(self._table("bubble_radius", severity)[:, None] * size
                             * self.uniform((batch, n), 0.7, 1.3), (batch, n, 1, 1))
        dist = ops.sqrt((ys - cy) ** 2 + (xs - cx) ** 2)
        rim_width = 1.0 + 0.08 * radius
        disc = ops.max(on * ops.sigmoid((radius - dist) / (0.7 * stride)), axis=1)
        rim = ops.max(on * ops.exp(-(((dist - radius) / rim_width) ** 2)), axis=1)
        outline = ops.max(on * ops.exp(-(((dist - radius - 1.6 * rim_width)
                                          / (0.6 * rim_width)) ** 2)), axis=1)
        masks = self._full_size(ops.stack([disc, rim, outline], axis=-1), height, width)
        disc, rim, outline = masks[..., 0:1], masks[..., 1:2], masks[..., 2:3]
        light = per_image(self._table("bubble_light", severity))
        x = images + (255.0 - images) * ops.clip(light * disc + 0.6 * rim, 0.0, 1.0)
        return x * (1.0 - 0.35 * outline)


