import numpy as np
import pytest

AN2DL_IMAGES = 13_759
"""Images in the AN2DL training file."""


@pytest.fixture(scope="session")
def an2dl_sized():
    """(images, labels) at AN2DL size, drawn from the demo data, mostly distinct pictures."""
    from codabench_kit.data import demo_dataset

    demo = demo_dataset(seed=0, per_class=200)
    rows = np.random.default_rng(0).integers(0, len(demo.labels), AN2DL_IMAGES)
    images = demo.images[rows].copy()
    images[:, 0, 0, 0] = np.arange(AN2DL_IMAGES) % 256
    return images, demo.labels[rows]
