"""Augmentation policies: ``randaugment`` and ``augmix``."""

from __future__ import annotations

import functools
import math

from codabench_kit.api import Augmenter, OptionError
from codabench_kit.training.augmenter import on_subset, per_image, xla_compiled
from codabench_kit.plugins.augmenters.image_ops import (
    _affine,
    _affine_matrices,
    _contrast,
    _gray,
    _warp,
)


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
    """Histogram equalisation per image and channel (256 bins): AugMix's level map for
    equalize, applied to the pixels."""
    from keras import ops

    levels = ops.cast(ops.clip(ops.round(images), 0, 255), "int32")
    table = _LevelMaps(_levels_histogram(levels)).equalize(None)
    return _apply_levels(table, levels)


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

    threshold = per_image(255.0 * (1.0 - level))
    return images + ops.cast(images >= threshold, "float32") * (255.0 - 2.0 * images)


def _saturate(images, factor):
    gray = _gray(images)
    return gray + (images - gray) * per_image(factor)


def _posterize(images, level):
    """Keep 8 - round(4 x level) bits."""
    from keras import ops

    step = per_image(ops.power(2.0, ops.round(4.0 * level)))
    return ops.floor(images / step) * step


def _sharpen(images, factor):
    smooth = _smooth3(images)
    return smooth + (images - smooth) * per_image(factor)


class RandAugment(Augmenter):
    """RandAugment (Cubuk et al.) with ``keras.ops``: ``num_ops`` operations per image,
    each chosen per image from identity, autocontrast, equalize, rotate (up to 30 deg),
    solarize (threshold down to 0), color/saturation, posterize (down to 4 bits),
    contrast, brightness, sharpness (factors 1 +- 0.9), shear x/y (up to 0.3),
    translate x/y (up to 30% of the size), at a strength drawn per image up to
    ``magnitude``. The geometric ones of a round share one warp (reflect borders)."""

    NAME = "randaugment"
    FAMILIES = ("color", "geometry")
    DESCRIPTION = ("RandAugment with keras.ops: num_ops per-image random operations of 14. "
                   "magnitude 1: rotate 30 deg, shear 0.3, shift 30%, factors 1+-0.9, "
                   "posterize 4 bits, solarize all.")

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

            x = on_subset(is_("rotate", "shear_x", "shear_y", "translate_x", "translate_y"),
                           lambda im, *p: _affine(im, *p, ops.ones_like(p[0])), x,
                           chosen("rotate", signed * math.pi / 6),
                           chosen("shear_x", signed * 0.3), chosen("shear_y", signed * 0.3),
                           chosen("translate_x", signed * 0.3 * width),
                           chosen("translate_y", signed * 0.3 * height))
            x = on_subset(is_("autocontrast"), _autocontrast, x)
            x = on_subset(is_("equalize"), _equalize, x)
            x = on_subset(is_("solarize"), _solarize, x, level)
            x = on_subset(is_("color"), _saturate, x, factor)
            x = on_subset(is_("posterize"), _posterize, x, level)
            x = on_subset(is_("contrast"), _contrast, x, factor)
            x = on_subset(is_("brightness"), lambda im, f: im * per_image(f), x, factor)
            x = on_subset(is_("sharpness"), _sharpen, x, factor)
            x = ops.clip(x, 0.0, 255.0)
        return x


_AUGMIX_OPS = ("autocontrast", "equalize", "posterize", "solarize", "rotate", "shear_x",
               "shear_y", "translate_x", "translate_y")
"""AugMix's operations: the paper's list, none of which overlaps the test corruptions."""


def _levels_histogram(levels):
    """(B, C, 256) counts of each level 0..255 per image and channel of int32 ``levels``
    (B, H, W, C): one segment sum (a bincount's size is not static, XLA needs it to be)."""
    from keras import ops

    batch, _, _, channels = ops.shape(levels)
    offset = ops.reshape(ops.arange(batch * channels, dtype="int32"), (batch, 1, 1, channels))
    ids = ops.reshape(levels + offset * 256, (-1,))
    counts = ops.segment_sum(ops.ones_like(ids, dtype="float32"), ids,
                             num_segments=batch * channels * 256)
    return ops.reshape(counts, (batch, channels, 256))


