"""The corruptions that test a model, grouped in families.

Plain numpy (and Pillow for JPEG), independent of the training augmenters and of the
Keras backend, so a model is never tested on exactly the transformations it trained on.
Each corruption is ``(image float64 H x W x 3 in 0..255, severity 1-5, rng) -> image``
(the caller clips to 0..255 and rounds).

A *family* groups the corruptions of one mechanism (:data:`FAMILIES`). Augmenters say
which families they simulate (``Augmenter.FAMILIES``); the families that no augmenter
of a build simulates are its *held-out* families, and the figures on them are the ones
that say how the model copes with what it never saw (see
:mod:`codabench_kit.evaluation.families`).
"""

from __future__ import annotations

import io

import numpy as np


# --- noise ---------------------------------------------------------------------------


def _gaussian_noise(img, s, rng):
    return img + rng.normal(0.0, (4, 8, 12, 18, 26)[s - 1], img.shape)


def _shot_noise(img, s, rng):
    """Poisson (photon) noise: fewer photons per level at a higher severity."""
    photons = (250, 120, 60, 30, 15)[s - 1]
    return rng.poisson(np.clip(img, 0, 255) / 255.0 * photons) / photons * 255.0


def _impulse_noise(img, s, rng):
    """Salt and pepper on a share of the pixel values."""
    amount = (0.01, 0.02, 0.04, 0.06, 0.09)[s - 1]
    hit = rng.random(img.shape) < amount
    return np.where(hit, np.where(rng.random(img.shape) < 0.5, 0.0, 255.0), img)


def _speckle_noise(img, s, rng):
    """Multiplicative noise: brighter pixels vary more."""
    return img + img * rng.normal(0.0, (0.05, 0.08, 0.12, 0.17, 0.24)[s - 1], img.shape)


# --- blur ----------------------------------------------------------------------------


def _convolve(img, kernel):
    """``img`` convolved per channel with the 2-D ``kernel`` (reflected borders)."""
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(img, ((ry, ry), (rx, rx), (0, 0)), mode="reflect")
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for (i, j), k in np.ndenumerate(kernel):
        if k:
            out += k * padded[i:i + h, j:j + w]
    return out


def _blur(img, s, rng):
    sigma = (0.5, 0.8, 1.1, 1.5, 2.0)[s - 1]
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(img, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    rows = sum(k * padded[i:i + img.shape[0], :, :] for i, k in enumerate(kernel))
    return sum(k * rows[:, i:i + img.shape[1], :] for i, k in enumerate(kernel))


def _defocus(img, s, rng):
    """An out-of-focus lens: a uniform disc kernel."""
    radius = (1.0, 1.5, 2.0, 3.0, 4.0)[s - 1]
    r = int(np.ceil(radius))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    kernel = (x**2 + y**2 <= radius**2 + 0.5).astype(np.float64)
    return _convolve(img, kernel / kernel.sum())


def _motion_blur(img, s, rng):
    """The camera or stage moved: a line kernel at a random angle."""
    length = (3, 5, 7, 9, 11)[s - 1]
    angle = rng.uniform(0, np.pi)
    c = length // 2
    kernel = np.zeros((length, length))
    for t in np.linspace(-c, c, 4 * length):
        kernel[int(round(c + t * np.sin(angle))), int(round(c + t * np.cos(angle)))] += 1
    return _convolve(img, kernel / kernel.sum())


# --- digital -------------------------------------------------------------------------


def _pixelate(img, s, rng):
    block = (2, 2, 3, 4, 6)[s - 1]
    h, w = img.shape[:2]
    hh, ww = -(-h // block) * block, -(-w // block) * block
    padded = np.pad(img, ((0, hh - h), (0, ww - w), (0, 0)), mode="edge")
    small = padded.reshape(hh // block, block, ww // block, block, 3).mean(axis=(1, 3))
    return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w]


def _jpeg(img, s, rng):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=(60, 40, 25, 15, 8)[s - 1])
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float64)


# --- colour and exposure -------------------------------------------------------------


def _brightness(img, s, rng):
    delta = (15, 30, 45, 60, 80)[s - 1] * rng.choice((-1, 1))
    return img + delta


def _contrast(img, s, rng):
    factor = (0.8, 0.65, 0.5, 0.4, 0.3)[s - 1]
    if rng.random() < 0.3:  # sometimes more contrast instead of less
        factor = min(1 / factor, 1.6)
    mean = img.mean(axis=(0, 1), keepdims=True)
    return (img - mean) * factor + mean


def _stain_shift(img, s, rng):
    gains = 1 + rng.uniform(-1, 1, 3) * (0.06, 0.1, 0.15, 0.2, 0.27)[s - 1]
    return img * gains


def _saturate(img, s, rng):
    """Washed-out stain: the colours pulled towards grey."""
    factor = (0.75, 0.55, 0.35, 0.2, 0.05)[s - 1]
    gray = img @ np.array([0.299, 0.587, 0.114])
    return gray[..., None] + (img - gray[..., None]) * factor


