"""The ``hub`` backbone (KerasHub presets; keras-hub is installed beside the test extra,
without its dependencies: README, plugins/hub.py): every preset of its table builds offline, the table is the
architecture keras-hub's own timm converters give each preset, --weights imagenet
copies a preset's weights in (the download is simulated: no network here), the option
and install errors, and a build -> zip -> validate end to end."""

import json
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.errors import BuildError, OptionError
from codabench_kit.plugins import hub

FEATURES = {
    "resnet_18_imagenet": 512,
    "resnet_50_imagenet": 2048,
    "resnet_v2_50_imagenet": 2048,
    "efficientnet_b0_ra_imagenet": 1280,
    "mobilenet_v3_small_100_imagenet": 576,
    "csp_darknet_53_ra_imagenet": 1024,
    "densenet_121_imagenet": 1024,
    "vgg_16_imagenet": 512,
}
"""Each preset's pooled feature width."""

TIMM = {
    "resnet_18_imagenet": ("convert_resnet", "resnet18"),
    "resnet_50_imagenet": ("convert_resnet", "resnet50"),
    "resnet_v2_50_imagenet": ("convert_resnet", "resnetv2_50"),
    "efficientnet_b0_ra_imagenet": ("convert_efficientnet", "efficientnet_b0"),
    "mobilenet_v3_small_100_imagenet": ("convert_mobilenet", "mobilenetv3_small_100"),
    "csp_darknet_53_ra_imagenet": ("convert_cspnet", "cspdarknet53"),
    "densenet_121_imagenet": ("convert_densenet", "densenet121"),
    "vgg_16_imagenet": ("convert_vgg", "vgg16"),
}
"""Each preset's keras-hub timm converter and the timm architecture it was converted
from (keras-hub's tools/checkpoint_conversion/convert_*_checkpoints.py, PRESET_MAP)."""

SMALL = "mobilenet_v3_small_100_imagenet"
SHAPE = (96, 96, 3)


@pytest.fixture(scope="module")
def keras_hub():
    """keras_hub; the test fails (not skips) where it is missing: the README's test setup
    installs it."""
    try:
        import keras_hub
    except ImportError as exc:
        pytest.fail(f"the hub backbone's tests need keras-hub; install it with: pip install -e "
                    f"'.[test]' && pip install --no-deps '{hub.KERAS_HUB}' (import keras_hub "
                    f"raised {type(exc).__name__}: {exc})", pytrace=False)
    return keras_hub


@pytest.fixture
def build(registry, keras_hub):
    """``build(shape=SHAPE, **options)``: the hub backbone, weights=None unless given."""
    def build(shape=SHAPE, weights=None, **options):
        component = registry.get("hub", "backbone")
        return component.create(input_shape=shape, weights=weights,
                                **{**component.options, **options})

    return build


