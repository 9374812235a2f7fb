import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli, main
from codabench_kit.errors import DuplicateComponentError, UnknownComponentError
from codabench_kit.components.plugin_manager import DEFAULT_PLUGINS, get_plugin_manager
from codabench_kit.components.registry import Registry
from codabench_kit.components.selection import DEFAULTS, select

BUILTIN = {"dedupe": "cleaner", "contaminants": "cleaner", "conflicts": "cleaner",
           "phash": "cleaner", "outliers": "cleaner", "similar": "cleaner", "balance": "cleaner",
           "augmix": "augmenter", "flips": "augmenter", "randaugment": "augmenter",
           "geometric": "augmenter", "color": "augmenter", "noise": "augmenter",
           "corrupt": "augmenter", "gridmask": "augmenter", "erasing": "augmenter",
           "cutmix": "augmenter", "mixup": "augmenter", "pixmix": "augmenter",
           "kerascv-randaugment": "augmenter", "kerascv-augmix": "augmenter",
           "kerascv-gridmask": "augmenter",
           "cnn": "backbone", "mobilenet": "backbone", "effnet": "backbone",
           "efficientnet": "backbone", "convnext": "backbone", "resnet": "backbone",
           "vgg": "backbone", "inception": "backbone", "densenet": "backbone",
           "hub": "backbone",
           "flip-tta": "tta", "no-tta": "tta", "rot-tta": "tta", "d4-tta": "tta",
           "random-tta": "tta", "crop-tta": "tta"}

EXAMPLE_PLUGIN = """
from codabench_kit import hookimpl

@hookimpl
def register_augmenters(register):
    register("invert", lambda seed=0, strength=1.0: (lambda x, y: (255 - x, y)),
             description="Invert colours.", options={"strength": 1.0})
"""


def fresh_registry():
    return Registry.from_plugin_manager(get_plugin_manager())


def test_builtins_are_registered_as_default_plugins(registry):
    assert {c.name: c.kind for c in registry.components()} == BUILTIN
    assert {c.provider for c in registry.components()} == {"backbones", "augmenters",
                                                           "cleaners", "tta", "kerascv",
                                                           "hub"}
    pm = get_plugin_manager()
    assert {name: pm.distributions[name] for name in DEFAULT_PLUGINS} == dict.fromkeys(
        DEFAULT_PLUGINS, "codabench-kit")


def test_third_party_plugin_found_through_entry_point(install_plugin):
    install_plugin("cbk_invert", EXAMPLE_PLUGIN)
    registry = fresh_registry()
    component = registry.get("invert", "augmenter")
    assert component.provider == "cbk_invert"
    assert component.options == {"strength": 1.0}
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    plugin = next(p for p in payload["plugins"] if p["name"] == "cbk_invert")
    assert plugin == {"name": "cbk_invert", "distribution": "cbk-cbk-invert",
                      "hooks": ["register_augmenters"], "components": ["invert"]}


def test_a_third_party_backbone_recommends_its_recipe(install_plugin, tmp_path):
    """``register(..., recipe=...)``: listed by ``cbk plugins``, applied by a build under
    its ``--set``."""
    from codabench_kit.build.config import BuildConfig
    from codabench_kit.build.inputs import check_inputs

    install_plugin("cbk_calm", """
        from codabench_kit import hookimpl

        @hookimpl
        def register_backbones(register):
            register("calm", lambda input_shape, weights=None: None, description="Calm.",
                     recipe={"train": {"label_smoothing": 0.0, "ema": True}})
    """)
    result = CliRunner().invoke(cli, ["plugins", "--kind", "backbone"])
    assert result.exit_code == 0, result.output
    assert "recommends: train.label_smoothing=0.0, train.ema=True" in result.stdout
    config = BuildConfig(plugins=["calm"], settings={"train": {"ema": "false"}},
                         out=str(tmp_path / "calm.zip"), demo_per_class=3)
    recipe = check_inputs(config, fresh_registry()).recipe
    assert recipe.train["label_smoothing"] == 0.0 and recipe.train["ema"] is False


def test_a_bad_recipe_recommendation_is_listed_with_its_error(install_plugin):
    install_plugin("cbk_odd", """
        from codabench_kit import hookimpl

        @hookimpl
        def register_backbones(register):
            register("odd", lambda input_shape, weights=None: None, recipe={"optimizer": "lion"})
    """)
    result = CliRunner().invoke(cli, ["plugins", "--kind", "backbone"])
    assert result.exit_code == 0, result.output
    assert ("recommends: (invalid: backbone 'odd' (plugin 'cbk_odd') registered recipe="
            "{'optimizer': 'lion'}; expected a dict of sections") in result.stdout
    assert "mobilenet" in result.stdout


