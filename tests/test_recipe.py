"""The training recipe: head and training options, how they are set, and what they build."""

import re

import numpy as np
import pytest

from codabench_kit.components.registry import Component
from codabench_kit.errors import OptionError, PluginError
from codabench_kit.training.recipe import HEAD_OPTIONS, TRAIN_OPTIONS, Recipe, split_recipe_settings


def test_defaults_then_file_then_command_line():
    assert Recipe.from_settings() == Recipe()
    recipe = Recipe.from_settings(
        {"train": {"optimizer": "lion", "ema": "true"}},
        {"train": {"optimizer": "sgd", "schedule": "plateau"}, "head": {"dense": "256,64"}})
    assert recipe.train["optimizer"] == "lion" and recipe.train["ema"] is True
    assert recipe.train["schedule"] == "plateau"
    assert recipe.dense_widths() == [256, 64]
    assert recipe.train["learning_rate"] == TRAIN_OPTIONS["learning_rate"]
    assert Recipe.from_dict(recipe.to_dict()) == recipe


def _backbone(recipe):
    return Component(name="net", kind="backbone", factory=dict, provider="acme",
                     metadata={"recipe": recipe})


def test_a_backbone_recommendation_sits_between_the_defaults_and_the_file():
    backbone = _backbone({"train": {"ema": True, "label_smoothing": 0.0},
                          "head": {"dropout": 0.3}})
    recommended = Recipe.from_settings(backbone=backbone)
    assert recommended.train["ema"] is True and recommended.head["dropout"] == 0.3
    assert recommended.train["label_smoothing"] == 0.0
    assert recommended.train["optimizer"] == TRAIN_OPTIONS["optimizer"]
    overridden = Recipe.from_settings({"train": {"ema": "false"}},
                                      {"head": {"dropout": "0.1"}}, backbone=backbone)
    assert overridden.train["ema"] is False and overridden.head["dropout"] == 0.1
    assert overridden.train["label_smoothing"] == 0.0  # still the backbone's


def test_mobilenet_recommends_ema_and_a_128_pixel_input(registry):
    mobilenet = registry.get("mobilenet", "backbone")
    assert mobilenet.options["size"] == 128
    assert Recipe.from_settings(backbone=mobilenet).train["ema"] is True
    assert Recipe.from_settings(backbone=registry.get("cnn", "backbone")) == Recipe()


@pytest.mark.parametrize("recipe, message", [
    ({"optimizer": "lion"}, "expected a dict of sections"),
    ({"trian": {"ema": True}}, "expected a dict of sections"),
    ({"train": {"ema": "maybe"}}, "train.ema expects a bool"),
    ({"train": {"learning_rate": -1.0}}, "train.learning_rate must be > 0"),
])
def test_a_bad_recommendation_is_the_plugins_fault(recipe, message):
    with pytest.raises(PluginError, match=r"backbone 'net' \(plugin 'acme'\) registered "
                                          r"recipe=.*" + re.escape(message)):
        Recipe.from_settings(backbone=_backbone(recipe))


def test_component_and_recipe_settings_are_split():
    components, recipe = split_recipe_settings({"effnet": {"variant": "s"},
                                                "train": {"loss": "focal"}})
    assert components == {"effnet": {"variant": "s"}} and recipe == {"train": {"loss": "focal"}}


@pytest.mark.parametrize("settings, message", [
    ({"train": {"optimizer": "rmsprop"}}, "train.optimizer expects one of adamw, adam, lion, sgd"),
    ({"train": {"learning_rat": "0.1"}}, "Did you mean 'learning_rate'?"),
    ({"train": {"learning_rate": "fast"}}, "learning_rate expects a float"),
    ({"train": {"learning_rate": "0"}}, "train.learning_rate must be > 0; received 0.0"),
    ({"head": {"dense": "0"}}, "head.dense expects comma-separated positive widths"),
    ({"head": {"norm": "instance"}}, "head.norm expects one of none, batch, layer, group"),
    ({"head": {"dropout": "1"}}, "head.dropout must be in [0, 1)"),
    ({"train": {"unfreeze_stages": "0"}}, "train.unfreeze_stages must be >= 1"),
])
def test_bad_values_say_what_was_expected_and_received(settings, message):
    with pytest.raises(OptionError, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        Recipe.from_settings(settings)


def _tiny_backbone():
    from codabench_kit.components.plugin_manager import get_plugin_manager
    from codabench_kit.components.registry import Registry

    registry = Registry.from_plugin_manager(get_plugin_manager())
    return registry.get("cnn").create(input_shape=(32, 32, 3), weights=None, width=8, blocks=1,
                                      norm="batch")


@pytest.mark.parametrize("norm", ["none", "batch", "layer", "group"])
def test_head_options_build_and_train(norm):
    import keras

    from codabench_kit.training.model import classifier_for
    from codabench_kit.training.trainer import make_loss, make_optimizer

    recipe = Recipe.from_settings({"head": {"dense": "24,12", "norm": norm, "l2": "0.001"}})
    classifier = classifier_for(_tiny_backbone(), 5, recipe)
    names = [layer.name for layer in classifier.layers]
    assert {"head_dense_0", "head_dense_1", "head"} <= set(names)
    assert ("head_norm_0" in names) == (norm != "none")
    assert classifier.get_layer("head_dense_0").kernel_regularizer is not None
    classifier.compile(optimizer=make_optimizer(recipe, 1e-3, 10), loss=make_loss(recipe))
    x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = keras.ops.one_hot(np.arange(8) % 5, 5)
    assert np.isfinite(classifier.train_on_batch(x, y))
    probabilities = classifier.predict(x, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name, cls", [("adamw", "AdamW"), ("adam", "Adam"), ("lion", "Lion"),
                                       ("sgd", "SGD")])
