"""Built-in augmenters.

An augmenter is a callable on a batch, ``(images, labels) -> (images, labels)``: images
float32 (B, H, W, 3) in 0..255, labels one-hot float32 (B, C). They chain in the order
selected (``--plugins flips,geometric,color``) and run in the training input pipeline
only, never inside the exported model.

Every built-in is written with ``keras.ops`` / ``keras.random`` (or wraps a Keras 3
preprocessing layer), so it runs on any Keras backend, and is vectorised over the batch:
per-image random parameters, no Python loop over images. Each takes the same two options:

``probability``
    the chance that an image of the batch is transformed; a random subset of each batch
    is, the rest passes through untouched (``0`` leaves every batch as it is).
``magnitude``
    the strength, in [0, 1]; what it scales is documented per augmenter. Random
    strengths are drawn per image up to it.

and ``seed``: two augmenters built with the same seed give identical outputs on the same
sequence of batches. Outputs are clipped to 0..255.

=================  =========================================================================
``flips``          flips and 90-degree transposes (the 8 symmetries of the square)
``geometric``      free rotation, shear, translation; zoom only with ``zoom=true``
``color``          stain-colour shift (optical density, HED), hue, saturation, contrast,
                   brightness
``noise``          one of Gaussian noise, Gaussian blur, JPEG quality loss per image
``corrupt``        microscopy corruptions (MedMNIST-C kind): stain deposits, bubbles, defocus,
                   motion blur, pixelation, brightness, contrast at a ``severity`` 1-5
``randaugment``    RandAugment: ``num_ops`` random operations per image
``augmix``         AugMix, via ``keras.layers.AugMix``
``gridmask``       GridMask: a (rotated) grid of square holes
``erasing``        random erasing / cutout: ``count`` random rectangles
``cutmix``         CutMix: a box from another image of the batch; labels mixed by its area
``mixup``          MixUp: a blend with another image of the batch; labels mixed alike
=================  =========================================================================
"""

from __future__ import annotations

import math
import random as py_random

from codabench_kit import hookimpl
from codabench_kit.errors import OptionError

FILLS = ("noise", "mean", "zero")
"""What ``gridmask`` and ``erasing`` put into the holes: uniform noise 0..255, the
image's mean colour, or black."""

CORRUPTIONS = ("deposits", "bubbles", "defocus", "motion", "pixelate", "brightness",
               "contrast")
"""The corruptions of ``corrupt``, in the order of its ``kinds`` option."""

FILL_MODES = ("reflect", "constant", "nearest", "wrap", "mirror")


@hookimpl
def register_augmenters(register):
    for name, cls in AUGMENTERS.items():
        register(name, cls, description=cls.DESCRIPTION, options=dict(cls.OPTIONS))


# --- shared machinery ----------------------------------------------------------------------


def _keras():
    from codabench_kit.backend import import_keras

    return import_keras()


def _check_unit(name, key, value):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise OptionError(f"{name}.{key} must be in [0, 1]; received {value!r}")
    return value


def _check_choice(name, key, value, allowed):
    if value not in allowed:
        raise OptionError(f"{name}.{key} must be one of {', '.join(allowed)}; "
                          f"received {value!r}")
    return value