class _LevelMaps:
    """The pixel operations of AugMix as maps of the 256 levels, per image and channel.

    ``value`` (B, C, 256) holds the current value of every original level, so a chain of
    pixel operations costs nothing per pixel: each updates these 256 values, reading
    the image's histogram where it needs the current image's minimum, maximum or
    histogram (autocontrast, equalize), and the chain is applied to the pixels in one
    gather at the end. Values are rounded after each operation, as on 8-bit images."""

    def __init__(self, counts):
        from keras import ops

        self.counts = counts
        self.present = counts > 0
        self.value = ops.broadcast_to(ops.arange(256, dtype="float32"), ops.shape(counts))

    @staticmethod
    def per_image(values):
        from keras import ops

        return ops.reshape(values, (-1, 1, 1))

    def autocontrast(self, level):
        from keras import ops

        low = ops.min(ops.where(self.present, self.value, 255.0), axis=2, keepdims=True)
        high = ops.max(ops.where(self.present, self.value, 0.0), axis=2, keepdims=True)
        span = high - low
        return ops.where(span > 0, (self.value - low) * 255.0 / ops.maximum(span, 1.0),
                         self.value)

    def equalize(self, level):
        from keras import ops

        batch, channels, _ = ops.shape(self.counts)
        current = ops.cast(ops.clip(self.value, 0, 255), "int32")
        offset = ops.reshape(ops.arange(batch * channels, dtype="int32"), (batch, channels, 1))
        histogram = ops.reshape(ops.segment_sum(ops.reshape(self.counts, (-1,)),
                                                ops.reshape(current + offset * 256, (-1,)),
                                                num_segments=batch * channels * 256),
                                (batch, channels, 256))
        cdf = ops.cumsum(histogram, axis=2)
        total = cdf[:, :, -1:]
        first = ops.min(ops.where(histogram > 0, cdf, total), axis=2, keepdims=True)
        table = (cdf - first) / ops.maximum(total - first, 1.0) * 255.0
        table = ops.where(total - first > 0, table, ops.arange(256, dtype="float32"))
        return ops.take_along_axis(table, current, axis=2)

    def posterize(self, level):
        from keras import ops

        step = self.per_image(ops.power(2.0, ops.round(4.0 * level)))
        return ops.floor(self.value / step) * step

    def solarize(self, level):
        from keras import ops

        threshold = self.per_image(255.0 * (1.0 - level))
        return ops.where(self.value >= threshold, 255.0 - self.value, self.value)

    def apply(self, op, level, codes):
        """Update the maps: image i gets operation ``op[i]`` (codes of ``_AUGMIX_OPS``;
        any other code leaves it as it is) at strength ``level[i]``."""
        from keras import ops

        value = self.value
        for name in ("autocontrast", "equalize", "posterize", "solarize"):
            chosen = self.per_image(op == codes[name])
            value = ops.where(chosen, getattr(self, name)(level), value)
        self.value = ops.clip(ops.round(value), 0.0, 255.0)

    def on(self, levels):
        """The images: every pixel's level mapped, (B, H, W, C) float32."""
        return _apply_levels(self.value, levels)


def _apply_levels(value, levels):
    """Map every pixel's level through ``value`` (B, C, 256): (B, H, W, C) float32."""
    from keras import ops

    batch, height, width, channels = ops.shape(levels)
    flat = ops.reshape(ops.transpose(levels, (0, 3, 1, 2)), (batch, channels, -1))
    out = ops.take_along_axis(value, flat, axis=2)
    return ops.transpose(ops.reshape(out, (batch, channels, height, width)), (0, 2, 3, 1))


