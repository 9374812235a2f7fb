"""Geometric and colour augmenters: ``flips``, ``geometric``, ``color``."""

from __future__ import annotations

import math

from codabench_kit.api import Augmenter, check_choice
from codabench_kit.training.augmenter import per_image, select_per_image
from codabench_kit.plugins.augmenters.image_ops import _affine, _gray

FILL_MODES = ("reflect", "constant", "nearest", "wrap", "mirror")
"""How ``geometric`` fills the pixels a warp brings in from outside the image."""


# --- symmetries ----------------------------------------------------------------------------


class Flips(Augmenter):
    """A transformed image gets one of the 7 non-identity symmetries of the square
    (horizontal/vertical flips, 90/180/270-degree rotations, transposes), uniformly;
    only the 3 flips for non-square images. The default ``probability`` 0.875 = 7/8 makes
    every one of the 8 symmetries, identity included, equally likely. ``magnitude`` has
    no effect (a symmetry has no strength); it is accepted like every augmenter's."""

    NAME = "flips"
    FAMILIES = ("geometry",)
    DESCRIPTION = ("Flips and 90-degree transposes (the 8 symmetries of the square; cells "
                   "have no orientation). probability 0.875: all 8 equally likely; "
                   "magnitude: no effect.")
    COMPILE = "xla"

    def __init__(self, seed=0, probability=0.875, magnitude=1.0):
        super().__init__(seed, probability, magnitude)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        which = self.randint((batch,), 1, 8 if height == width else 4)
        images = select_per_image(which % 2 == 1, ops.flip(images, axis=2), images)
        images = select_per_image((which // 2) % 2 == 1, ops.flip(images, axis=1), images)
        if height == width:
            images = select_per_image(which >= 4, ops.transpose(images, (0, 2, 1, 3)), images)
        return images


# --- geometry and colour -------------------------------------------------------------------


class Geometric(Augmenter):
    """One affine warp per image (one interpolation): rotation up to +-180 deg x
    magnitude (any angle at 1), shear up to +-0.25 x magnitude, translation up to
    +-10% x magnitude of the size, and with ``zoom=true`` scaling by up to
    1.25 ** +-magnitude (off by default: cell size tells classes apart). Borders are
    filled by ``fill_mode`` (reflect, constant, nearest, wrap, mirror)."""

    NAME = "geometric"
    FAMILIES = ("geometry",)
    DESCRIPTION = ("Free rotation, shear and translation in one affine warp (zoom opt-in: "
                   "zoom=true). magnitude 1: any angle, shear 0.25, shift 10%, zoom 1.25x.")

    def __init__(self, seed=0, probability=0.8, magnitude=1.0, zoom=False,
                 fill_mode="reflect"):
        super().__init__(seed, probability, magnitude)
        self.zoom = bool(zoom)
        self.fill_mode = check_choice(self.NAME, "fill_mode", fill_mode, FILL_MODES)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        m = self.magnitude
        angle = self.uniform((batch,), -math.pi, math.pi) * m
        shear_x = self.uniform((batch,), -0.25, 0.25) * m
        shear_y = self.uniform((batch,), -0.25, 0.25) * m
        shift_x = self.uniform((batch,), -0.1, 0.1) * m * width
        shift_y = self.uniform((batch,), -0.1, 0.1) * m * height
        scale = ops.ones((batch,))
        if self.zoom:
            scale = ops.exp(self.uniform((batch,), -1.0, 1.0) * m * math.log(1.25))
        return _affine(images, angle, shear_x, shear_y, shift_x, shift_y, scale,
                       fill_mode=self.fill_mode)


# Stain separation (Ruifrok & Johnston) as in skimage: optical density <-> H, E, DAB.
_RGB_FROM_HED = [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]]
# RGB <-> YIQ: hue is a rotation and saturation a scaling of the (I, Q) plane.
_YIQ_FROM_RGB = [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]


class Color(Augmenter):
    """Per image, in this order: a stain-colour shift in optical density (each of the
    H, E, DAB stain amounts scaled by 1 +- 0.3 x magnitude and shifted by +- 0.05 x
    magnitude; Beer-Lambert, HED as in skimage), a hue rotation of up to +- 0.08 turn x
    magnitude, saturation x (1 +- 0.5 x magnitude), contrast x (1 +- 0.4 x magnitude)
    about the mean grey, brightness +- 0.2 x magnitude x 255."""

    NAME = "color"
    FAMILIES = ("color",)
    DESCRIPTION = ("Stain-colour shift (optical density, HED), hue, saturation, contrast, "
                   "brightness. magnitude 1: stains x1+-0.3, hue +-0.08 turn, saturation "
                   "x1+-0.5, contrast x1+-0.4, brightness +-20%.")
    COMPILE = "xla"

    def __init__(self, seed=0, probability=0.8, magnitude=0.5):
        super().__init__(seed, probability, magnitude)

    def transform_images(self, images):
        import numpy as np
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        m = self.magnitude
        flat = ops.reshape(images, (batch, height * width, 3))

        # stains: OD' = OD @ (H diag(1 + a) R) + b @ R, row-vector convention
        rgb_from_hed = np.asarray(_RGB_FROM_HED, "float32")
        hed_from_rgb = np.linalg.inv(rgb_from_hed).astype("float32")
        gain = 1.0 + self.uniform((batch, 3), -0.3, 0.3) * m
        shift = self.uniform((batch, 1, 3), -0.05, 0.05) * m
        stain = ops.einsum("ij,bj,jk->bik", ops.convert_to_tensor(hed_from_rgb), gain,
                           ops.convert_to_tensor(rgb_from_hed))
        density = -ops.log((flat + 1.0) / 256.0)
        density = ops.matmul(density, stain) + ops.matmul(shift, rgb_from_hed)
        flat = 256.0 * ops.exp(-density) - 1.0

        # hue and saturation: rotate and scale the chroma plane of YIQ
        theta = self.uniform((batch,), -0.08, 0.08) * m * 2.0 * math.pi
        sat = 1.0 + self.uniform((batch,), -0.5, 0.5) * m
        cos, sin = ops.cos(theta) * sat, ops.sin(theta) * sat
        one, zero = ops.ones_like(cos), ops.zeros_like(cos)
        chroma = ops.reshape(ops.stack([one, zero, zero, zero, cos, sin, zero, -sin, cos],
                                       axis=1), (batch, 3, 3))
        yiq = np.asarray(_YIQ_FROM_RGB, "float32")
        to_yiq = ops.convert_to_tensor(yiq.T)
        from_yiq = ops.convert_to_tensor(np.linalg.inv(yiq).T.astype("float32"))
        matrix = ops.einsum("ij,bjk,kl->bil", to_yiq, chroma, from_yiq)
        flat = ops.matmul(flat, matrix)
        x = ops.reshape(flat, (batch, height, width, 3))

        contrast = per_image(1.0 + self.uniform((batch,), -0.4, 0.4) * m)
        mean = ops.mean(_gray(x), axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * contrast + mean
        x = x + per_image(self.uniform((batch,), -0.2, 0.2) * m * 255.0)
        return x


