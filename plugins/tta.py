"""Built-in test-time augmentation: ``no-tta``, ``flip-tta``, ``rot-tta``, ``d4-tta``,
``random-tta`` and ``crop-tta``.

A TTA strategy is called on a batch of images (N, H, W, C) and returns its views: a list
of batches of the same shape. The exported model stacks the views into one batch, runs
the classifier once and merges the class probabilities per image inside the graph
(:func:`codabench_kit.training.model.inference_model`), so prediction stays batched.

Every view is a fixed transform, decided when the strategy is built: the exported graph
is deterministic. Each strategy but ``no-tta`` has a ``merge`` option, read by the
inference model from the strategy's ``merge`` attribute:

- ``mean`` (the default): the mean of the views' probabilities;
- ``logits``: the mean of their log-probabilities, then a softmax (the normalised
  geometric mean; a view that is confident against a class counts more).
"""

from __future__ import annotations

import warnings

import numpy as np

from codabench_kit.api import hookimpl
from codabench_kit.api import BuildError, OptionError, check_choice, check_int, check_unit

MERGES = ("mean", "logits")
"""The values of every strategy's ``merge`` option."""

MAX_SHIFT = 0.1
"""``random-tta`` at magnitude 1: largest shift, as a fraction of the image's side."""

MAX_BRIGHTNESS = 25.5
"""``random-tta`` at magnitude 1: largest brightness change (pixel values 0..255)."""

D4 = tuple((turns, flipped) for turns in range(4) for flipped in (False, True))
"""The 8 symmetries of the square: (quarter turns counter-clockwise, mirrored first)."""

RECTANGLE = ((0, False), (0, True), (2, True), (2, False))
"""The symmetries that keep a non-square image's shape: identity, horizontal flip,
vertical flip (a horizontal flip turned by 180 degrees), rotation by 180 degrees."""


@hookimpl
def register_tta(register):
    register("no-tta", NoTTA, description="Predict on the image as given.")
    register("flip-tta", FlipTTA, description="Average over the image and its flips "
             "(horizontal, and vertical unless vertical=false).")
    register("rot-tta", RotTTA, description="Average over the 4 rotations by 90 degrees "
             "(square images; the image and its 180-degree rotation otherwise).")
    register("d4-tta", D4TTA, description="Average over the 8 symmetries of the square: "
             "4 rotations, each optionally mirrored (the 4 that keep the shape of a "
             "non-square image).")
    register("random-tta", RandomTTA, description="Average over the image and views-1 "
             "fixed random views (a symmetry, a shift and a brightness change each), "
             "drawn once from seed.")
    register("crop-tta", CropTTA, description="Average over centre crops at the given "
             "scales, each resized back to the input size.")


# --- strategies ----------------------------------------------------------------------------


class NoTTA:
    """The image as given: one view, so there is nothing to merge."""

    merge = "mean"

    def __call__(self, images):
        return [images]


class FlipTTA:
    """The image, its horizontal flip and (with ``vertical``) its vertical flip."""

    def __init__(self, vertical=True, merge="mean"):
        self.vertical = _check_bool("flip-tta", "vertical", vertical)
        self.merge = _check_merge("flip-tta", merge)

    def __call__(self, images):
        from keras import ops

        views = [images, ops.flip(images, axis=2)]
        if self.vertical:
            views.append(ops.flip(images, axis=1))
        return views


class RotTTA:
    """The image turned by 0, 90, 180 and 270 degrees counter-clockwise (``np.rot90``).

    A quarter turn swaps height and width, so on a non-square image (known when the
    inference model is built, after training) the views are the image and its rotation
    by 180 degrees only, with a warning: a build never fails after training for this.
    """

    def __init__(self, merge="mean"):
        self.merge = _check_merge("rot-tta", merge)

    def __call__(self, images):
        turns = (0, 1, 2, 3) if _is_square(images, "rot-tta") else (0, 2)
        return [_symmetry(images, k, False) for k in turns]


class D4TTA:
    """The 8 symmetries of the square, in :data:`D4`'s order: each of the 4 rotations of
    the image and of its horizontal mirror.

    On a non-square image, the 4 symmetries that keep its shape (:data:`RECTANGLE`),
    with a warning.
    """

    def __init__(self, merge="mean"):
        self.merge = _check_merge("d4-tta", merge)

    def __call__(self, images):
        group = D4 if _is_square(images, "d4-tta") else RECTANGLE
        return [_symmetry(images, k, flipped) for k, flipped in group]


