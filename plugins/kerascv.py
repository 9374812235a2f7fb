"""Optional augmenters from KerasCV: ``kerascv-randaugment``, ``kerascv-augmix``,
``kerascv-gridmask``.

They need the optional extra (``pip install 'codabench-kit[kerascv]'``). The components
are always listed, with ``requires="keras-cv"`` in their metadata, and this module never
imports keras_cv at import time; building one without the extra raises a
:class:`~codabench_kit.errors.BuildError` saying what to install.

Like the built-ins they take ``probability`` (per image: a random subset of each batch
is transformed) and ``magnitude`` in [0, 1], mapped per layer below. The built-in
``randaugment``, ``augmix`` and ``gridmask`` (keras.ops, any Keras backend) are the
usual choice; these are for comparing against the KerasCV implementations. KerasCV's
layers compute with TensorFlow: these need the TensorFlow backend, and reseed
TensorFlow's global random stream before each batch (for determinism); so the training
pipeline runs them eagerly, not compiled (``codabench_kit.training.compiled``).
"""

from __future__ import annotations

import random

from codabench_kit.api import BuildError, hookimpl

EXTRA = "pip install 'codabench-kit[kerascv]'"


@hookimpl
def register_augmenters(register):
    register("kerascv-randaugment", make_randaugment, requires="keras-cv",
             FAMILIES=("color", "geometry"),
             description="keras_cv.layers.RandAugment (needs the kerascv extra). magnitude: "
                         "the layer's magnitude (its standard deviation 0.15).")
    register("kerascv-augmix", make_augmix, requires="keras-cv",
             FAMILIES=("color", "geometry"),
             description="keras_cv.layers.AugMix (needs the kerascv extra). magnitude: the "
                         "layer's severity.")
    register("kerascv-gridmask", make_gridmask, requires="keras-cv",
             FAMILIES=("microscopy",),
             description="keras_cv.layers.GridMask (needs the kerascv extra). magnitude: the "
                         "largest hole ratio of the grid's period.")


def _keras_cv(name):
    try:
        import keras_cv
    except ImportError as exc:
        raise BuildError(f"{name} needs the optional extra: {EXTRA}") from exc
    return keras_cv


def _layer_augmenter(name, layer_fn):
    from codabench_kit.api import Augmenter

    class KerasCVLayer(Augmenter):
        NAME = name
        COMPILE = None
        """Runs eagerly in the training pipeline: each call reseeds TensorFlow's and
        Python's global streams (Python-side state, which a traced graph would freeze at
        trace time), and KerasCV's layers rely on AutoGraph, which compiled augmenters
        trace without (AugMix's Equalization fails to trace)."""

        def __init__(self, seed, probability, magnitude):
            super().__init__(seed, probability, magnitude)
            self.layer = layer_fn(self.magnitude, self.seed)
            self._seeds = random.Random(self.seed)

        def transform_images(self, images):
            # Some KerasCV layers draw from TensorFlow's global stream (AugMix's
            # tf.random.gamma) and Python's: seed both from this augmenter's stream per
            # call, so that the same seed gives the same output.
            import tensorflow as tf

            tf.random.set_seed(self._seeds.getrandbits(31))
            state = random.getstate()
            random.seed(self._seeds.getrandbits(64))
            try:
                return self.layer(images, training=True)
            finally:
                random.setstate(state)

    return KerasCVLayer


def make_randaugment(seed=0, probability=1.0, magnitude=0.5, num_ops=2):
    """``magnitude`` is RandAugment's (0: none, 1: the strongest), drawn per operation
    with a standard deviation of 0.15."""
    keras_cv = _keras_cv("kerascv-randaugment")

    def layer(m, s):
        return keras_cv.layers.RandAugment(value_range=(0, 255),
                                           augmentations_per_image=int(num_ops),
                                           magnitude=m, magnitude_stddev=0.15, seed=s)

    return _layer_augmenter("kerascv-randaugment", layer)(seed, probability, magnitude)


def make_augmix(seed=0, probability=1.0, magnitude=0.3, num_chains=3, alpha=1.0):
    """``magnitude`` is AugMix's ``severity`` (each operation's strength)."""
    keras_cv = _keras_cv("kerascv-augmix")

    def layer(m, s):
        return keras_cv.layers.AugMix(value_range=(0, 255), severity=max(m, 1e-3),
                                      num_chains=int(num_chains), alpha=float(alpha), seed=s)

    return _layer_augmenter("kerascv-augmix", layer)(seed, probability, magnitude)


def make_gridmask(seed=0, probability=0.5, magnitude=0.5, rotate=True):
    """``magnitude`` is the largest hole ratio (``ratio_factor=(0, magnitude)``); holes are
    filled with black, as in the paper; ``rotate`` turns the grid by up to +-54 deg."""
    keras_cv = _keras_cv("kerascv-gridmask")

    def layer(m, s):
        return keras_cv.layers.GridMask(ratio_factor=(0.0, m),
                                        rotation_factor=0.15 if rotate else 0.0,
                                        fill_mode="constant", fill_value=0.0, seed=s)

    return _layer_augmenter("kerascv-gridmask", layer)(seed, probability, magnitude)
