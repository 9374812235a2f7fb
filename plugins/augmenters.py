"""Built-in augmenters: ``flips`` (the 8 symmetries of the square) and ``augmix``.

An augmenter is a callable on a batch, ``(images, labels) -> (images, labels)``, with
images float32 in 0..255. Built from ``keras.ops`` and Keras layers, so it runs on any
Keras backend; it is used in the training input pipeline only.
"""

from codabench_kit import hookimpl


@hookimpl
def register_augmenters(register):
    register("flips", Flips, description="Random horizontal/vertical flips and 90-degree "
             "transposes (cells have no orientation).", options={"probability": 0.5})
    register("augmix", AugMix, description="AugMix (Hendrycks et al.) via keras.layers.AugMix.",
             options={"severity": 0.3, "num_chains": 3, "alpha": 1.0})


class Flips:
    """Each of horizontal flip, vertical flip and transpose applied with ``probability``."""

    def __init__(self, seed=0, probability=0.5):
        import keras

        self.probability = probability
        self.seed_generator = keras.random.SeedGenerator(seed)

    def __call__(self, images, labels):
        from keras import ops, random

        images = ops.convert_to_tensor(images, dtype="float32")
        batch = ops.shape(images)[0]
        for transform in (lambda x: ops.flip(x, axis=2), lambda x: ops.flip(x, axis=1),
                          lambda x: ops.transpose(x, (0, 2, 1, 3))):
            pick = random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < self.probability
            images = ops.where(pick, transform(images), images)
        return images, labels


class AugMix:
    def __init__(self, seed=0, severity=0.3, num_chains=3, alpha=1.0):
        import keras

        self.layer = keras.layers.AugMix(value_range=(0, 255), num_chains=num_chains,
                                         factor=severity, alpha=alpha, seed=seed)

    def __call__(self, images, labels):
        return self.layer(images, training=True), labels
