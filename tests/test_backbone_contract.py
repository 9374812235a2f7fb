"""Every registered backbone keeps the same contract: float32 images 0..255 in, pooled
features out, its preprocessing inside the graph; it trains, exports as a SavedModel and
reloads from its weights file the way packaging does (weights=None, then load_weights)."""

import inspect

import numpy as np
import pytest

from codabench_kit.errors import BuildError
from codabench_kit.plugins import backbones as backbone_module
from conftest import installed_registry

BACKBONES = sorted(c.name for c in installed_registry().components("backbone"))
PRETRAINED_BUILT_INS = sorted(c.name for c in installed_registry().components("backbone")
                              if c.name != "cnn" and c.provider == "backbones")
NUM_CLASSES = 3


def keras():
    from codabench_kit.backend import import_keras

    return import_keras()


def minimum_side(name):
    return backbone_module.MIN_IMAGE_SIZE.get(name, backbone_module.DEFAULT_MIN_IMAGE_SIZE)


def tiny_shape(name):
    side = minimum_side(name)
    return (side, side, 3)


def tiny_options(registry, name, **overrides):
    """The registered defaults, with ``size`` 0 (no resizing) so the case stays small."""
    options = dict(registry.get(name, "backbone").options)
    if "size" in options:
        options["size"] = 0
    return {**options, **overrides}


@pytest.fixture
def build(registry):
    """``build(name, shape=None, **overrides)``: the backbone with :func:`tiny_options`,
    weights=None, on :func:`tiny_shape` images unless ``shape`` is given."""
    def build(name, shape=None, **overrides):
        component = registry.get(name, "backbone")
        return component.create(input_shape=shape or tiny_shape(name), weights=None,
                                **tiny_options(registry, name, **overrides))

    return build


def images(shape, n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype("float32")


def all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def application_of(backbone):
    """The keras.applications model nested in a backbone."""
    return next(layer for layer in backbone.layers if isinstance(layer, keras().Model))


def preprocessing_of(backbone):
    """The backbone's graph from its input to the tensor it feeds the application."""
    k = keras()
    index = backbone.layers.index(application_of(backbone))
    return k.Model(backbone.input, backbone.layers[index - 1].output)


def test_every_expected_family_is_registered(registry):
    assert set(BACKBONES) >= {"cnn", "mobilenet", "effnet", "efficientnet", "convnext",
                              "resnet", "vgg", "inception", "densenet"}
    for name in BACKBONES:
        component = registry.get(name, "backbone")
        assert component.description and "\n" not in component.description, name
        assert component.metadata["pretrained"] is (name != "cnn"), name


@pytest.mark.parametrize("name", BACKBONES)
def test_registered_options_are_the_factory_defaults(name, registry):
    """The registered defaults (which type ``--set``) are the factory's own, and every
    factory option is registered."""
    component = registry.get(name, "backbone")
    parameters = inspect.signature(component.factory).parameters
    assert list(parameters)[:2] == ["input_shape", "weights"]
    assert parameters["weights"].default is None
    assert set(parameters) - {"input_shape", "weights"} == set(component.options), name
    for key, default in component.options.items():
        assert parameters[key].default == default, (name, key)


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_contract(name, tmp_path, registry, build):
    """Build (default variant, weights=None, tiny input) -> classifier -> forward ->
    one training step -> SavedModel export and reload -> rebuild from the weights file."""
    k = keras()
    from codabench_kit.packaging.export import export_savedmodel, savedmodel_probabilities
    from codabench_kit.training.model import assemble_classifier

    shape = tiny_shape(name)
    backbone = build(name, shape)
    assert isinstance(backbone, k.Model)
    assert tuple(backbone.input_shape[1:]) == shape
    assert len(backbone.output_shape) == 2 and backbone.output_shape[1] > 0
    options = tiny_options(registry, name)
    member = options.get("variant", options.get("preset"))  # hub's member is its preset
    assert backbone.name == (f"{name}_{member}" if member else name)
    assert not any(type(layer).__name__ == "Lambda" for layer in all_layers(backbone))

    classifier = assemble_classifier(backbone, NUM_CLASSES)
    x = images(shape)
    probabilities = np.asarray(classifier(x, training=False))
    assert probabilities.shape == (len(x), NUM_CLASSES)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    # Eager: tracing the train step of the larger backbones takes 30 s each on 2 CPU
    # cores (with or without XLA); eagerly it is 1-2 s and checks the same gradients.
    classifier.compile(optimizer=k.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                       run_eagerly=True)
    before = [np.array(w) for w in classifier.trainable_weights]
    labels = np.eye(NUM_CLASSES, dtype="float32")[np.arange(len(x)) % NUM_CLASSES]
    loss = classifier.train_on_batch(x, labels)
    assert np.isfinite(loss)
    after = [np.array(w) for w in classifier.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))

    trained = np.asarray(classifier(x, training=False))
    artifact = tmp_path / "artifact"
    export_savedmodel(classifier, artifact)
    np.testing.assert_allclose(savedmodel_probabilities(artifact, x), trained, atol=1e-4)

    weights_file = tmp_path / "classifier.weights.h5"
    classifier.save_weights(str(weights_file))
    rebuilt = assemble_classifier(build(name, shape), NUM_CLASSES)
    rebuilt.load_weights(str(weights_file))
    np.testing.assert_allclose(np.asarray(rebuilt(x, training=False)), trained, atol=1e-5)