def _gamma(img, s, rng):
    """A wrong exposure curve: mid-tones darkened."""
    exponent = (1.25, 1.5, 1.8, 2.2, 2.7)[s - 1]
    return 255.0 * (np.clip(img, 0, 255) / 255.0) ** exponent


# --- microscopy ----------------------------------------------------------------------


def _discs(shape, rng, count, radius):
    """A float mask (H x W): ``count`` discs of ``radius`` (+-20%) at random centres."""
    h, w = shape[:2]
    y, x = np.ogrid[:h, :w]
    mask = np.zeros((h, w))
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = radius * rng.uniform(0.8, 1.2)
        mask = np.maximum(mask, np.clip(r + 0.5 - np.hypot(y - cy, x - cx), 0, 1))
    return mask


def _bubbles(img, s, rng):
    """Air bubbles under the cover slip: lighter discs with a dark outline."""
    count, radius = (1, 1, 2, 2, 3)[s - 1], (8.0, 10.0, 12.0, 15.0, 18.0)[s - 1]
    light = (0.15, 0.2, 0.25, 0.3, 0.35)[s - 1]
    h, w = img.shape[:2]
    y, x = np.ogrid[:h, :w]
    out = img
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        distance = np.hypot(y - cy, x - cx)
        inside = np.clip(radius + 0.5 - distance, 0, 1)[..., None]
        rim = np.clip(1.5 - np.abs(distance - radius), 0, 1)[..., None]
        out = out + inside * light * (255.0 - out)
        out = out * (1 - 0.6 * rim)
    return out


def _deposits(img, s, rng):
    """Stain precipitate: dark purple irregular blobs."""
    count = (1, 2, 3, 4, 6)[s - 1]
    radius = (3.0, 4.0, 5.0, 6.0, 7.5)[s - 1]
    opacity = (0.5, 0.6, 0.7, 0.8, 0.9)[s - 1]
    mask = np.zeros(img.shape[:2])
    for _ in range(count):  # each blob: three overlapping discs around one point
        cy, cx = rng.uniform(0, img.shape[0]), rng.uniform(0, img.shape[1])
        for _ in range(3):
            sub = _discs(img.shape, np.random.default_rng(rng.integers(2**32)), 1, radius / 1.6)
            shift = np.round(rng.normal(0, radius / 2, 2)).astype(int)
            centre = np.unravel_index(np.argmax(sub), sub.shape)
            sub = np.roll(sub, (int(cy) - centre[0] + shift[0], int(cx) - centre[1] + shift[1]),
                          axis=(0, 1))
            mask = np.maximum(mask, sub)
    colour = np.array([70.0, 30.0, 90.0])
    return img + (opacity * mask)[..., None] * (colour - img)


def _dust(img, s, rng):
    """Dust on the optics: many small dark specks (a pixel and its four neighbours)."""
    count = (15, 30, 50, 80, 120)[s - 1]
    h, w = img.shape[:2]
    mask = np.zeros((h + 2, w + 2))
    ys, xs = rng.integers(1, h + 1, count), rng.integers(1, w + 1, count)
    for dy, dx in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)):
        mask[ys + dy, xs + dx] = 1.0
    return img * (1 - 0.7 * mask[1:-1, 1:-1, None])


def _uneven_light(img, s, rng):
    """Uneven illumination: the light falls off away from an off-centre point."""
    fall = (0.15, 0.25, 0.35, 0.45, 0.6)[s - 1]
    h, w = img.shape[:2]
    y, x = np.ogrid[:h, :w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    field = 1 - fall * np.minimum(np.hypot((y - cy) / h, (x - cx) / w) / 0.9, 1.0) ** 2
    return img * field[..., None]


# --- geometry ------------------------------------------------------------------------


def _d4(img, s, rng):
    img = np.rot90(img, k=int(rng.integers(4)))
    return img[:, ::-1] if rng.random() < 0.5 else img


FAMILIES = {
    "noise": {"gaussian_noise": _gaussian_noise, "shot_noise": _shot_noise,
              "impulse_noise": _impulse_noise, "speckle_noise": _speckle_noise},
    "blur": {"blur": _blur, "defocus": _defocus, "motion_blur": _motion_blur},
    "digital": {"jpeg": _jpeg, "pixelate": _pixelate},
    "color": {"brightness": _brightness, "contrast": _contrast, "stain_shift": _stain_shift,
              "saturate": _saturate, "gamma": _gamma},
    "microscopy": {"bubbles": _bubbles, "deposits": _deposits, "dust": _dust,
                   "uneven_light": _uneven_light},
    "geometry": {"d4": _d4},
}
"""Family -> its corruptions (name -> function), in the order every report shows them."""

CORRUPTIONS = {name: fn for members in FAMILIES.values() for name, fn in members.items()}
"""Every corruption by name, family by family."""

FAMILY_OF = {name: family for family, members in FAMILIES.items() for name in members}
"""Corruption name -> its family."""
