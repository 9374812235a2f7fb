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
``augmix``         AugMix: chains of random operations, mixed
``gridmask``       GridMask: a (rotated) grid of square holes
``erasing``        random erasing / cutout: ``count`` random rectangles
``cutmix``         CutMix: a box from another image of the batch; labels mixed by its area
``mixup``          MixUp: a blend with another image of the batch; labels mixed alike
``pixmix``         PixMix: blends generated fractal pictures in (additive or multiplicative)
=================  =========================================================================
"""

from codabench_kit.api import hookimpl
from codabench_kit.plugins.augmenters.geometry import Color, Flips, Geometric
from codabench_kit.plugins.augmenters.photometric import Corrupt, Noise
from codabench_kit.plugins.augmenters.policies import AugMix, RandAugment
from codabench_kit.plugins.augmenters.mixing import CutMix, Erasing, GridMask, MixUp
from codabench_kit.plugins.augmenters.pixmix import PixMix

AUGMENTERS = {cls.NAME: cls for cls in (Flips, AugMix, RandAugment, Geometric, Color, Noise,
                                        Corrupt, GridMask, Erasing, CutMix, MixUp, PixMix)}
"""Built-in augmenters by registered name (``flips`` and ``augmix`` first, the defaults)."""


@hookimpl
def register_augmenters(register):
    for name, cls in AUGMENTERS.items():
        register(name, cls, description=cls.DESCRIPTION)  # options: cls's signature