# Per family and variant: keras.applications' module whose preprocess_input the
# backbone's in-graph preprocessing must reproduce. For EfficientNet(V2), ConvNeXt and
# MobileNetV3 preprocess_input is the identity: the application normalises by itself.
PREPROCESSING = [
    ("mobilenet", "v2", "mobilenet_v2"),
    ("mobilenet", "v3small", "mobilenet_v3"),
    ("effnet", "b0", "efficientnet_v2"),
    ("efficientnet", "b0", "efficientnet"),
    ("convnext", "tiny", "convnext"),
    ("resnet", "50", "resnet50"),
    ("resnet", "50v2", "resnet_v2"),
    ("vgg", "16", "vgg16"),
    ("vgg", "19", "vgg19"),
    ("inception", "v3", "inception_v3"),
    ("densenet", "121", "densenet"),
]
SELF_NORMALISING = {"mobilenet_v3", "efficientnet_v2", "efficientnet", "convnext"}


def test_preprocessing_table_covers_every_pretrained_family():
    """The built-in families (hub's presets are tests/test_hub.py's)."""
    assert {family for family, _, _ in PREPROCESSING} == set(PRETRAINED_BUILT_INS)


@pytest.mark.parametrize("name,variant,module", PREPROCESSING,
                         ids=[f"{n}-{v}" for n, v, _ in PREPROCESSING])
def test_preprocessing_matches_keras_preprocess_input(name, variant, module, build):
    import importlib

    k = keras()
    shape = tiny_shape(name)
    backbone = build(name, shape, variant=variant)
    assert not any(isinstance(layer, k.layers.Resizing) for layer in backbone.layers)
    preprocessing = preprocessing_of(backbone)
    x = images(shape, seed=1)  # uint8 values as float32
    expected = importlib.import_module(f"keras.applications.{module}").preprocess_input(x.copy())
    actual = np.asarray(preprocessing(x))
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(actual - expected).max() / scale < 1e-3
    # What was measured is what the application is fed: the backbone is exactly
    # pooling(application(preprocessing(x))).
    pooled = k.layers.GlobalAveragePooling2D()(application_of(backbone)(actual))
    np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(pooled), rtol=1e-5, atol=1e-5)
    if module in SELF_NORMALISING:  # the application's own preprocessing is on
        first = [type(layer).__name__ for layer in application_of(backbone).layers[:3]]
        assert {"Rescaling", "Normalization"} & set(first), first
    else:
        assert not all(np.array_equal(a, b) for a, b in zip(actual, x))


