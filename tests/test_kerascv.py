"""The kerascv-* augmenters (KerasCV layers; keras-cv is a dependency of the test extra),
end to end: built from the registry, run on a batch, and one training step on a batch
from the training input pipeline. With keras_cv unimportable, building one says what to
install."""

import sys

import numpy as np
import pytest

from codabench_kit.errors import BuildError
from conftest import run_augmenter

KERAS_CV_AUGMENTERS = ["kerascv-randaugment", "kerascv-augmix", "kerascv-gridmask"]
NUM_CLASSES = 4
BATCH = 8
SIZE = 96


@pytest.fixture(scope="module")
def batch():
    """``BATCH`` demo cells, float32 (B, 96, 96, 3) in 0..255, with one-hot labels."""
    from codabench_kit.data.demo import demo_dataset

    data = demo_dataset(seed=0, per_class=1, image_size=SIZE)
    images = data.images[:BATCH].astype("float32")
    labels = np.eye(NUM_CLASSES, dtype="float32")[data.labels[:BATCH] % NUM_CLASSES]
    return images, labels


def test_all_three_are_registered_as_needing_keras_cv(registry):
    found = {c.name: c.metadata for c in registry.components("augmenter")
             if c.name.startswith("kerascv-")}
    assert {name: metadata["requires"] for name, metadata in found.items()} == {
        name: "keras-cv" for name in KERAS_CV_AUGMENTERS}
    # and the corruption families each simulates (what a build then holds out)
    assert {name: metadata["FAMILIES"] for name, metadata in found.items()} == {
        "kerascv-randaugment": ("color", "geometry"), "kerascv-augmix": ("color", "geometry"),
        "kerascv-gridmask": ("microscopy",)}


@pytest.mark.parametrize("name", KERAS_CV_AUGMENTERS)
def test_builds_an_augmenter(name, build):
    from codabench_kit.api import Augmenter

    augmenter = build(name)
    assert isinstance(augmenter, Augmenter), (
        f"{name}: expected an Augmenter, received {type(augmenter).__mro__}")
    assert augmenter.NAME == name


@pytest.mark.parametrize("name", KERAS_CV_AUGMENTERS)
def test_augments_a_batch(name, build, batch):
    """probability 1: same shape and dtype, values in 0..255, labels kept, and every image
    changed."""
    images, labels = batch
    out_images, out_labels = run_augmenter(build(name, probability=1.0), images, labels)
    assert out_images.shape == images.shape and out_images.dtype == np.float32, (
        f"{name}: expected float32 {images.shape}, received {out_images.dtype} "
        f"{out_images.shape}")
    assert np.isfinite(out_images).all(), f"{name}: non-finite values"
    assert 0.0 <= out_images.min() and out_images.max() <= 255.0, (
        f"{name}: expected values in 0..255, received {out_images.min()}..{out_images.max()}")
    np.testing.assert_array_equal(out_labels, labels)
    changed = np.any(out_images != images, axis=(1, 2, 3))
    assert changed.all(), f"{name} at probability 1 left images {np.flatnonzero(~changed)} as they were"


@pytest.mark.parametrize("name", KERAS_CV_AUGMENTERS)
def test_probability_zero_leaves_the_batch_unchanged(name, build, batch):
    images, labels = batch
    out_images, out_labels = run_augmenter(build(name, probability=0.0), images, labels)
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("name", KERAS_CV_AUGMENTERS)
def test_same_seed_same_output(name, build, batch):
    """Two augmenters with seed 5, called in turn on the same two batches, give the same
    outputs; seed 6 gives others."""
    images, labels = batch[0][:4], batch[1][:4]
    first, again, other = (build(name, seed=5, probability=1.0),
                           build(name, seed=5, probability=1.0),
                           build(name, seed=6, probability=1.0))
    differs = False
    for x in (images, images[::-1].copy()):
        a, b, c = run_augmenter(first, x, labels), run_augmenter(again, x, labels), run_augmenter(other, x, labels)
        np.testing.assert_array_equal(a[0], b[0], err_msg=f"{name}: seed 5 twice differs")
        differs = differs or not np.array_equal(a[0], c[0])
    assert differs, f"{name}: seeds 5 and 6 gave identical outputs"


def tiny_model():
    """A few hundred weights: a strided convolution, pooling and a softmax."""
    import keras

    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 3)),
        keras.layers.Rescaling(1.0 / 255.0),
        keras.layers.Conv2D(4, 3, strides=4, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(NUM_CLASSES, activation="softmax"),
    ])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


@pytest.mark.parametrize("name", KERAS_CV_AUGMENTERS)
def test_trains_one_step_through_the_training_pipeline(name, build, batch):
    """TrainingBatches with the augmenter: its batch is augmented (one batch holds every
    image, in order), and a model fits one step on it with a finite loss."""
    from codabench_kit.training.batches import TrainingBatches

    images, labels = batch
    batches = TrainingBatches(images.astype("uint8"), labels.argmax(1), NUM_CLASSES,
                              batch_size=len(images), augmenters=[build(name)], seed=0)
    assert len(batches) == 1
    x, y = batches[0]
    assert x.shape == images.shape and x.dtype == np.float32, (
        f"{name}: expected float32 {images.shape}, received {x.dtype} {x.shape}")
    assert 0.0 <= x.min() and x.max() <= 255.0
    np.testing.assert_array_equal(y, labels)
    assert not np.array_equal(x, images.astype("uint8").astype("float32")), (
        f"{name}: the training pipeline's batch is not augmented")
    history = tiny_model().fit(batches, epochs=1, verbose=0)
    loss = history.history["loss"]
    assert len(loss) == 1 and np.isfinite(loss[0]), f"{name}: expected a finite loss, received {loss}"


@pytest.mark.parametrize("name", KERAS_CV_AUGMENTERS)
def test_without_keras_cv_building_says_what_to_install(name, registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_cv", None)  # `import keras_cv` raises ImportError
    component = registry.get(name, "augmenter")
    with pytest.raises(BuildError, match=rf"{name} needs the optional extra: "
                                         r"pip install 'codabench-kit\[kerascv\]'"):
        component.create(seed=0, **component.options)