class RandomTTA:
    """The image as given, then ``views - 1`` fixed random views.

    Each view is drawn once, here, from ``seed``: one of the 8 symmetries of the square
    (on a non-square image, one of the 4 that keep its shape), then a shift of up to
    ``magnitude * 10%`` of each side (the border mirrored in) and a brightness change of
    up to ``magnitude * 25.5`` (clipped to 0..255). Nothing is random in the exported
    graph: the same seed gives the same views, so two exports are identical.
    """

    def __init__(self, views=8, seed=0, magnitude=0.5, merge="mean"):
        self.views = check_int("random-tta", "views", views, low=1)
        self.seed = check_int("random-tta", "seed", seed, low=0)
        self.magnitude = check_unit("random-tta", "magnitude", magnitude)
        self.merge = _check_merge("random-tta", merge)
        rng = np.random.default_rng(self.seed)
        shift, brightness = MAX_SHIFT * self.magnitude, MAX_BRIGHTNESS * self.magnitude
        self.transforms = [(0, 0.0, 0.0, 0.0)] + [
            (int(rng.integers(0, 8)), float(rng.uniform(-shift, shift)),
             float(rng.uniform(-shift, shift)), float(rng.uniform(-brightness, brightness)))
            for _ in range(self.views - 1)
        ]
        """Per view: (symmetry 0..7, shift down and right as fractions of the height and
        width, brightness change); the first is the identity."""

    def __call__(self, images):
        from keras import ops

        height, width = _spatial(images, "random-tta")
        group = D4 if height == width else RECTANGLE
        views = []
        for symmetry, down, right, brightness in self.transforms:
            turns, flipped = group[symmetry % len(group)]
            view = _symmetry(images, turns, flipped)
            view = _shift(view, round(down * height), round(right * width))
            if brightness:
                view = ops.clip(view + brightness, 0.0, 255.0)
            views.append(view)
        return views


class CropTTA:
    """Centre crops covering ``scales`` of the height and width (1.0: the whole image),
    each resized back to the input size (bilinear)."""

    def __init__(self, scales=(1.0, 0.9, 0.8), merge="mean"):
        self.scales = _check_scales("crop-tta", "scales", scales)
        self.merge = _check_merge("crop-tta", merge)

    def __call__(self, images):
        from keras import ops

        height, width = _spatial(images, "crop-tta")
        views = []
        for scale in self.scales:
            crop_h, crop_w = max(1, round(scale * height)), max(1, round(scale * width))
            if (crop_h, crop_w) == (height, width):
                views.append(images)
                continue
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            crop = images[:, top:top + crop_h, left:left + crop_w, :]
            views.append(ops.image.resize(crop, (height, width), interpolation="bilinear"))
        return views


# --- transforms ----------------------------------------------------------------------------


def _symmetry(images, turns, flipped):
    """Mirror horizontally (if ``flipped``), then turn by ``turns`` quarter turns
    counter-clockwise, as ``np.rot90(image, turns)``."""
    from keras import ops

    if flipped:
        images = ops.flip(images, axis=2)
    turns %= 4
    swap = (0, 2, 1, 3)  # transpose and flip: ops.rot90 is newer than Keras 3.4
    if turns == 1:
        return ops.transpose(ops.flip(images, axis=2), swap)
    if turns == 2:
        return ops.flip(ops.flip(images, axis=1), axis=2)
    if turns == 3:
        return ops.flip(ops.transpose(images, swap), axis=2)
    return images


def _shift(images, down, right):
    """Move the content ``down`` and ``right`` pixels (negative: up, left); the border
    that comes in is the image mirrored."""
    from keras import ops

    if down == 0 and right == 0:
        return images
    height, width = images.shape[1], images.shape[2]
    pad_h, pad_w = abs(down), abs(right)
    padded = ops.pad(images, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]],
                     mode="reflect")
    top, left = pad_h - down, pad_w - right
    return padded[:, top:top + height, left:left + width, :]


def _spatial(images, name):
    """The static (height, width) of a batch; a strategy that needs them raises if unknown."""
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise BuildError(f"{name} expects images of shape (N, height, width, channels) "
                         f"with a known height and width; received shape={shape}")
    return int(shape[1]), int(shape[2])


def _is_square(images, name):
    height, width = _spatial(images, name)
    if height != width:
        warnings.warn(f"{name}: the images are {height}x{width}, not square, so only the "
                      f"symmetries that keep their shape are used", stacklevel=3)
    return height == width


# --- option checks -------------------------------------------------------------------------


def _check_merge(name, merge):
    return check_choice(name, "merge", merge, MERGES)


def _check_bool(name, key, value):
    if not isinstance(value, (bool, np.bool_)):
        raise OptionError(f"{name}.{key} expects true or false; received {value!r}")
    return bool(value)


def _check_scales(name, key, scales):
    """A non-empty list of numbers in (0, 1]; a comma-separated string is accepted."""
    expected = f"{name}.{key} expects a non-empty list of numbers in (0, 1], e.g. 1.0,0.9,0.8"
    if isinstance(scales, str):
        scales = [part.strip() for part in scales.split(",") if part.strip()]
    try:
        values = [float(s) for s in scales]
    except (TypeError, ValueError):
        raise OptionError(f"{expected}; received {scales!r}") from None
    if not values or any(isinstance(s, bool) for s in scales) \
            or not all(0.0 < v <= 1.0 for v in values):
        raise OptionError(f"{expected}; received {scales!r}")
    return tuple(values)