def test_efficientnet_imagenet_weights_give_the_same_graph_and_preprocessing(
        tmp_path, monkeypatch, registry):
    """keras' EfficientNet (V1) adds a Rescaling only with weights="imagenet", and its
    ImageNet file stores the std where the variance belongs. The backbone builds the
    weights=None graph in every case (packaging rebuilds that one) and must still feed
    the stem ``(x / 255 - mean) / std``: with ImageNet weights, with keras' ImageNet file
    given as a path, and rebuilt from the trained weights file. The ImageNet file is
    simulated (no network): random weights with keras' normalisation statistics."""
    import h5py
    from keras.src.applications import efficientnet as keras_efficientnet
    from keras.src.legacy.saving import legacy_h5_format

    k = keras()
    shape = (32, 32, 3)
    fake = k.applications.EfficientNetB0(include_top=False, weights=None, input_shape=shape)
    normalization = next(layer for layer in fake.layers
                         if isinstance(layer, k.layers.Normalization))
    normalization.adapt_mean.assign([0.485, 0.456, 0.406])
    normalization.adapt_variance.assign([0.229, 0.224, 0.225])  # what keras' file holds
    imagenet_file = tmp_path / "efficientnetb0_notop.h5"
    with h5py.File(imagenet_file, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, fake)
    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file",
                        lambda *args, **kwargs: str(imagenet_file))

    x = images(shape, seed=2)
    expected = (x / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])

    def stem_input(application):
        stem = k.Model(application.input, application.get_layer("stem_conv_pad").output)
        return np.asarray(stem(x))[:, :32, :32]  # the pad adds a row and a column

    keras_imagenet = k.applications.EfficientNetB0(include_top=False, weights="imagenet",
                                                   input_shape=shape)
    np.testing.assert_allclose(stem_input(keras_imagenet), expected, atol=1e-4)

    factory = registry.get("efficientnet", "backbone").factory
    from_imagenet = factory(shape, weights="imagenet")
    from_path = factory(shape, weights=str(imagenet_file))
    graph = [type(layer).__name__ for layer in application_of(factory(shape)).layers]
    for backbone in (from_imagenet, from_path):
        assert [type(layer).__name__ for layer in application_of(backbone).layers] == graph
        np.testing.assert_allclose(stem_input(application_of(backbone)), expected, atol=1e-4)

    weights_file = tmp_path / "backbone.weights.h5"
    from_imagenet.save_weights(str(weights_file))
    rebuilt = factory(shape)
    rebuilt.load_weights(str(weights_file))
    np.testing.assert_allclose(stem_input(application_of(rebuilt)), expected, atol=1e-4)


def test_convnext_resizes_to_224_by_default(registry):
    k = keras()
    component = registry.get("convnext", "backbone")
    assert component.options["size"] == 224
    backbone = component.create(input_shape=(32, 32, 3), weights=None, **component.options)
    resizing = [layer for layer in backbone.layers if isinstance(layer, k.layers.Resizing)]
    assert len(resizing) == 1
    assert (resizing[0].height, resizing[0].width) == (224, 224)
    assert resizing[0].interpolation == "bilinear"
    assert tuple(application_of(backbone).input_shape[1:]) == (224, 224, 3)
    assert tuple(backbone.input_shape[1:]) == (32, 32, 3)


def test_size_resizes_only_when_it_differs_from_the_images(build):
    k = keras()
    resized = build("resnet", (32, 32, 3), size=48)
    assert [(layer.height, layer.width) for layer in resized.layers
            if isinstance(layer, k.layers.Resizing)] == [(48, 48)]
    assert np.asarray(resized(images((32, 32, 3), n=2))).shape == (2, 2048)
    same = build("resnet", (32, 32, 3), size=32)
    assert not any(isinstance(layer, k.layers.Resizing) for layer in same.layers)


@pytest.mark.parametrize("name", PRETRAINED_BUILT_INS)
def test_images_below_the_family_minimum_are_refused(name, registry, build):
    """The built-in pretrained families' minimum sizes (a third-party backbone, such as
    one from ``cbk new-plugin``, has its own)."""
    side = minimum_side(name) - 1
    with pytest.raises(BuildError, match=rf"{name} \(.*\) expected images of at least "
                                         rf"{side + 1}x{side + 1} pixels; received {side}x{side}"):
        build(name, (side, side, 3))
    if "size" in registry.get(name, "backbone").options:
        with pytest.raises(BuildError, match=rf"expected {name}.size >= {side + 1} .*; "
                                             rf"received {name}.size={side}"):
            build(name, (96, 96, 3), size=side)


