"""Every registered augmenter, on a real batch: shape, dtype, range, labels, seeding,
per-image probability, label mixing, options; and none of them inside the model."""

import inspect

import numpy as np
import pytest

from codabench_kit.errors import OptionError
from codabench_kit.components.selection import parse_set, select
from conftest import installed_registry, run_augmenter

AUGMENTERS = [c.name for c in installed_registry().components("augmenter")]
NUM_CLASSES = 8


def needs_extra(registry, name):
    return registry.get(name).metadata.get("requires") == "keras-cv"


@pytest.fixture(scope="module")
def batch():
    """32 demo cells (float32 0..255, all 8 classes) with one-hot labels."""
    from codabench_kit.data.demo import demo_dataset

    data = demo_dataset(seed=0, per_class=4)
    images = data.images[:32].astype("float32")
    labels = np.eye(NUM_CLASSES, dtype="float32")[data.labels[:32]]
    return images, labels


def test_the_expected_augmenters_are_registered(registry):
    expected = {"randaugment", "augmix", "cutmix", "mixup", "gridmask", "erasing", "flips",
                "geometric", "color", "noise", "corrupt", "pixmix",
                "kerascv-randaugment", "kerascv-augmix", "kerascv-gridmask"}
    assert expected <= set(AUGMENTERS)
    for name in AUGMENTERS:
        options = registry.get(name).options
        assert "probability" in options and 0.0 <= options["magnitude"] <= 1.0, name


@pytest.mark.parametrize("name", AUGMENTERS)
def test_registered_options_match_the_factory(name, registry):
    """The registered defaults (which type ``--set``) are the factory's own defaults."""
    component = registry.get(name)
    parameters = inspect.signature(component.factory).parameters
    assert "seed" in parameters
    for key, default in component.options.items():
        own = parameters[key].default
        assert (list(own) if isinstance(own, tuple) else own) == default, (name, key)


