"""The held-out *augmented* test set.

The competition's hidden test images are corrupted, so accuracy on a clean split says
little about the leaderboard. Once per build, each image of the test split gets
``ops_per_image`` corruptions drawn at random severities 1-5 from a fixed-seed stream.
This is plain numpy, independent of the training augmenters (so a model is never tested
on exactly the transformations it trained on) and of the Keras backend.
"""

from __future__ import annotations

import io

import numpy as np

HELDOUT_SEED = 20_241_122
"""Fixed: every build of the same test split gets the same augmented test set."""


def _gaussian_noise(img, s, rng):
    return img + rng.normal(0.0, (4, 8, 12, 18, 26)[s - 1], img.shape)


def _blur(img, s, rng):
    sigma = (0.5, 0.8, 1.1, 1.5, 2.0)[s - 1]
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(img, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    rows = sum(k * padded[i:i + img.shape[0], :, :] for i, k in enumerate(kernel))
    return sum(k * rows[:, i:i + img.shape[1], :] for i, k in enumerate(kernel))


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


def _d4(img, s, rng):
    img = np.rot90(img, k=int(rng.integers(4)))
    return img[:, ::-1] if rng.random() < 0.5 else img


CORRUPTIONS = {
    "gaussian_noise": _gaussian_noise,
    "blur": _blur,
    "brightness": _brightness,
    "contrast": _contrast,
    "stain_shift": _stain_shift,
    "pixelate": _pixelate,
    "jpeg": _jpeg,
    "d4": _d4,
}


def make_augmented_test_set(images: np.ndarray, *, seed: int = HELDOUT_SEED,
                            ops_per_image: int = 2) -> tuple[np.ndarray, list[str]]:
    """Return corrupted copies of ``images`` (uint8, same shape) and, per image, the
    corruptions applied as ``"name@severity+name@severity"``."""
    rng = np.random.default_rng(seed)
    names = list(CORRUPTIONS)
    out = np.empty_like(images)
    applied: list[str] = []
    for i, image in enumerate(images):
        img = image.astype(np.float64)
        steps = []
        for name in rng.choice(names, size=ops_per_image, replace=False):
            severity = int(rng.integers(1, 6))
            img = np.clip(CORRUPTIONS[name](img, severity, rng), 0, 255)
            steps.append(f"{name}@{severity}")
        out[i] = np.round(img).astype(np.uint8)
        applied.append("+".join(steps))
    return out, applied