def test_inception_error_says_how_to_resize(build):
    with pytest.raises(BuildError, match=r"expected images of at least 75x75 pixels; "
                                         r"received 32x32; --set inception.size=75"):
        build("inception", (32, 32, 3))
    assert build("inception", (32, 32, 3), size=75).output_shape == (None, 2048)


def test_a_bad_variant_names_the_valid_ones(build):
    from codabench_kit.errors import OptionError

    with pytest.raises(OptionError, match=r"resnet.variant expects one of 50, 50v2; "
                                          r"received '101'"):
        build("resnet", variant="101")
    assert build("vgg", variant=19).name == "vgg_19"  # a TOML integer is fine


def variants(name):
    return getattr(backbone_module, f"{name.upper()}_VARIANTS", ())


ALL_VARIANTS = [(name, variant) for name in PRETRAINED_BUILT_INS for variant in variants(name)]


def test_every_built_in_family_but_cnn_lists_its_variants(registry):
    """hub's members are presets (tests/test_hub.py builds each)."""
    assert {name for name, _ in ALL_VARIANTS} == set(PRETRAINED_BUILT_INS)
    for name in PRETRAINED_BUILT_INS:
        assert registry.get(name, "backbone").options["variant"] == variants(name)[0]


@pytest.mark.slow
@pytest.mark.parametrize("name,variant", ALL_VARIANTS, ids=[f"{n}-{v}" for n, v in ALL_VARIANTS])
def test_every_variant_builds_and_runs(name, variant, build):
    k = keras()
    shape = tiny_shape(name)
    backbone = build(name, shape, variant=variant)
    assert backbone.name == f"{name}_{variant}"
    features = np.asarray(backbone(images(shape, n=2)))
    assert features.ndim == 2 and features.shape[0] == 2 and np.isfinite(features).all()
    del backbone
    k.backend.clear_session()


def _exported_and_called(model, x, tmp_path):
    """The exported SavedModel's outputs on ``x`` in one batch and one image at a time,
    and the Keras model's."""
    from codabench_kit.packaging.export import export_savedmodel, savedmodel_probabilities

    artifact = tmp_path / "artifact"
    export_savedmodel(model, artifact)
    return (savedmodel_probabilities(artifact, x, batch_size=len(x)),
            savedmodel_probabilities(artifact, x, batch_size=1),
            np.asarray(model(x, training=False)))


def test_the_export_keeps_batchnorm_after_a_resize_in_inference_mode(tmp_path):
    """Traced without ``training``, ``keras.layers.Resizing`` leaks ``training=True`` to the
    layers after it (keras-team/keras-hub#2776): a BatchNormalization would normalise by
    the batch's own statistics. The export calls the model with ``training=False``."""
    k = keras()
    inputs = k.Input((20, 20, 3))
    norm = k.layers.BatchNormalization()
    model = k.Model(inputs, norm(k.layers.Resizing(28, 28)(inputs)))
    norm.moving_mean.assign(np.full(3, 100.0, "float32"))
    norm.moving_variance.assign(np.full(3, 400.0, "float32"))
    x = images((20, 20, 3), n=6)
    batched, one_by_one, called = _exported_and_called(model, x, tmp_path)
    np.testing.assert_allclose(batched, called, atol=1e-4)
    np.testing.assert_allclose(one_by_one, called, atol=1e-4)


def test_a_backbone_resized_inside_the_graph_exports_what_it_computes(tmp_path, build):
    """``size`` puts a Resizing before MobileNetV2's BatchNormalizations: the exported
    classifier gives the Keras model's probabilities, whatever the batch."""
    from codabench_kit.training.model import assemble_classifier

    shape = tiny_shape("mobilenet")
    classifier = assemble_classifier(build("mobilenet", shape, size=shape[0] + 16), NUM_CLASSES)
    assert any(type(layer).__name__ == "Resizing" for layer in all_layers(classifier))
    batched, one_by_one, called = _exported_and_called(classifier, images(shape, n=4), tmp_path)
    np.testing.assert_allclose(batched, called, atol=1e-4)
    np.testing.assert_allclose(one_by_one, called, atol=1e-4)