class Augmenter:
    """Base class: per-image ``probability``, ``magnitude`` in [0, 1], a seeded stream.

    Subclasses implement ``transform(images, labels)`` on the whole batch (tensors);
    ``__call__`` keeps the transformed version of a random subset of the images, clips
    to 0..255 and returns float32 tensors.
    """

    NAME = ""
    DESCRIPTION = ""
    OPTIONS = {"probability": 1.0, "magnitude": 0.5}

    def __init__(self, seed=0, probability=1.0, magnitude=0.5):
        keras = _keras()
        self.seed = int(seed)
        self.probability = _check_unit(self.NAME, "probability", probability)
        self.magnitude = _check_unit(self.NAME, "magnitude", magnitude)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    # random draws, all from this augmenter's own seeded stream
    def uniform(self, shape, low=0.0, high=1.0):
        from keras import random

        return random.uniform(shape, minval=low, maxval=high, dtype="float32",
                              seed=self.seed_generator)

    def randint(self, shape, low, high):
        """Integers in [low, high)."""
        from keras import random

        return random.randint(shape, low, high, dtype="int32", seed=self.seed_generator)

    def signs(self, shape):
        from keras import ops

        return ops.where(self.uniform(shape) < 0.5, -1.0, 1.0)

    def strengths(self, batch, low=0.0):
        """Per-image strength, uniform in [low, 1] times ``magnitude``."""
        return self.magnitude * self.uniform((batch,), low, 1.0)

    def partners(self, batch):
        """For each image, the index of another image of the batch (a random cyclic
        derangement: nobody is paired with itself when the batch has two or more)."""
        from keras import ops, random

        order = random.shuffle(ops.arange(batch, dtype="int32"), seed=self.seed_generator)
        return ops.take(ops.roll(order, -1, axis=0), ops.argsort(order), axis=0)

    MIXES_BATCH = False
    """True for augmenters that mix images of the batch (CutMix, MixUp): they transform
    the whole batch and keep the picked rows; the others transform the picked rows only."""

    def __call__(self, images, labels):
        if self.probability <= 0.0:
            return images, labels
        from keras import ops

        images = ops.convert_to_tensor(images, dtype="float32")
        labels = ops.convert_to_tensor(labels, dtype="float32")
        batch = ops.shape(images)[0]
        if self.MIXES_BATCH:
            pick = self.uniform((batch,)) < self.probability
            out_images, out_labels = self.transform(images, labels)
            out_images = ops.clip(ops.cast(out_images, "float32"), 0.0, 255.0)
            out_labels = ops.cast(out_labels, "float32")
            if self.probability < 1.0:
                out_images = ops.where(_per_image(pick), out_images, images)
                out_labels = ops.where(ops.reshape(pick, (-1, 1)), out_labels, labels)
            return out_images, out_labels
        if self.probability >= 1.0:
            return self._transform_clipped(images), labels
        pick = self.uniform((batch,)) < self.probability
        return _on_subset(pick, self._transform_clipped, images, exact=True), labels

    def _transform_clipped(self, images):
        from keras import ops

        return ops.clip(ops.cast(self.transform_images(images), "float32"), 0.0, 255.0)

    def transform_images(self, images):  # pragma: no cover - abstract
        """The transformed images (float32 tensors, any range: the caller clips)."""
        raise NotImplementedError

    def transform(self, images, labels):  # pragma: no cover - abstract
        """For ``MIXES_BATCH`` augmenters: the transformed images and labels."""
        raise NotImplementedError


def _on_subset(chosen, fn, images, *params, exact=False):
    """``fn(images[chosen], *(p[chosen] for p in params))`` written back into ``images``;
    the other images are returned as they are.

    Run eagerly (the training pipeline), only the chosen images are computed: a gather,
    the batched ``fn`` and a scatter, a few ops per call whatever the batch. Traced (a
    ``tf.function``, where the subset's size is unknown) and on JAX (whose eager ops
    compile once per shape, so a varying subset size would recompile every batch) it
    computes ``fn`` on the whole batch and selects per image instead: the same result.
    """
    import numpy as np
    from keras import backend, ops

    try:
        if backend.backend() == "jax":  # compiles per shape: a subset's size varies
            raise LookupError
        mask = np.asarray(ops.convert_to_numpy(chosen)).astype(bool).reshape(-1)
    except Exception:  # traced (no concrete mask), or JAX
        transformed = fn(images, *params)
        if exact:
            return ops.where(_per_image(chosen), transformed, images)
        return _select(chosen, transformed, images)
    if not mask.any():
        return images
    if mask.all():
        return fn(images, *params)
    rows = np.flatnonzero(mask).astype("int32")
    index = ops.convert_to_tensor(rows)
    out = fn(ops.take(images, index, axis=0), *(ops.take(p, index, axis=0) for p in params))
    return ops.scatter_update(images, ops.reshape(index, (-1, 1)), ops.cast(out, images.dtype))


def _per_image(values):
    from keras import ops

    return ops.reshape(values, (-1, 1, 1, 1))


def _select(chosen, transformed, images):
    """Per image (chosen: (B,) bool), ``transformed`` where chosen, else ``images``.

    A 0/1 blend: exact for finite values and, on TensorFlow's CPU, 3x faster than
    ``ops.where`` with a broadcast mask."""
    from keras import ops

    weight = ops.reshape(ops.cast(chosen, "float32"), (-1, 1, 1, 1))
    return weight * transformed + (1.0 - weight) * images