def images(shape=SHAPE, n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype("float32")


def base_of(backbone):
    """The keras-hub backbone nested in a hub backbone."""
    import keras

    return next(layer for layer in backbone.layers if isinstance(layer, keras.Model))


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_registered_as_a_pretrained_backbone_that_needs_keras_hub(registry):
    component = registry.get("hub", "backbone")
    assert component.provider == "hub"
    assert component.metadata == {"pretrained": True, "requires": "keras-hub"}
    assert component.options == {"preset": "resnet_50_imagenet", "size": 0}
    assert set(FEATURES) == set(hub.PRESETS)


def test_ten_backbone_families_or_more(registry):
    assert len(registry.components("backbone")) >= 10


def test_the_installed_keras_hub_is_the_one_install_names(keras_hub):
    from packaging.specifiers import SpecifierSet

    assert keras_hub.__version__ in SpecifierSet(hub.KERAS_HUB.removeprefix("keras-hub")), (
        f"keras-hub {keras_hub.__version__} is installed; plugins/hub.py's table was checked "
        f"against {hub.KERAS_HUB}")


@pytest.mark.parametrize("preset", sorted(hub.PRESETS))
def test_the_table_is_the_architecture_keras_hub_converts_the_preset_to(preset, keras_hub):
    """The Kaggle presets were made by keras-hub's timm converters: the table's class and
    arguments are theirs (keras_hub.src is private, so only this test imports it)."""
    import importlib

    module, architecture = TIMM[preset]
    converter = importlib.import_module(f"keras_hub.src.utils.timm.{module}")
    spec = hub.PRESETS[preset]
    assert converter.backbone_cls.__name__ == spec.backbone
    expected = converter.convert_backbone_config({"architecture": architecture})
    assert json.loads(json.dumps(spec.arguments)) == json.loads(json.dumps(expected))
    assert preset in keras_hub.models.Backbone.presets
    assert preset in getattr(keras_hub.models, spec.backbone).presets


@pytest.mark.parametrize("preset", sorted(hub.PRESETS))
def test_every_preset_builds_offline_and_pools_features(preset, build, keras_hub):
    import keras

    backbone = build(preset=preset)
    assert backbone.name == f"hub_{preset}"
    assert tuple(backbone.input_shape) == (None, *SHAPE)
    assert type(base_of(backbone)).__name__ == hub.PRESETS[preset].backbone
    assert not any(isinstance(layer, keras.layers.Resizing) for layer in backbone.layers)
    features = np.asarray(backbone(images()))
    assert features.shape == (2, FEATURES[preset]), (
        f"{preset}: expected features of shape (2, {FEATURES[preset]}); received "
        f"{features.shape}")
    assert np.isfinite(features).all()
    keras.backend.clear_session()


def test_preprocessing_is_imagenet_normalisation_in_the_graph(build):
    """What the keras-hub backbone is fed: ``(x / 255 - mean) / std``, that is the
    presets' ImageConverter (``x * scale + offset``), from a standard Normalization."""
    import keras

    backbone = build(preset=SMALL)
    index = backbone.layers.index(base_of(backbone))
    assert isinstance(backbone.layers[index - 1], keras.layers.Normalization)
    preprocessing = keras.Model(backbone.input, backbone.layers[index - 1].output)
    x = images(seed=1)
    expected = (x / 255.0 - np.array(hub.IMAGENET_MEAN)) / np.array(hub.IMAGENET_STD)
    np.testing.assert_allclose(np.asarray(preprocessing(x)), expected, atol=1e-4)
    pooled = np.asarray(keras.layers.GlobalAveragePooling2D()(base_of(backbone)(expected)))
    np.testing.assert_allclose(np.asarray(backbone(x)), pooled, rtol=1e-4, atol=1e-4)


def test_size_resizes_inside_the_graph_only_when_it_differs(build):
    import keras

    resized = build(preset=SMALL, size=64)
    assert [(layer.height, layer.width, layer.interpolation) for layer in resized.layers
            if isinstance(layer, keras.layers.Resizing)] == [(64, 64, "bilinear")]
    assert tuple(base_of(resized).input_shape[1:]) == (64, 64, 3)
    assert np.asarray(resized(images())).shape == (2, FEATURES[SMALL])
    same = build(preset=SMALL, size=96)
    assert not any(isinstance(layer, keras.layers.Resizing) for layer in same.layers)
    upscaled = build((24, 24, 3), preset=SMALL, size=32)
    assert np.asarray(upscaled(images((24, 24, 3)))).shape == (2, FEATURES[SMALL])


def test_an_unknown_preset_lists_the_known_ones_and_suggests_one(build):
    with pytest.raises(OptionError) as info:
        build(preset="resnet50_imagenet")
    message = str(info.value)
    assert message.startswith(f"hub.preset expects one of {', '.join(hub.PRESETS)}; "
                              f"received 'resnet50_imagenet'")
    assert message.endswith("Did you mean 'resnet_50_imagenet'?")
    with pytest.raises(OptionError, match=r"received 'bert_base_en'$"):
        build(preset="bert_base_en")


@pytest.mark.parametrize("size", [-1, 1.5, "96", True])
def test_a_bad_size_is_an_option_error(size, build):
    with pytest.raises(OptionError, match=rf"hub.size expects an integer >= 0; "
                                          rf"received {size!r}"):
        build(preset=SMALL, size=size)


def test_images_or_size_under_32_are_refused(build):
    with pytest.raises(BuildError, match=r"hub \(resnet_18_imagenet\) expected hub.size >= 32 "
                                         r".*; received hub.size=16"):
        build(preset="resnet_18_imagenet", size=16)
    with pytest.raises(BuildError, match=r"expected images of at least 32x32 pixels; received "
                                         r"24x24; --set hub.size=32"):
        build((24, 24, 3), preset="resnet_18_imagenet")
    with pytest.raises(BuildError, match=r"expected RGB images of shape \(H, W, 3\); "
                                         r"received \(96, 96, 1\)"):
        build((96, 96, 1), preset="resnet_18_imagenet")


def test_without_keras_hub_building_says_what_to_install(registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` raises ImportError
    component = registry.get("hub", "backbone")
    with pytest.raises(BuildError) as info:
        component.create(input_shape=SHAPE, weights=None, **component.options)
    assert str(info.value).startswith(
        "hub needs keras-hub; install it with: pip install 'codabench-kit[hub]' && "
        "pip install --no-deps 'keras-hub>=0.29,<0.30'")


@pytest.fixture
def fake_download(keras_hub, monkeypatch):
    """``fake_download(preset, backbone=None, error=None)`` stands in for the download of
    --weights imagenet (no network here): ``keras_hub.models.Backbone.from_preset``
    returns ``backbone`` (default: the table's architecture, randomly initialised) or
    raises ``error``. Returns the backbone."""
    def fake(preset, backbone=None, error=None):
        if backbone is None:
            backbone = hub.build_architecture(keras_hub, preset, (None, None, 3))

        def from_preset(cls, name, **kwargs):
            if error is not None:
                raise error
            assert name == preset, name
            return backbone

        monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", classmethod(from_preset))
        return backbone

    return fake


def test_imagenet_weights_are_the_presets_in_the_offline_graph(build, fake_download):
    preset = "resnet_18_imagenet"
    downloaded = fake_download(preset)
    pretrained = build(preset=preset, weights="imagenet")
    assert same_weights(base_of(pretrained).get_weights(), downloaded.get_weights())
    offline = build(preset=preset)
    assert ([type(layer).__name__ for layer in base_of(pretrained).layers]
            == [type(layer).__name__ for layer in base_of(offline).layers])
    assert not same_weights(base_of(offline).get_weights(), downloaded.get_weights())


def test_a_failed_download_says_that_it_needs_internet(build, fake_download):
    fake_download("resnet_18_imagenet", error=ConnectionError("no route to host"))
    with pytest.raises(BuildError, match=r"could not download keras-hub preset "
                                         r"'resnet_18_imagenet': --weights imagenet needs "
                                         r"internet access \(to Kaggle\): ConnectionError: no "
                                         r"route to host. Offline, pass --weights none"):
        build(preset="resnet_18_imagenet", weights="imagenet")


def test_a_preset_unlike_the_table_is_refused(build, fake_download, keras_hub):
    other = hub.build_architecture(keras_hub, "resnet_50_imagenet", (None, None, 3))
    fake_download("resnet_18_imagenet", backbone=other)
    with pytest.raises(BuildError, match=r"keras-hub preset 'resnet_18_imagenet' is not the "
                                         r"architecture cbk's table lists for it "
                                         r"\(ResNetBackbone\): it is a ResNetBackbone differing "
                                         r"in block_type, stackwise_num_blocks$"):
        build(preset="resnet_18_imagenet", weights="imagenet")
    vgg = hub.build_architecture(keras_hub, "vgg_16_imagenet", (None, None, 3))
    fake_download("resnet_18_imagenet", backbone=vgg)
    with pytest.raises(BuildError, match=r"\(ResNetBackbone\): it is a VGGBackbone differing "
                                         r"in .*stackwise_num_filters"):
        build(preset="resnet_18_imagenet", weights="imagenet")


def test_a_weights_file_loads_into_the_offline_architecture(build, keras_hub, tmp_path):
    """For instance the preset's model.weights.h5, fetched where there is internet."""
    saved = hub.build_architecture(keras_hub, SMALL, (None, None, 3))
    path = tmp_path / "model.weights.h5"
    saved.save_weights(str(path))
    backbone = build(preset=SMALL, weights=str(path))
    assert same_weights(base_of(backbone).get_weights(), saved.get_weights())
    with pytest.raises(BuildError, match=rf"the weights file {path} does not fit hub preset "
                                         rf"resnet_18_imagenet \(ResNetBackbone\)"):
        build(preset="resnet_18_imagenet", weights=str(path))


@pytest.mark.slow
def test_build_trains_exports_and_validates_a_hub_submission(tmp_path, keras_hub):
    """cbk build from scratch (weights none) on the smallest preset: the zip's SavedModel
    needs neither keras_hub nor cbk, and cbk validate accepts it. Without TTA: the
    default's 8 views multiply the cost of the build's robustness report, and TTA is
    tested on its own (test_tta.py)."""
    from codabench_kit.cli import cli

    out = tmp_path / "hub.zip"
    result = CliRunner().invoke(cli, [
        "build", "--plugins", "hub,no-tta", "--set", f"hub.preset={SMALL}", "--weights", "none",
        "--epochs", "1", "--head-epochs", "0", "--demo-size", "10",
        "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert result.stdout.strip().splitlines()[-1] == str(out)
    for stage in ("training from scratch", "train epoch 1/1", "packaging: exporting the "
                  "SavedModel", "ok    load", "ok    parity", "ok    budget"):
        assert stage in result.stderr, stage
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        model_py = archive.read("model.py").decode()
    assert "artifact/saved_model.pb" in names
    assert "keras_hub" not in model_py and "codabench_kit" not in model_py
    assert manifest["components"]["backbone"][0] == {
        "name": "hub", "provider": "hub", "options": {"preset": SMALL, "size": 0}}

    validated = CliRunner().invoke(cli, ["validate", str(out), "--data",
                                         str(out.with_name("hub.heldout.npz"))])
    assert validated.exit_code == 0, validated.output
    assert validated.output.strip().splitlines()[-1] == f"valid: {out}"


@pytest.mark.parametrize("preset", ["mobilenet_v3_small_100_imagenet", "resnet_18_imagenet"])
def test_fine_tuning_freezes_every_batchnorm_even_inside_custom_blocks(preset, build, keras_hub):
    """keras-hub's MobileNetV3 keeps 33 of its 34 BatchNorm layers inside custom blocks,
    out of ``.layers``: fine-tuning with BatchNorm frozen must reach them too."""
    import keras

    from codabench_kit.training.model import _all_layers, set_backbone_trainable

    backbone = build(preset=preset)
    set_backbone_trainable(backbone, True, freeze_batchnorm=True)
    norms = [layer for layer in _all_layers(backbone)
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) >= 20
    assert [layer.name for layer in norms if layer.trainable] == []
    assert any(layer.trainable for layer in _all_layers(backbone)
               if isinstance(layer, keras.layers.Conv2D))