def test_optimizers_schedules_and_ema(name, cls):
    import keras

    from codabench_kit.training.trainer import make_optimizer

    cosine = make_optimizer(Recipe.from_settings({"train": {"optimizer": name, "ema": "true"}}),
                            1e-3, 100)
    assert type(cosine).__name__ == cls and cosine.use_ema
    schedule = cosine._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert float(schedule(0)) == pytest.approx(1e-3) and float(schedule(100)) == pytest.approx(1e-5)
    constant = make_optimizer(Recipe.from_settings({"train": {"optimizer": name,
                                                              "schedule": "constant"}}), 1e-3, 100)
    assert float(constant.learning_rate) == pytest.approx(1e-3) and not constant.use_ema


def test_losses_smooth_labels_and_focus():
    import keras

    from codabench_kit.training.trainer import make_loss

    y_true = np.array([[0.0, 1.0]], "float32")
    y_pred = np.array([[0.1, 0.9]], "float32")
    plain = make_loss(Recipe.from_settings({"train": {"label_smoothing": "0"}}))
    smooth = make_loss(Recipe())
    focal = make_loss(Recipe.from_settings({"train": {"loss": "focal"}}))
    assert isinstance(focal, keras.losses.CategoricalFocalCrossentropy)
    assert float(smooth(y_true, y_pred)) > float(plain(y_true, y_pred))  # smoothing penalises
    assert float(focal(y_true, y_pred)) < float(plain(y_true, y_pred))   # confident: focused away


def test_gradual_unfreezing_opens_the_deepest_layers_first():
    import keras

    from codabench_kit.training.trainer import _weighted_layers, unfreeze_top

    backbone = _tiny_backbone()
    layers = list(_weighted_layers(backbone))
    unfreeze_top(backbone, 1 / 3)
    open_ = [layer.trainable for layer in layers]
    assert any(open_) and not all(open_)
    assert open_.index(True) >= len(layers) // 2  # the open ones are the deep ones
    assert not any(layer.trainable for layer in layers
                   if isinstance(layer, keras.layers.BatchNormalization))
    unfreeze_top(backbone, 1.0)
    assert all(layer.trainable for layer in layers
               if not isinstance(layer, keras.layers.BatchNormalization))


def test_options_tables_are_documented():
    from codabench_kit.training import recipe as module

    doc = open(module.__file__).read()
    for key in [*HEAD_OPTIONS, *TRAIN_OPTIONS]:
        assert f"``{key}``" in doc, key


def test_two_phases_with_gradual_unfreezing_ema_and_plateau():
    """A 'pretrained' run (random weights stand in): head phase, then three fine-tuning
    stages, each validated on the EMA weights."""
    import keras

    from codabench_kit.training.batches import TrainingBatches
    from codabench_kit.training.model import classifier_for
    from codabench_kit.training.trainer import TrainingPlan, train

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3)).astype("uint8")
    labels = np.arange(24) % 3
    recipe = Recipe.from_settings({"train": {"unfreeze": "gradual", "ema": "true",
                                             "schedule": "plateau", "optimizer": "sgd"}})
    backbone = _tiny_backbone()
    classifier = classifier_for(backbone, 3, recipe)
    batches = TrainingBatches(images, labels, 3, batch_size=8)
    validation = (images[:6].astype("float32"), keras.ops.one_hot(labels[:6], 3))
    lines = []
    history = train(classifier, backbone, batches, validation, pretrained=True, recipe=recipe,
                    plan=TrainingPlan(head_epochs=1, epochs=3, patience=2), progress=lines.append)
    assert list(history) == ["head", "finetune_1", "finetune_2", "finetune_3"]
    assert any("phase 2.3: fine-tune the deepest 3/3" in line for line in lines)
    assert all(np.isfinite(history[phase]["loss"]).all() for phase in history)


def test_mixed_precision_training_ships_a_float32_model(tmp_path):
    """train.mixed_precision=on (forced on CPU): the build trains in float16, evaluates
    and exports the float32 rebuild, and the zip reproduces the evaluated probabilities."""
    import json
    import zipfile

    from click.testing import CliRunner

    from codabench_kit.cli import cli

    out = tmp_path / "mixed.zip"
    result = CliRunner().invoke(cli, ["build", "--demo-size", "12", "--epochs", "1",
                                      "--set", "cnn.width=8", "--set", "train.mixed_precision=on",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output + str(result.exception)
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["training"]["precision"] == "mixed_float16"
    # The evaluated model is the float32 rebuild itself, so the export reproduces it
    # exactly; evaluating the float16-computing model instead gave 8.8e-06 here.
    assert manifest["fidelity"]["max_abs_probability_difference"] <= 1e-6
    import keras

    assert keras.config.dtype_policy().name == "float32"  # restored after the build


@pytest.mark.parametrize("with_tta, without, verdict", [
    (0.80, 0.75, "it helps"), (0.70, 0.75, "it hurts"), (0.75, 0.75, "it does not help")])
def test_tta_gain_says_whether_the_strategy_helps(with_tta, without, verdict):
    from codabench_kit.evaluation.shipped_model import tta_gain, tta_gain_line

    metrics = lambda aug: {"clean_test": {"accuracy": 0.9},  # noqa: E731
                           "augmented_test": {"accuracy": aug}}
    gain = tta_gain("d4-tta", metrics(with_tta), metrics(without))
    assert gain["augmented_test"]["gain"] == pytest.approx(with_tta - without)
    line = tta_gain_line(gain)
    assert line.startswith(f"TTA d4-tta: augmented test {with_tta:.3f} against {without:.3f}")
    assert line.endswith(verdict)