def _contrast(images, factor):
    """Scale the deviation from each image's mean grey by ``factor`` (B,)."""
    from keras import ops

    mean = ops.mean(_gray(images), axis=(1, 2, 3), keepdims=True)
    return (images - mean) * _per_image(factor) + mean


def _gray(images):
    from keras import ops

    r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _grid(height, width):
    """Pixel coordinates (H, W) relative to the image centre: ``(y, x)``."""
    from keras import ops

    ys = ops.arange(height, dtype="float32") - (height - 1) / 2.0
    xs = ops.arange(width, dtype="float32") - (width - 1) / 2.0
    return ops.meshgrid(ys, xs, indexing="ij")


def _affine(images, angle, shear_x, shear_y, shift_x, shift_y, scale,
            fill_mode="reflect", interpolation="bilinear"):
    """Rotate/shear/scale about the centre and shift, with per-image (B,) parameters.

    Builds the output->input map ``p_in = c + M (p_out - c - t)`` with
    ``M = R(angle) @ [[1, shear_x], [shear_y, 1]] / scale``; one interpolation for all.
    """
    from keras import ops

    _, height, width, _ = ops.shape(images)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = ops.cos(angle), ops.sin(angle)
    m00 = (cos - sin * shear_y) / scale
    m01 = (cos * shear_x - sin) / scale
    m10 = (sin + cos * shear_y) / scale
    m11 = (sin * shear_x + cos) / scale
    ox, oy = cx + shift_x, cy + shift_y
    a2 = cx - m00 * ox - m01 * oy
    b2 = cy - m10 * ox - m11 * oy
    zeros = ops.zeros_like(angle)
    transform = ops.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)
    return ops.image.affine_transform(images, transform, interpolation=interpolation,
                                      fill_mode=fill_mode)


def _convolve_per_image(images, kernels):
    """Convolve each image with its own (K, K) kernel, K odd: one depthwise convolution
    with the batch folded into the channels, reflect padding."""
    from keras import ops

    batch, height, width, channels = ops.shape(images)
    size = ops.shape(kernels)[1]
    half = size // 2
    x = ops.reshape(ops.transpose(images, (1, 2, 0, 3)), (1, height, width, batch * channels))
    x = ops.pad(x, [[0, 0], [half, half], [half, half], [0, 0]], mode="reflect")
    k = ops.transpose(kernels, (1, 2, 0))[:, :, :, None]
    k = ops.reshape(ops.repeat(k, channels, axis=3), (size, size, batch * channels, 1))
    y = ops.depthwise_conv(x, k, strides=1, padding="valid")
    return ops.transpose(ops.reshape(y, (height, width, batch, channels)), (2, 0, 1, 3))


def _kernel_taps(size):
    from keras import ops

    taps = ops.arange(size, dtype="float32") - (size - 1) / 2.0
    return ops.meshgrid(taps, taps, indexing="ij")  # (dy, dx), each (K, K)


def _gaussian_kernels(sigma, size=11):
    """(B, K, K) normalised Gaussian kernels, one per sigma (pixels)."""
    from keras import ops

    dy, dx = _kernel_taps(size)
    s = ops.reshape(ops.maximum(sigma, 1e-3), (-1, 1, 1))
    k = ops.exp(-(dy[None] ** 2 + dx[None] ** 2) / (2.0 * s * s))
    return k / ops.sum(k, axis=(1, 2), keepdims=True)


def _disc_kernels(radius, size=11):
    """(B, K, K) anti-aliased discs (defocus)."""
    from keras import ops

    dy, dx = _kernel_taps(size)
    dist = ops.sqrt(dy[None] ** 2 + dx[None] ** 2)
    k = ops.clip(ops.reshape(radius, (-1, 1, 1)) + 0.5 - dist, 0.0, 1.0)
    return k / ops.sum(k, axis=(1, 2), keepdims=True)


