"""Checks on the real blood-cell data and ImageNet weights in ../shared.

They skip, saying why, where ../shared is absent (a user's machine, a fresh clone).
"""

import numpy as np
import pytest

from conftest import shared_file

pytestmark = pytest.mark.shared


def test_dev_file_loads_in_the_an2dl_layout():
    from codabench_kit.data import load_dataset

    data = load_dataset(shared_file("data/pbc96_dev_5000.npz"))
    assert data.images.shape == (5000, 96, 96, 3) and data.images.dtype == np.uint8
    assert data.class_counts().tolist() == [343, 926, 445, 858, 342, 405, 991, 690]
    assert data.class_names[0].lower() == "basophil"


def test_mobilenet_loads_the_imagenet_weights_file():
    from codabench_kit.components.plugin_manager import get_plugin_manager
    from codabench_kit.components.registry import Registry
    from codabench_kit.training.weights import normalize_weights

    weights = normalize_weights(str(shared_file("weights/mobilenet_v2_imagenet_notop.weights.h5")))
    registry = Registry.from_plugin_manager(get_plugin_manager())
    mobilenet = registry.get("mobilenet", "backbone")
    pretrained = mobilenet.create(input_shape=(96, 96, 3), weights=weights)
    random = mobilenet.create(input_shape=(96, 96, 3), weights=None)
    images = np.asarray(load_mini_images(), dtype="float32")
    features = np.asarray(pretrained(images, training=False))
    assert features.shape == (len(images), 1280)
    assert not np.allclose(features, np.asarray(random(images, training=False)))


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_a_weights_file_for_another_backbone_is_a_clear_error():
    from codabench_kit.errors import BuildError
    from codabench_kit.components.plugin_manager import get_plugin_manager
    from codabench_kit.components.registry import Registry

    weights = str(shared_file("weights/mobilenet_v2_imagenet_notop.weights.h5"))
    registry = Registry.from_plugin_manager(get_plugin_manager())
    with pytest.raises(BuildError, match="does not fit backbone effnet"):
        registry.get("effnet").create(input_shape=(96, 96, 3), weights=weights)


def load_mini_images(n=8):
    with np.load(shared_file("data/pbc96_mini_800.npz")) as data:
        return data["images"][:n]