class AugMix(Augmenter):
    """AugMix (Hendrycks et al.) with ``keras.ops``: ``num_chains`` chains, each of 1 to
    ``chain_depth`` operations (depth drawn per image), each operation drawn per image
    from autocontrast, equalize, posterize (down to 4 bits), solarize (threshold down to
    0), rotate (up to 30 deg), shear x/y (up to 0.3) and translate x/y (up to a third of
    the size), at a strength drawn per image in [0, ``magnitude``]. The chains are mixed
    with Dirichlet(``alpha``) weights, then with the original by a Beta(``alpha``,
    ``alpha``) weight, per image.

    ``num_chains`` is 1 by default (the paper's 3 is an option): in the default chain
    ``flips,augmix,color,noise`` it keeps training at issue 4's 0.9x speed (0.21 ms per
    image against 0.45 for 3 chains), and that chain, 30 epochs, scored best on corrupted
    images of every recipe measured (dev set: augmented test 0.868; see README).

    Made for speed (0.45 ms per image with 3 chains on 2 CPU cores in the training
    pipeline, where ``keras.layers.AugMix`` takes 1.3 ms): the pixel operations are maps of the 256
    levels (``_LevelMaps``), applied to the pixels once per chain; the geometric ones
    compose into one affine map, applied after them in one gather (pixel operations map
    values, so the order changes only the borders' histogram). All draws are tensor ops
    on the seeded stream. On TensorFlow the work runs as two XLA kernels (``plan``, then
    ``_mix_in`` per chain) inside one plain graph (``COMPILE = "graph"``: XLA over the
    whole would fuse the level-map gather into the warp's and run 3x slower).
    """

    NAME = "augmix"
    FAMILIES = ("color", "geometry")
    DESCRIPTION = ("AugMix (Hendrycks et al.) with keras.ops: num_chains chains of 1 to "
                   "chain_depth of 9 operations, mixed. magnitude 1: rotate 30 deg, shear 0.3, "
                   "shift 33%, posterize 4 bits, solarize all.")
    COMPILE = "graph"

    def __init__(self, seed=0, probability=1.0, magnitude=0.3, num_chains=1, chain_depth=3,
                 alpha=1.0):
        super().__init__(seed, probability, magnitude)
        self.num_chains, self.chain_depth = int(num_chains), int(chain_depth)
        self.alpha = float(alpha)
        for key, value in (("num_chains", self.num_chains), ("chain_depth", self.chain_depth)):
            if value < 1:
                raise OptionError(f"augmix.{key} must be at least 1; received {value!r}")
        if not self.alpha > 0:
            raise OptionError(f"augmix.alpha must be positive; received {alpha!r}")
        self._plan = None

    def gamma(self, shape):
        """Gamma(``alpha``, 1) draws by Marsaglia and Tsang's method, vectorised: Gamma(alpha
        + 1) from the first accepted of 8 proposals (each accepted with probability over
        0.95), times U ** (1 / alpha). Tensor ops only: XLA cannot compile
        ``keras.random.gamma``."""
        from keras import ops, random

        d = self.alpha + 2.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        proposals = (8,) + tuple(shape)
        x = random.normal(proposals, dtype="float32", seed=self.seed_generator)
        v = ops.power(ops.maximum(1.0 + c * x, 1e-6), 3.0)
        accepted = (1.0 + c * x > 0) & (
            ops.log(self.uniform(proposals, 1e-12, 1.0)) < 0.5 * x * x + d - d * v + d * ops.log(v))
        first = ops.argmax(ops.cast(accepted, "int32"), axis=0)
        draws = ops.take_along_axis(d * v, ops.expand_dims(first, 0), axis=0)[0]
        return draws * ops.power(self.uniform(tuple(shape), 1e-12, 1.0), 1.0 / self.alpha)

    def plan(self, images):
        """Everything AugMix draws for a batch, on small arrays: the (K, B, C, 256) level
        maps of the K chains, their (K, B, 3, 3) affine maps, and the (K, B) weights
        of the chains in the mix; also the (B,) weight of the original images and their
        int32 levels."""
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        levels = ops.cast(ops.clip(ops.round(images), 0, 255), "int32")
        counts = _levels_histogram(levels)
        codes = {name: i for i, name in enumerate(_AUGMIX_OPS)}
        values, matrices = [], []
        for _ in range(self.num_chains):
            depth = self.randint((batch,), 1, self.chain_depth + 1)
            maps = _LevelMaps(counts)
            matrix = ops.broadcast_to(ops.eye(3), (batch, 3, 3))
            for step in range(self.chain_depth):
                op = ops.where(step < depth, self.randint((batch,), 0, len(_AUGMIX_OPS)), -1)
                level = self.strengths(batch)
                signed = level * self.signs((batch,))
                maps.apply(op, level, codes)

                def amount(name, scale, _op=op, _signed=signed):
                    return ops.where(_op == codes[name], _signed * scale, 0.0)

                matrix = ops.matmul(matrix, _affine_matrices(
                    height, width, amount("rotate", math.pi / 6), amount("shear_x", 0.3),
                    amount("shear_y", 0.3), amount("translate_x", width / 3.0),
                    amount("translate_y", height / 3.0), ops.ones((batch,))))
            values.append(maps.value)
            matrices.append(matrix)
        weights = self.gamma((self.num_chains, batch))
        weights = weights / ops.sum(weights, axis=0, keepdims=True)
        a, b = self.gamma((batch,)), self.gamma((batch,))
        keep = a / (a + b)
        return levels, ops.stack(values), ops.stack(matrices), weights * (1.0 - keep), keep

    def transform_images(self, images):
        from keras import ops

        if self._plan is None:
            self._plan = xla_compiled(self.plan)
        levels, values, matrices, weights, keep = self._plan(images)
        mixed = per_image(keep) * images
        mix_in = _mix_in_kernel()
        for k in range(self.num_chains):
            mixed = mix_in(mixed, levels, values[k], matrices[k], weights[k])
        return ops.convert_to_tensor(mixed)


def _mix_in(mixed, levels, value, matrix, weight):
    """``mixed + weight x warp(value[levels], matrix)``: one chain applied and mixed in.

    A kernel of its own, apart from ``AugMix.plan``: compiled together, XLA fuses the
    level-map gather into the warp's gathers and recomputes it, 6x slower."""
    return mixed + per_image(weight) * _warp(_apply_levels(value, levels), matrix)


@functools.cache
def _mix_in_kernel():
    return xla_compiled(_mix_in)