def _line_kernels(length, angle, size=11):
    """(B, K, K) anti-aliased line segments through the centre (motion blur)."""
    from keras import ops

    dy, dx = _kernel_taps(size)
    cos, sin = ops.reshape(ops.cos(angle), (-1, 1, 1)), ops.reshape(ops.sin(angle), (-1, 1, 1))
    along = dx[None] * cos + dy[None] * sin
    across = -dx[None] * sin + dy[None] * cos
    half = ops.reshape(length, (-1, 1, 1)) / 2.0
    k = (ops.clip(1.0 - ops.abs(across), 0.0, 1.0)
         * ops.clip(half + 0.5 - ops.abs(along), 0.0, 1.0))
    return k / ops.sum(k, axis=(1, 2), keepdims=True)


def _pixelate(images, block):
    """Average over ``block`` x ``block`` cells (one static block size for the batch)."""
    from keras import ops

    _, height, width, _ = ops.shape(images)
    ph, pw = -height % block, -width % block
    x = ops.pad(images, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="symmetric") if ph or pw \
        else images
    x = ops.average_pool(x, block, strides=block, padding="valid")
    x = ops.repeat(ops.repeat(x, block, axis=1), block, axis=2)
    return x[:, :height, :width, :]


def _fill(augmenter, images, mode):
    from keras import ops

    if mode == "noise":
        return augmenter.uniform(ops.shape(images), 0.0, 255.0)
    if mode == "mean":
        return ops.broadcast_to(ops.mean(images, axis=(1, 2), keepdims=True), ops.shape(images))
    return ops.zeros_like(images)


# JPEG: the standard (Annex K) quantisation tables, quality scaling as libjpeg's.
_JPEG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
              14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
              18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_JPEG_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _jpeg(images, quality):
    """JPEG-like quality loss with per-image ``quality`` (B,) in 1..100: YCbCr, 4:2:0
    chroma subsampling, 8x8 DCT, quantisation by the standard tables, and back."""
    import numpy as np
    from keras import ops

    batch, height, width, _ = ops.shape(images)
    ph, pw = -height % 16, -width % 16
    x = ops.pad(images, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="symmetric") if ph or pw \
        else images
    hh, ww = height + ph, width + pw
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0

    def half(c):
        return ops.average_pool(c[..., None], 2, strides=2, padding="valid")[..., 0]

    def up(c):
        return ops.repeat(ops.repeat(c, 2, axis=1), 2, axis=2)

    n = np.arange(8)
    dct = np.sqrt(2.0 / 8) * np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16)
    dct[0] /= np.sqrt(2.0)
    dct = ops.convert_to_tensor(dct.astype("float32"))
    q = ops.clip(quality, 1.0, 100.0)
    scale = ops.where(q < 50.0, 5000.0 / q, 200.0 - 2.0 * q)

    def lossy(channel, table):
        h, w = ops.shape(channel)[1], ops.shape(channel)[2]
        blocks = ops.reshape(channel - 128.0, (batch, h // 8, 8, w // 8, 8))
        coef = ops.einsum("ij,bhjwk,lk->bhiwl", dct, blocks, dct)
        table = ops.convert_to_tensor(np.asarray(table, "float32").reshape(8, 8))
        step = ops.clip(ops.floor((table[None] * ops.reshape(scale, (-1, 1, 1)) + 50.0) / 100.0),
                        1.0, 255.0)
        step = ops.reshape(step, (-1, 1, 8, 1, 8))
        coef = ops.round(coef / step) * step
        blocks = ops.einsum("ji,bhjwk,kl->bhiwl", dct, coef, dct)
        return ops.reshape(blocks, (batch, h, w)) + 128.0

    y = lossy(y, _JPEG_LUMA)
    cb = up(lossy(half(cb), _JPEG_CHROMA)) - 128.0
    cr = up(lossy(half(cr), _JPEG_CHROMA)) - 128.0
    out = ops.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb],
                    axis=-1)
    return out[:, :height, :width, :]


# --- symmetries ----------------------------------------------------------------------------


