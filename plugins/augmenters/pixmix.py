"""``pixmix``: PixMix (Hendrycks et al., CVPR 2022), mixing with generated pictures.

PixMix mixes each training image, in a few rounds, with structurally complex pictures
that are not of the task (fractals in the paper), by an additive or a multiplicative
blend. On CIFAR and ImageNet the paper measured it to lift robustness to corruptions the
model never trained on without hurting clean accuracy; on the AN2DL dev data it did not
lift the held-out family and cost clean accuracy (README, "Robustness to corruptions it
never trained on"), so it is not a default. cbk has no picture dataset to draw from, so
the pictures are generated per image: fractal ("1/f") noise, a sum of random grids of
:data:`OCTAVES` pixels, bilinearly upsampled, the octave of side s weighted by
(4 / s) ** e with e random in [0, 2] per picture (0: rough, 2: smooth).

It simulates none of the corruption families of
``codabench_kit.evaluation.corruptions`` (``FAMILIES = ()``): the pictures are
image-wide textures, not a kind of noise, blur, compression, stain, overlay or
symmetry. The ``uneven_light`` corruption is the nearest: a multiplicative blend with a
smooth picture also changes the brightness across the image.
"""

from __future__ import annotations

from codabench_kit.api import Augmenter, check_int, check_positive
from codabench_kit.training.augmenter import per_image

OCTAVES = (4, 8, 16, 32)
"""Side of each random grid of a picture, in pixels before upsampling."""


class PixMix(Augmenter):
    """PixMix with generated fractal pictures.

    Per chosen image, ``rounds`` random in 1..``k``; each round blends a new picture in,
    additively (``a x + b p`` on [-1, 1]) or multiplicatively (``(2x)^a (2p)^b / 2`` on
    [0, 1]) with even odds. As in the paper, ``(a, b)`` is ``(Beta(beta, 1),
    Beta(1, beta))`` or ``(1 + Beta(1, beta), -Beta(1, beta))`` with even odds: a larger
    ``beta`` keeps more of the image (``a`` nearer 1, ``b`` nearer 0). ``magnitude``
    scales the picture's share: ``b`` is multiplied by ``2 * magnitude`` (0.5: the
    paper's mixing). Pictures are in colour or grey with even odds.
    """

    NAME = "pixmix"
    FAMILIES = ()
    DESCRIPTION = ("PixMix: blends generated fractal pictures in, k rounds at most, additive or "
                   "multiplicative; a larger beta mixes less in.")
    COMPILE = "graph"  # XLA on CPU: 25x slower (its bilinear resize)

    def __init__(self, seed=0, probability=0.5, magnitude=0.5, k=4, beta=3.0):
        super().__init__(seed, probability, magnitude)
        self.k = check_int(self.NAME, "k", k, low=1)
        self.beta = check_positive(self.NAME, "beta", beta)

    def pictures(self, batch, height, width):
        """(B, H, W, 3) fractal pictures in [0, 1], one per image."""
        from keras import ops, random

        exponent = per_image(self.uniform((batch,), 0.0, 2.0))
        fine = (OCTAVES[-1], OCTAVES[-1])
        picture = 0.0
        for side in OCTAVES:  # summed at the finest octave's size, then upsampled once
            grid = random.normal((batch, side, side, 3), seed=self.seed_generator)
            if side != OCTAVES[-1]:
                grid = ops.image.resize(grid, fine, interpolation="bilinear")
            picture = picture + grid * ops.power(OCTAVES[0] / side, exponent)  # coarse weigh most
        picture = ops.image.resize(picture, (height, width), interpolation="bilinear")
        grey = ops.mean(picture, axis=-1, keepdims=True)
        picture = ops.where(per_image(self.uniform((batch,)) < 0.5), grey, picture)
        low = ops.min(picture, axis=(1, 2, 3), keepdims=True)
        high = ops.max(picture, axis=(1, 2, 3), keepdims=True)
        return (picture - low) / ops.maximum(high - low, 1e-6)

    def weights(self, batch):
        """Per image ``(a, b)`` of one blend, as (B, 1, 1, 1) tensors."""
        from keras import ops

        # U ** (1 / beta) ~ Beta(beta, 1); 1 - U ** (1 / beta) ~ Beta(1, beta)
        up = ops.power(self.uniform((batch,), 1e-6, 1.0), 1.0 / self.beta)
        down = 1.0 - ops.power(self.uniform((batch,), 1e-6, 1.0), 1.0 / self.beta)
        second = self.uniform((batch,)) < 0.5
        a = ops.where(second, 1.0 + down, up)
        b = ops.where(second, -down, down) * 2.0 * self.magnitude
        return per_image(a), per_image(b)

    def transform_images(self, images):
        from keras import ops

        batch, height, width, _ = ops.shape(images)
        mixed = images / 255.0
        rounds = self.randint((batch,), 1, self.k + 1)
        for round_ in range(self.k):
            picture = self.pictures(batch, height, width)
            a, b = self.weights(batch)
            added = (a * (2.0 * mixed - 1.0) + b * (2.0 * picture - 1.0) + 1.0) / 2.0
            multiplied = (ops.power(2.0 * mixed, a)
                          * ops.power(ops.maximum(2.0 * picture, 1e-6), b)) / 2.0
            blend = ops.where(per_image(self.uniform((batch,)) < 0.5), added, multiplied)
            blend = ops.clip(blend, 0.0, 1.0)
            mixed = ops.where(per_image(rounds > round_), blend, mixed)
        return mixed * 255.0
