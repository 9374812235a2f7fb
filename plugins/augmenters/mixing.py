"""Occlusion and label mixing: ``gridmask``, ``erasing``, ``cutmix``, ``mixup``."""

from __future__ import annotations

import math

from codabench_kit.api import Augmenter, OptionError, check_choice
from codabench_kit.plugins.augmenters.image_ops import FILLS, _fill, _grid
from codabench_kit.training.augmenter import per_image


# --- occlusion -----------------------------------------------------------------------------


def _box_mask(height, width, top, left, box_h, box_w):
    """(B, H, W, 1) boolean mask of per-image integer boxes."""
    from keras import ops

    rows = ops.arange(height, dtype="int32")[None, :]
    cols = ops.arange(width, dtype="int32")[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    return (in_rows[:, :, None] & in_cols[:, None, :])[..., None]


class GridMask(Augmenter):
    """GridMask (Chen et al.): a grid of square holes, period drawn per image in
    [0.25, 0.6] x the size, random offset and (``rotate=true``) angle. ``magnitude`` is
    the masked fraction / 0.5: holes of side sqrt(magnitude / 2) x period. Holes are
    filled by ``fill``: ``mean`` (the image's mean colour), ``noise`` or ``zero``."""

    NAME = "gridmask"
    FAMILIES = ("microscopy",)  # occluders, as deposits and dust are
    DESCRIPTION = ("GridMask: a rotated grid of square holes. magnitude 1: half the image "
                   "masked; fill mean|noise|zero.")
    COMPILE = "xla"

    def __init__(self, seed=0, probability=0.5, magnitude=0.5, fill="mean", rotate=True):
        super().__init__(seed, probability, magnitude)
        self.fill = check_choice(self.NAME, "fill", fill, FILLS)
        self.rotate = bool(rotate)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        period = per_image(self.uniform((batch,), 0.25, 0.6) * min(height, width))[..., 0]
        side = math.sqrt(self.magnitude / 2.0) * period
        angle = self.uniform((batch,), 0.0, math.pi / 2)
        if not self.rotate:
            angle = angle * 0.0
        cos, sin = per_image(ops.cos(angle))[..., 0], per_image(ops.sin(angle))[..., 0]
        y, x = _grid(height, width)
        u = x[None] * cos + y[None] * sin + per_image(self.uniform((batch,)))[..., 0] * period
        v = -x[None] * sin + y[None] * cos + per_image(self.uniform((batch,)))[..., 0] * period
        holes = (ops.mod(u, period) < side) & (ops.mod(v, period) < side)
        return ops.where(holes[..., None], _fill(self, images, self.fill), images)


class Erasing(Augmenter):
    """Random erasing / cutout (Zhong et al.; DeVries & Taylor): ``count`` rectangles
    per image, each of area fraction drawn in [0.1, 1] x 0.5 x magnitude (magnitude 1:
    up to half the image) and aspect ratio in [1/3, 3], filled by ``fill``: ``noise``
    (uniform 0..255, as in the paper), ``mean`` or ``zero``."""

    NAME = "erasing"
    FAMILIES = ("microscopy",)  # occluders, as deposits and dust are
    DESCRIPTION = ("Random erasing / cutout: count random rectangles. magnitude 1: up to "
                   "half the image each; fill noise|mean|zero.")

    def __init__(self, seed=0, probability=0.5, magnitude=0.5, count=1, fill="noise"):
        super().__init__(seed, probability, magnitude)
        self.count = int(count)
        if self.count < 1:
            raise OptionError(f"erasing.count must be at least 1; received {count!r}")
        self.fill = check_choice(self.NAME, "fill", fill, FILLS)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        fill = _fill(self, images, self.fill)
        x = images
        for _ in range(self.count):
            area = self.uniform((batch,), 0.1, 1.0) * 0.5 * self.magnitude * height * width
            aspect = ops.exp(self.uniform((batch,), -math.log(3.0), math.log(3.0)))
            box_h = ops.cast(ops.clip(ops.round(ops.sqrt(area * aspect)), 0, height), "int32")
            box_w = ops.cast(ops.clip(ops.round(ops.sqrt(area / aspect)), 0, width), "int32")
            top = ops.cast(ops.floor(self.uniform((batch,)) * ops.cast(height - box_h + 1,
                                                                        "float32")), "int32")
            left = ops.cast(ops.floor(self.uniform((batch,)) * ops.cast(width - box_w + 1,
                                                                         "float32")), "int32")
            x = ops.where(_box_mask(height, width, top, left, box_h, box_w), fill, x)
        return x


# --- label mixing --------------------------------------------------------------------------


class _Mixer(Augmenter):
    """Shared by ``cutmix`` and ``mixup``: each transformed image is paired with another
    of the batch, whose share is drawn as magnitude x Beta(alpha, alpha)."""

    MIXES_BATCH = True

    def __init__(self, seed, probability, magnitude, alpha):
        super().__init__(seed, probability, magnitude)
        self.alpha = float(alpha)
        if self.alpha <= 0:
            raise OptionError(f"{self.NAME}.alpha must be positive; received {alpha!r}")

    def draw_share(self, batch):
        from keras import random

        return self.magnitude * random.beta((batch,), self.alpha, self.alpha,
                                            dtype="float32", seed=self.seed_generator)


class CutMix(_Mixer):
    """CutMix (Yun et al.): a box of another image of the batch is pasted in; the labels
    mix in exact proportion to the pasted pixel area (box sides rounded to whole
    pixels). The pasted area fraction is magnitude x Beta(alpha, alpha)."""

    NAME = "cutmix"
    FAMILIES = ()
    DESCRIPTION = ("CutMix: paste a box of another image; labels mixed by the pasted area. "
                   "magnitude: the largest pasted area fraction (x Beta(alpha, alpha)).")

    def __init__(self, seed=0, probability=0.5, magnitude=1.0, alpha=1.0):
        super().__init__(seed, probability, magnitude, alpha)

    def transform(self, images, labels):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        side = ops.sqrt(self.draw_share(batch))
        box_h = ops.cast(ops.round(side * height), "int32")
        box_w = ops.cast(ops.round(side * width), "int32")
        top = ops.cast(ops.floor(self.uniform((batch,)) * ops.cast(height - box_h + 1,
                                                                    "float32")), "int32")
        left = ops.cast(ops.floor(self.uniform((batch,)) * ops.cast(width - box_w + 1,
                                                                     "float32")), "int32")
        other = self.partners(batch)
        mask = _box_mask(height, width, top, left, box_h, box_w)
        mixed = ops.where(mask, ops.take(images, other, axis=0), images)
        area = ops.cast(box_h * box_w, "float32") / float(height * width)
        area = area[:, None]
        return mixed, (1.0 - area) * labels + area * ops.take(labels, other, axis=0)


class MixUp(_Mixer):
    """MixUp (Zhang et al.): a blend with another image of the batch, the labels mixed
    with the same weight. The other image's weight is magnitude x Beta(alpha, alpha)
    (magnitude 1: standard MixUp; 0.5: each image stays dominant)."""

    NAME = "mixup"
    FAMILIES = ()
    DESCRIPTION = ("MixUp: blend with another image; labels mixed alike. magnitude: the "
                   "largest weight of the other image (x Beta(alpha, alpha)).")

    def __init__(self, seed=0, probability=0.5, magnitude=1.0, alpha=0.4):
        super().__init__(seed, probability, magnitude, alpha)

    def transform(self, images, labels):
        from keras import ops

        batch = ops.shape(images)[0]
        share = self.draw_share(batch)
        other = self.partners(batch)
        mixed = (1.0 - per_image(share)) * images + per_image(share) * ops.take(images, other,
                                                                                  axis=0)
        share = share[:, None]
        return mixed, (1.0 - share) * labels + share * ops.take(labels, other, axis=0)