class Flips(Augmenter):
    """A transformed image gets one of the 7 non-identity symmetries of the square
    (horizontal/vertical flips, 90/180/270-degree rotations, transposes), uniformly;
    only the 3 flips for non-square images. The default ``probability`` 0.875 = 7/8 makes
    every one of the 8 symmetries, identity included, equally likely. ``magnitude`` has
    no effect (a symmetry has no strength); it is accepted like every augmenter's."""

    NAME = "flips"
    DESCRIPTION = ("Flips and 90-degree transposes (the 8 symmetries of the square; cells "
                   "have no orientation). probability 0.875: all 8 equally likely; "
                   "magnitude: no effect.")
    OPTIONS = {"probability": 0.875, "magnitude": 1.0}

    def __init__(self, seed=0, probability=0.875, magnitude=1.0):
        super().__init__(seed, probability, magnitude)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        which = self.randint((batch,), 1, 8 if height == width else 4)
        images = _select(which % 2 == 1, ops.flip(images, axis=2), images)
        images = _select((which // 2) % 2 == 1, ops.flip(images, axis=1), images)
        if height == width:
            images = _select(which >= 4, ops.transpose(images, (0, 2, 1, 3)), images)
        return images


# --- geometry and colour -------------------------------------------------------------------


class Geometric(Augmenter):
    """One affine warp per image (one interpolation): rotation up to +-180 deg x
    magnitude (any angle at 1), shear up to +-0.25 x magnitude, translation up to
    +-10% x magnitude of the size, and with ``zoom=true`` scaling by up to
    1.25 ** +-magnitude (off by default: cell size tells classes apart). Borders are
    filled by ``fill_mode`` (reflect, constant, nearest, wrap, mirror)."""

    NAME = "geometric"
    DESCRIPTION = ("Free rotation, shear and translation in one affine warp (zoom opt-in: "
                   "zoom=true). magnitude 1: any angle, shear 0.25, shift 10%, zoom 1.25x.")
    OPTIONS = {"probability": 0.8, "magnitude": 1.0, "zoom": False, "fill_mode": "reflect"}

    def __init__(self, seed=0, probability=0.8, magnitude=1.0, zoom=False,
                 fill_mode="reflect"):
        super().__init__(seed, probability, magnitude)
        self.zoom = bool(zoom)
        self.fill_mode = _check_choice(self.NAME, "fill_mode", fill_mode, FILL_MODES)

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
    DESCRIPTION = ("Stain-colour shift (optical density, HED), hue, saturation, contrast, "
                   "brightness. magnitude 1: stains x1+-0.3, hue +-0.08 turn, saturation "
                   "x1+-0.5, contrast x1+-0.4, brightness +-20%.")
    OPTIONS = {"probability": 0.8, "magnitude": 0.5}

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

        contrast = _per_image(1.0 + self.uniform((batch,), -0.4, 0.4) * m)
        mean = ops.mean(_gray(x), axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * contrast + mean
        x = x + _per_image(self.uniform((batch,), -0.2, 0.2) * m * 255.0)
        return x


# --- noise and corruptions -----------------------------------------------------------------


class Noise(Augmenter):
    """Per transformed image one of, uniformly: Gaussian noise (sigma up to 30 x
    magnitude), Gaussian blur (sigma up to 2.5 px x magnitude), JPEG quality loss
    (quality down to 100 - 95 x magnitude; real 8x8 DCT quantisation with the standard
    tables and 4:2:0 chroma). Strengths drawn per image in [0.2, 1] x magnitude."""

    NAME = "noise"
    DESCRIPTION = ("One of Gaussian noise, Gaussian blur, JPEG quality loss per image. "
                   "magnitude 1: noise sigma 30, blur sigma 2.5 px, JPEG quality 5.")
    OPTIONS = {"probability": 0.5, "magnitude": 0.5}

    def __init__(self, seed=0, probability=0.5, magnitude=0.5):
        super().__init__(seed, probability, magnitude)

    def transform_images(self, images):
        from keras import ops

        batch = ops.shape(images)[0]
        which = self.randint((batch,), 0, 3)
        strength = self.strengths(batch, low=0.2)
        x = _on_subset(which == 0, lambda im, s: im + _per_image(30.0 * s)
                       * self._normal(ops.shape(im)), images, strength)
        x = _on_subset(which == 1, lambda im, s: _convolve_per_image(
            im, _gaussian_kernels(2.5 * s)), x, strength)
        return _on_subset(which == 2, lambda im, s: _jpeg(im, 100.0 - 95.0 * s), x, strength)

    def _normal(self, shape):
        from keras import random

        return random.normal(shape, dtype="float32", seed=self.seed_generator)


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
    DESCRIPTION = ("Microscopy corruptions (MedMNIST-C kind): stain deposits, bubbles, "
                   "defocus, motion blur, pixelation, brightness, contrast. severity 1-5, "
                   "0: random per image up to round(1 + 4 x magnitude).")
    OPTIONS = {"probability": 0.5, "magnitude": 1.0, "severity": 0, "kinds": list(CORRUPTIONS)}

    def __init__(self, seed=0, probability=0.5, magnitude=1.0, severity=0, kinds=CORRUPTIONS):
        super().__init__(seed, probability, magnitude)
        self.severity = int(severity)
        if not 0 <= self.severity <= 5:
            raise OptionError(f"corrupt.severity must be 0 (random per image) or 1-5; "
                              f"received {severity!r}")
        if isinstance(kinds, str):
            kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        kinds = list(kinds)
        if not kinds:
            raise OptionError("corrupt.kinds must name at least one corruption of: "
                              + ", ".join(CORRUPTIONS))
        for kind in kinds:
            _check_choice(self.NAME, "kinds", kind, CORRUPTIONS)
        self.kinds = kinds

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
        x = _on_subset(kind == CORRUPTIONS.index("deposits"),
                       lambda im, s: self._deposits(im, s, size), x, severity)
        x = _on_subset(kind == CORRUPTIONS.index("bubbles"),
                       lambda im, s: self._bubbles(im, s, size), x, severity)
        defocus_radius = self._table("defocus_radius", severity) * min(size, 1.25)
        x = _on_subset(kind == CORRUPTIONS.index("defocus"),
                       lambda im, r: _convolve_per_image(im, _disc_kernels(r)), x, defocus_radius)
        length = self._table("motion_length", severity)
        angle = self.uniform((batch,), 0.0, math.pi)
        x = _on_subset(kind == CORRUPTIONS.index("motion"),
                       lambda im, n, a: _convolve_per_image(im, _line_kernels(n, a)),
                       x, length, angle)
        blocks = ops.cast(self._table("pixel_block", severity), "int32")
        for block in sorted(set(_SEVERITY["pixel_block"])):
            x = _on_subset((kind == CORRUPTIONS.index("pixelate")) & (blocks == block),
                           lambda im, b=block: _pixelate(im, b), x)
        delta = self._table("brightness", severity) * self.signs((batch,))
        x = _on_subset(kind == CORRUPTIONS.index("brightness"),
                       lambda im, d: im + _per_image(d), x, delta)
        factor = self._table("contrast", severity)
        boost = self.uniform((batch,)) < 0.3  # sometimes more contrast instead of less
        factor = ops.where(boost, ops.minimum(1.0 / factor, 1.6), factor)
        return _on_subset(kind == CORRUPTIONS.index("contrast"), _contrast, x, factor)

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
        light = _per_image(self._table("bubble_light", severity))
        x = images + (255.0 - images) * ops.clip(light * disc + 0.6 * rim, 0.0, 1.0)
        return x * (1.0 - 0.35 * outline)


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
    DESCRIPTION = ("GridMask: a rotated grid of square holes. magnitude 1: half the image "
                   "masked; fill mean|noise|zero.")
    OPTIONS = {"probability": 0.5, "magnitude": 0.5, "fill": "mean", "rotate": True}

    def __init__(self, seed=0, probability=0.5, magnitude=0.5, fill="mean", rotate=True):
        super().__init__(seed, probability, magnitude)
        self.fill = _check_choice(self.NAME, "fill", fill, FILLS)
        self.rotate = bool(rotate)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        period = _per_image(self.uniform((batch,), 0.25, 0.6) * min(height, width))[..., 0]
        side = math.sqrt(self.magnitude / 2.0) * period
        angle = self.uniform((batch,), 0.0, math.pi / 2)
        if not self.rotate:
            angle = angle * 0.0
        cos, sin = _per_image(ops.cos(angle))[..., 0], _per_image(ops.sin(angle))[..., 0]
        y, x = _grid(height, width)
        u = x[None] * cos + y[None] * sin + _per_image(self.uniform((batch,)))[..., 0] * period
        v = -x[None] * sin + y[None] * cos + _per_image(self.uniform((batch,)))[..., 0] * period
        holes = (ops.mod(u, period) < side) & (ops.mod(v, period) < side)
        return ops.where(holes[..., None], _fill(self, images, self.fill), images)


class Erasing(Augmenter):
    """Random erasing / cutout (Zhong et al.; DeVries & Taylor): ``count`` rectangles
    per image, each of area fraction drawn in [0.1, 1] x 0.5 x magnitude (magnitude 1:
    up to half the image) and aspect ratio in [1/3, 3], filled by ``fill``: ``noise``
    (uniform 0..255, as in the paper), ``mean`` or ``zero``."""

    NAME = "erasing"
    DESCRIPTION = ("Random erasing / cutout: count random rectangles. magnitude 1: up to "
                   "half the image each; fill noise|mean|zero.")
    OPTIONS = {"probability": 0.5, "magnitude": 0.5, "count": 1, "fill": "noise"}

    def __init__(self, seed=0, probability=0.5, magnitude=0.5, count=1, fill="noise"):
        super().__init__(seed, probability, magnitude)
        self.count = int(count)
        if self.count < 1:
            raise OptionError(f"erasing.count must be at least 1; received {count!r}")
        self.fill = _check_choice(self.NAME, "fill", fill, FILLS)

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


class CutMix(Augmenter):
    """CutMix (Yun et al.): a box of another image of the batch is pasted in; the labels
    mix in exact proportion to the pasted pixel area (box sides rounded to whole
    pixels). The pasted area fraction is magnitude x Beta(alpha, alpha)."""

    NAME = "cutmix"
    DESCRIPTION = ("CutMix: paste a box of another image; labels mixed by the pasted area. "
                   "magnitude: the largest pasted area fraction (x Beta(alpha, alpha)).")
    OPTIONS = {"probability": 0.5, "magnitude": 1.0, "alpha": 1.0}

    MIXES_BATCH = True

    def __init__(self, seed=0, probability=0.5, magnitude=1.0, alpha=1.0):
        super().__init__(seed, probability, magnitude)
        self.alpha = float(alpha)
        if self.alpha <= 0:
            raise OptionError(f"cutmix.alpha must be positive; received {alpha!r}")

    def transform(self, images, labels):
        from keras import ops, random

        batch, height, width, _ = ops.shape(images)
        share = self.magnitude * random.beta((batch,), self.alpha, self.alpha,
                                             dtype="float32", seed=self.seed_generator)
        side = ops.sqrt(share)
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


class MixUp(Augmenter):
    """MixUp (Zhang et al.): a blend with another image of the batch, the labels mixed
    with the same weight. The other image's weight is magnitude x Beta(alpha, alpha)
    (magnitude 1: standard MixUp; 0.5: each image stays dominant)."""

    NAME = "mixup"
    DESCRIPTION = ("MixUp: blend with another image; labels mixed alike. magnitude: the "
                   "largest weight of the other image (x Beta(alpha, alpha)).")
    OPTIONS = {"probability": 0.5, "magnitude": 1.0, "alpha": 0.4}

    MIXES_BATCH = True

    def __init__(self, seed=0, probability=0.5, magnitude=1.0, alpha=0.4):
        super().__init__(seed, probability, magnitude)
        self.alpha = float(alpha)
        if self.alpha <= 0:
            raise OptionError(f"mixup.alpha must be positive; received {alpha!r}")

    def transform(self, images, labels):
        from keras import ops, random

        batch = ops.shape(images)[0]
        share = self.magnitude * random.beta((batch,), self.alpha, self.alpha,
                                             dtype="float32", seed=self.seed_generator)
        other = self.partners(batch)
        mixed = (1.0 - _per_image(share)) * images + _per_image(share) * ops.take(images, other,
                                                                                  axis=0)
        share = share[:, None]
        return mixed, (1.0 - share) * labels + share * ops.take(labels, other, axis=0)


AUGMENTERS = {cls.NAME: cls for cls in (Flips, AugMix, RandAugment, Geometric, Color, Noise,
                                        Corrupt, GridMask, Erasing, CutMix, MixUp)}
"""Built-in augmenters by registered name (``flips`` and ``augmix`` first, the defaults)."""
