"""The base class of augmenters: per-image ``probability``, ``magnitude`` in [0, 1] and a
seeded random stream, with the machinery that transforms a random subset of each batch.

Every built-in augmenter derives from :class:`Augmenter`; a third-party one may too
(``from codabench_kit.api import Augmenter``), or be any callable on a batch.
"""

from __future__ import annotations

from codabench_kit.components.checks import check_unit

# --- shared machinery ----------------------------------------------------------------------


def _keras():
    from codabench_kit.backend import import_keras

    return import_keras()


def xla_compiled(function):
    """``function`` compiled by XLA on TensorFlow (a kernel that a graph-compiled
    augmenter calls where XLA is faster than the graph); as it is on the other backends
    (JAX compiles op by op, torch runs eagerly)."""
    if _keras().backend.backend() != "tensorflow":
        return function
    import tensorflow as tf

    return tf.function(function, jit_compile=True, autograph=False)


class Augmenter:
    """Base class: per-image ``probability``, ``magnitude`` in [0, 1], a seeded stream.

    Subclasses implement ``transform(images, labels)`` on the whole batch (tensors);
    ``__call__`` keeps the transformed version of a random subset of the images, clips
    to 0..255 and returns float32 tensors.
    """

    NAME = ""
    DESCRIPTION = ""
    FAMILIES: tuple[str, ...] | None = None
    """The corruption families of ``codabench_kit.evaluation.corruptions.FAMILIES`` that
    this augmenter simulates (``()``: none); ``None``: not declared."""
    KIND_FAMILIES: dict[str, str] | None = None
    """For an augmenter with a ``kinds`` option: each kind's family (instead of
    ``FAMILIES``), so a held-out family can be taken out of its kinds."""

    def __init__(self, seed=0, probability=1.0, magnitude=0.5):
        keras = _keras()
        self.seed = int(seed)
        self.probability = check_unit(self.NAME, "probability", probability)
        self.magnitude = check_unit(self.NAME, "magnitude", magnitude)
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

    COMPILE = "graph"
    """How the training pipeline runs it: ``"xla"``, ``"graph"`` (``tf.function``) or
    ``None`` (eagerly); see ``codabench_kit.training.compiled``. Every draw here comes
    from ``keras.random`` with the augmenter's own seed generator, so tracing is safe."""

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
                out_images = ops.where(per_image(pick), out_images, images)
                out_labels = ops.where(ops.reshape(pick, (-1, 1)), out_labels, labels)
            return out_images, out_labels
        if self.probability >= 1.0:
            return self._transform_clipped(images), labels
        pick = self.uniform((batch,)) < self.probability
        return on_subset(pick, self._transform_clipped, images, exact=True), labels

    def _transform_clipped(self, images):
        from keras import ops

        return ops.clip(ops.cast(self.transform_images(images), "float32"), 0.0, 255.0)

    def transform_images(self, images):  # pragma: no cover - abstract
        """The transformed images (float32 tensors, any range: the caller clips)."""
        raise NotImplementedError

    def transform(self, images, labels):  # pragma: no cover - abstract
        """For ``MIXES_BATCH`` augmenters: the transformed images and labels."""
        raise NotImplementedError


def on_subset(chosen, fn, images, *params, exact=False):
    """``fn(images[chosen], *(p[chosen] for p in params))`` written back into ``images``;
    the other images are returned as they are.

    Run eagerly, or traced into a plain TensorFlow graph (the training pipeline's
    ``COMPILE = "graph"``, where shapes may be known only at run time), only the chosen
    images are computed: a gather, the batched ``fn`` and a scatter, so the cost follows
    the subset's size. Under XLA (static shapes only) and on JAX (whose eager ops compile
    once per shape, so a varying subset size would recompile every batch) it computes
    ``fn`` on the whole batch and selects per image instead: the same result.
    """
    import numpy as np
    from keras import backend, ops

    from codabench_kit.training.compiled import dynamic_subsets

    if dynamic_subsets():
        return _on_subset_in_graph(chosen, fn, images, params)
    try:
        if backend.backend() == "jax":  # compiles per shape: a subset's size varies
            raise LookupError
        mask = np.asarray(ops.convert_to_numpy(chosen)).astype(bool).reshape(-1)
    except Exception:  # traced (no concrete mask), or JAX
        transformed = fn(images, *params)
        if exact:
            return ops.where(per_image(chosen), transformed, images)
        return select_per_image(chosen, transformed, images)
    if not mask.any():
        return images
    if mask.all():
        return fn(images, *params)
    rows = np.flatnonzero(mask).astype("int32")
    index = ops.convert_to_tensor(rows)
    out = fn(ops.take(images, index, axis=0), *(ops.take(p, index, axis=0) for p in params))
    return ops.scatter_update(images, ops.reshape(index, (-1, 1)), ops.cast(out, images.dtype))


def _on_subset_in_graph(chosen, fn, images, params):
    """``on_subset`` while tracing a plain TensorFlow graph: the subset's size is a run-time
    value; an empty subset skips ``fn`` (some ops reject an empty batch)."""
    import tensorflow as tf

    index = tf.reshape(tf.cast(tf.where(tf.reshape(chosen, [-1])), tf.int32), [-1, 1])

    def transformed():
        out = fn(tf.gather_nd(images, index), *(tf.gather_nd(p, index) for p in params))
        return tf.tensor_scatter_nd_update(images, index, tf.cast(out, images.dtype))

    return tf.cond(tf.size(index) > 0, transformed, lambda: images)


def per_image(values):
    from keras import ops

    return ops.reshape(values, (-1, 1, 1, 1))


def select_per_image(chosen, transformed, images):
    """Per image (chosen: (B,) bool), ``transformed`` where chosen, else ``images``.

    A 0/1 blend: exact for finite values and, on TensorFlow's CPU, 3x faster than
    ``ops.where`` with a broadcast mask."""
    from keras import ops

    weight = ops.reshape(ops.cast(chosen, "float32"), (-1, 1, 1, 1))
    return weight * transformed + (1.0 - weight) * images