def test_unknown_name_suggests_close_match(registry):
    with pytest.raises(UnknownComponentError) as info:
        registry.get("efnet")
    message = str(info.value)
    assert "unknown component 'efnet'" in message
    assert "Did you mean 'effnet'" in message
    assert "cbk plugins" in message


@pytest.mark.parametrize("name, kind, message", [
    ("augmix", "backbone", "'augmix' is an augmenter, not a backbone"),
    ("cnn", "augmenter", "'cnn' is a backbone, not an augmenter"),
    ("dedupe", "tta", "'dedupe' is a cleaner, not a tta"),
])
def test_name_of_other_kind_is_rejected(registry, name, kind, message):
    with pytest.raises(UnknownComponentError) as info:
        registry.get(name, kind)
    assert str(info.value) == message


def test_duplicate_name_names_both_providers(install_plugin):
    install_plugin("cbk_dup", """
        from codabench_kit import hookimpl

        @hookimpl
        def register_tta(register):
            register("augmix", lambda: None)
    """)
    with pytest.raises(DuplicateComponentError) as info:
        fresh_registry()
    message = str(info.value)
    assert "'augmix'" in message and "'augmenters'" in message and "'cbk_dup'" in message


def test_broken_plugin_is_reported_and_does_not_break_others(install_plugin):
    install_plugin("cbk_broken", "import not_a_module_anywhere\n")
    pm = get_plugin_manager()
    assert [f.name for f in pm.load_failures] == ["cbk_broken"]
    assert "ModuleNotFoundError" in pm.load_failures[0].error
    registry = Registry.from_plugin_manager(pm)
    assert registry.get("cnn").kind == "backbone"
    with pytest.raises(UnknownComponentError, match="failed to load: cbk_broken"):
        registry.get("what-cbk_broken-would-give")
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    assert "cnn" in result.stdout
    assert "plugin 'cbk_broken'" in result.stderr and "ModuleNotFoundError" in result.stderr


def test_misspelt_hook_fails_at_load(install_plugin):
    install_plugin("cbk_typo", """
        from codabench_kit import hookimpl

        @hookimpl
        def register_backbone(register):
            pass
    """)
    import pluggy

    with pytest.raises(pluggy.PluginValidationError, match="register_backbone"):
        get_plugin_manager()


def test_plugin_adds_cli_command(install_plugin, capsys, monkeypatch):
    """The plugin adds its command to a copy of the ``cli`` group's commands, so the
    module's group (shared by every test) is left as it was."""
    install_plugin("cbk_hello", """
        import click
        from codabench_kit import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                "Say hello."
                click.echo("hello from a plugin")
    """)
    before = dict(cli.commands)
    with monkeypatch.context() as patch:
        patch.setattr(cli, "commands", dict(cli.commands))
        with pytest.raises(SystemExit) as info:
            main(["hello"])
        assert set(cli.commands) - set(before) == {"hello"}
    assert info.value.code == 0
    assert "hello from a plugin" in capsys.readouterr().out
    assert cli.commands == before and "hello" not in cli.commands


@pytest.mark.parametrize("value", ["", "backbones", "cbk_other", "cbk_invert,cbk_other"])
def test_load_plugins_env_narrows_third_party_plugins_only(monkeypatch, install_plugin, value):
    install_plugin("cbk_invert", EXAMPLE_PLUGIN)
    monkeypatch.setenv("CBK_LOAD_PLUGINS", value)
    registry = fresh_registry()
    names = {c.name: c.kind for c in registry.components()}
    assert {n: k for n, k in names.items() if n != "invert"} == BUILTIN
    assert ("invert" in names) == ("cbk_invert" in value.split(","))
    selection = select(registry, [])  # every stage's defaults resolve
    assert [c.name for c in selection.of("cleaner")] == DEFAULTS["cleaner"]


def test_unset_load_plugins_env_loads_every_third_party_plugin(monkeypatch, install_plugin):
    install_plugin("cbk_invert", EXAMPLE_PLUGIN)
    monkeypatch.delenv("CBK_LOAD_PLUGINS", raising=False)
    assert "invert" in fresh_registry()


def test_builtins_load_when_no_entry_point_declares_them(monkeypatch):
    """A source tree that shadows the installed package has no entry points of its own."""
    from importlib import metadata

    monkeypatch.setattr(metadata, "entry_points", lambda **kwargs: [])
    assert {c.name: c.kind for c in fresh_registry().components()} == BUILTIN


def test_listing_never_imports_tensorflow_or_keras():
    code = ("import sys; from codabench_kit.cli import main\n"
            "try:\n    main(['plugins', '--json'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY []"
