"""Gradient saliency maps of misclassified test images, for the build report.

SmoothGrad (Smilkov et al., 2017) with few samples: the gradient of the log-probability
of the predicted class with respect to the input pixels, averaged over a few noisy
copies of the image, then the largest absolute value over the colour channels. Bright
pixels are those whose change moves the model's (wrong) answer most.

Gradients need the backend's autodiff: TensorFlow (``GradientTape``) and JAX
(``jax.grad``) are supported; on another backend :func:`misclassified_saliency` returns
no examples and a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codabench_kit.evaluation.heldout_sets import HeldoutSets

SAMPLES = 8
"""Noisy copies per image (SmoothGrad); 1 gives vanilla gradients."""
NOISE = 0.1
"""Noise standard deviation as a share of the pixel range (0..255)."""
BLUR = 1.5
"""Gaussian blur of the heat map, sigma in pixels per 64 pixels of image side: strided
convolutions leave a checkerboard in raw gradients that hides where the model looks."""
MAX_EXAMPLES = 8
BACKENDS = ("tensorflow", "jax")


@dataclass
class SaliencyExample:
    """One misclassified test image and its heat map."""

    image: np.ndarray
    """uint8, H x W x 3."""
    heat: np.ndarray
    """float32, H x W, 0..1."""
    split: str
    """``clean`` or ``augmented``."""
    index: int
    """Row of the image in its test set."""
    true: int
    predicted: int
    confidence: float
    """The shipped model's probability of the predicted class."""
    corruption: str = ""
    """For an augmented image, the corruptions applied (``name@severity+...``)."""


@dataclass
class Saliency:
    examples: list[SaliencyExample] = field(default_factory=list)
    method: str = ""
    note: str = ""
    """Why there are no examples, when there are none."""


def pick_misclassified(heldout: HeldoutSets, limit: int = MAX_EXAMPLES) -> list[tuple[str, int]]:
    """Up to ``limit`` ``(split, row)`` pairs of misclassified test images, taking clean
    and augmented ones in turn (the first of each, in test-set order)."""
    chosen: dict[str, list[int]] = {}
    for split, test_set in (("clean", heldout.clean), ("augmented", heldout.augmented)):
        if test_set.probabilities is None:
            chosen[split] = []
            continue
        wrong = np.flatnonzero(test_set.predictions != np.asarray(test_set.labels))
        chosen[split] = [int(i) for i in wrong[:limit]]
    picks: list[tuple[str, int]] = []
    for k in range(limit):
        for split in ("clean", "augmented"):
            if k < len(chosen[split]) and len(picks) < limit:
                picks.append((split, chosen[split][k]))
    return picks


def _gradients(model, images: np.ndarray, classes: np.ndarray, backend: str) -> np.ndarray:
    """d log p(class) / d image for each image (float32, same shape as ``images``)."""
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(images, dtype=tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            probabilities = model(x, training=False)
            picked = tf.gather(probabilities, classes, axis=1, batch_dims=1)
            score = tf.reduce_sum(tf.math.log(tf.maximum(picked, 1e-12)))
        return tape.gradient(score, x).numpy()
    import jax
    import jax.numpy as jnp

    def score(x):
        probabilities = model(x, training=False)
        picked = jnp.take_along_axis(probabilities, jnp.asarray(classes)[:, None], axis=1)
        return jnp.sum(jnp.log(jnp.maximum(picked, 1e-12)))

    return np.asarray(jax.grad(score)(jnp.asarray(images, dtype=jnp.float32)))


def _blur(heat: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each map of ``heat`` (n x H x W), reflecting at the edges."""
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(heat, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    h, w = heat.shape[1:]
    rows = sum(k * padded[:, i:i + h, :] for i, k in enumerate(kernel))
    return sum(k * rows[:, :, i:i + w] for i, k in enumerate(kernel))


def smoothgrad(model, images: np.ndarray, classes, *, backend: str, samples: int = SAMPLES,
               noise: float = NOISE, blur: float = BLUR, seed: int = 0) -> np.ndarray:
    """Heat maps (float32, n x H x W, each scaled to 0..1) of ``images`` (0..255) for
    ``classes`` (one class per image); ``blur``: see :data:`BLUR` (0: none)."""
    images = np.asarray(images, dtype=np.float32)
    classes = np.asarray(classes, dtype=np.int32)
    rng = np.random.default_rng(seed)
    total = np.zeros(images.shape, dtype=np.float32)
    for _ in range(max(1, samples)):
        noisy = images if samples <= 1 else \
            images + rng.normal(0.0, noise * 255.0, images.shape).astype(np.float32)
        total += np.abs(_gradients(model, noisy, classes, backend))
    heat = _blur(total.max(axis=-1), sigma=blur * images.shape[1] / 64) if blur else \
        total.max(axis=-1)
    top = np.percentile(heat.reshape(len(heat), -1), 99, axis=1).reshape(-1, 1, 1)
    return np.clip(heat / np.maximum(top, 1e-12), 0.0, 1.0).astype(np.float32)


def misclassified_saliency(model, heldout: HeldoutSets, *, backend: str,
                           limit: int = MAX_EXAMPLES, samples: int = SAMPLES) -> Saliency:
    """Saliency of up to ``limit`` misclassified images of the build's test sets.

    ``heldout`` holds the test sets and the shipped model's probabilities on them (as
    :func:`codabench_kit.evaluation.metrics.heldout_metrics` returns it); ``model`` maps float32
    images 0..255 to class probabilities (the classifier, without TTA)."""
    method = (f"SmoothGrad ({samples} noisy copies, noise {NOISE:.0%} of the pixel range)"
              if samples > 1 else "vanilla gradients")
    method += (" of the log-probability of the predicted class, largest absolute value "
               "over the colour channels, lightly blurred")
    if backend not in BACKENDS:
        return Saliency(method=method, note=f"not available on this backend ({backend}): "
                                            f"saliency maps need {' or '.join(BACKENDS)}")
    picks = pick_misclassified(heldout, limit)
    if not picks:
        return Saliency(method=method, note="no misclassified test image: nothing to explain")
    rows = []
    for split, row in picks:
        test_set = heldout.clean if split == "clean" else heldout.augmented
        probabilities = test_set.probabilities[row]
        corruptions = heldout.corruptions if split == "augmented" else None
        corruption = str(corruptions[row]) if corruptions is not None and \
            row < len(corruptions) else ""
        rows.append((split, row, test_set.images[row], int(test_set.labels[row]),
                     int(np.argmax(probabilities)), float(np.max(probabilities)), corruption))
    images = np.stack([r[2] for r in rows])
    heat = smoothgrad(model, images, [r[4] for r in rows], backend=backend, samples=samples)
    examples = [SaliencyExample(image=np.asarray(image, dtype=np.uint8), heat=h, split=split,
                                index=row, true=true, predicted=predicted,
                                confidence=confidence, corruption=corruption)
                for (split, row, image, true, predicted, confidence, corruption), h
                in zip(rows, heat)]
    return Saliency(examples=examples, method=method)