@pytest.mark.parametrize("name", AUGMENTERS)
def test_shape_dtype_range_and_labels_kept(name, batch, build):
    images, labels = batch
    out_images, out_labels = run_augmenter(build(name, probability=1.0), images, labels)
    assert out_images.shape == images.shape and out_images.dtype == np.float32
    assert out_labels.shape == labels.shape and out_labels.dtype == np.float32
    assert np.isfinite(out_images).all()
    assert out_images.min() >= 0.0 and out_images.max() <= 255.0
    assert out_labels.min() >= 0.0
    np.testing.assert_allclose(out_labels.sum(axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(out_images, images), f"{name} at probability 1 changed nothing"


@pytest.mark.parametrize("name", AUGMENTERS)
def test_same_seed_same_output_other_seed_differs(name, batch, build):
    images, labels = batch
    first, again, other = build(name, seed=5), build(name, seed=5), build(name, seed=6)
    differs = False
    for step in range(2):  # the same sequence of batches
        x = images if step == 0 else images[::-1].copy()
        a, b, c = run_augmenter(first, x, labels), run_augmenter(again, x, labels), run_augmenter(other, x, labels)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        differs = differs or not np.array_equal(a[0], c[0])
    assert differs, f"{name}: seeds 5 and 6 gave identical outputs"


@pytest.mark.parametrize("name", AUGMENTERS)
def test_probability_zero_leaves_the_batch_unchanged(name, batch, build):
    images, labels = batch
    out_images, out_labels = run_augmenter(build(name, probability=0.0), images, labels)
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


@pytest.mark.parametrize("name", AUGMENTERS)
def test_probability_picks_images_not_batches(name, batch, build):
    """probability 0.5: a random subset of the batch is transformed, the rest untouched."""
    images, labels = batch
    out_images, out_labels = run_augmenter(build(name, seed=1, probability=0.5), images, labels)
    changed = np.any(out_images != images, axis=(1, 2, 3))
    assert 0 < changed.sum() < len(images), (name, changed.sum())
    np.testing.assert_array_equal(out_labels[~changed], labels[~changed])


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_labels_mixed_in_proportion(name, build):
    """Black (class 0) and white (class 1) images: after mixing, each image's mean
    brightness is the share of the white image, which must be its class-1 weight
    (MixUp's lambda; CutMix's pasted area)."""
    n = 32
    white = np.arange(n) % 2 == 1
    images = np.where(white[:, None, None, None], 255.0, 0.0) * np.ones((n, 48, 40, 3))
    labels = np.eye(2, dtype="float32")[white.astype(int)]
    out_images, out_labels = run_augmenter(build(name, seed=3, probability=1.0), images.astype("float32"),
                                 labels)
    np.testing.assert_allclose(out_images.mean(axis=(1, 2, 3)) / 255.0, out_labels[:, 1],
                               atol=1e-5)
    mixed = (out_labels[:, 1] > 0.01) & (out_labels[:, 1] < 0.99)
    assert mixed.sum() >= n // 4
    if name == "cutmix":  # pixels are either image's, never blended
        assert set(np.unique(out_images)) <= {0.0, 255.0}


def test_flips_are_symmetries_of_the_square(batch, build):
    images, labels = batch
    out, _ = run_augmenter(build("flips", probability=1.0), images, labels)
    for source, result in zip(images, out):
        views = [np.rot90(source, k) for k in range(4)]
        views += [v[:, ::-1] for v in views]
        matches = [np.array_equal(result, v) for v in views]
        assert any(matches) and not matches[0]


@pytest.mark.parametrize("kind", ["deposits", "bubbles", "defocus", "motion", "pixelate",
                                  "brightness", "contrast"])
def test_each_corruption_changes_images(kind, batch, build):
    images, labels = batch
    out, _ = run_augmenter(build("corrupt", probability=1.0, severity=3, kinds=[kind]), images[:8],
                 labels[:8])
    assert np.all(np.any(out != images[:8], axis=(1, 2, 3))), kind
    assert 0.0 <= out.min() and out.max() <= 255.0


def test_options_typed_from_the_command_line(registry):
    settings = parse_set(["corrupt.severity=4", "corrupt.kinds=bubbles,deposits",
                          "geometric.zoom=true", "cutmix.magnitude=0.5", "flips.probability=1"])
    selection = select(registry, ["cnn", "corrupt", "geometric", "cutmix", "flips"], settings)
    assert selection.options_for("corrupt")["severity"] == 4
    assert selection.options_for("corrupt")["kinds"] == ["bubbles", "deposits"]
    assert selection.options_for("geometric")["zoom"] is True
    assert selection.options_for("cutmix")["magnitude"] == 0.5
    assert selection.options_for("flips")["probability"] == 1.0
    for component in selection.of("augmenter"):  # they build with the typed options
        component.create(seed=0, **selection.options_for(component.name))


@pytest.mark.parametrize("name, options, message", [
    ("color", {"magnitude": 1.5}, "color.magnitude expects a number in [0, 1]"),
    ("flips", {"probability": -0.1}, "flips.probability expects a number in [0, 1]"),
    ("corrupt", {"severity": 6}, "corrupt.severity must be 0"),
    ("corrupt", {"kinds": ["bubble"]}, "corrupt.kinds expects one of"),
    ("gridmask", {"fill": "grey"}, "gridmask.fill expects one of"),
    ("geometric", {"fill_mode": "edge"}, "geometric.fill_mode expects one of"),
])
def test_bad_options_are_rejected(name, options, message, build):
    with pytest.raises(OptionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build(name, **options)


def test_chained_in_the_training_pipeline(batch, registry, build):
    """All built-ins composed in order, as the build runs them, on numpy batches."""
    from codabench_kit.training.batches import TrainingBatches

    images, labels = batch
    augmenters = [build(name, seed=i) for i, name in enumerate(AUGMENTERS)
                  if not needs_extra(registry, name)]
    batches = TrainingBatches(images.astype("uint8"), labels.argmax(1), NUM_CLASSES,
                              batch_size=16, augmenters=augmenters, seed=0)
    x, y = batches[0]
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (16, 96, 96, 3)
    assert 0.0 <= x.min() and x.max() <= 255.0
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)


def test_off_at_inference(batch, registry, build):
    """The exported model (backbone + head + TTA) holds no augmentation layer, and
    predicts the same twice, after the augmenters have run."""
    import keras

    from codabench_kit.training.model import assemble_classifier, inference_model

    images, labels = batch
    for name in AUGMENTERS:
        run_augmenter(build(name, probability=1.0), images[:4], labels[:4])
    backbone = registry.get("cnn").create(input_shape=(96, 96, 3), weights=None, width=8,
                                          blocks=1, norm="batch")
    classifier = assemble_classifier(backbone, NUM_CLASSES)
    tta = registry.get("flip-tta").create(**registry.get("flip-tta").options)
    model = inference_model(classifier, tta)

    augmenting = tuple(getattr(keras.layers, n) for n in dir(keras.layers)
                       if n.startswith("Random") or n in {
                           "AugMix", "RandAugment", "CutMix", "MixUp", "Solarization",
                           "AutoContrast", "Equalization", "GaussianNoise",
                           "GaussianDropout", "Pipeline"})

    def layers(m):
        for layer in m.layers:
            yield layer
            if hasattr(layer, "layers"):
                yield from layers(layer)

    found = [layer.name for layer in layers(model) if isinstance(layer, augmenting)
             or type(layer).__module__.startswith("codabench_kit.plugins")]
    assert not found
    first = model.predict(images[:8], verbose=0)
    second = model.predict(images[:8], verbose=0)
    np.testing.assert_array_equal(first, second)
