"""The public API for plugin authors (codabench_kit.api), and options read from a
factory's signature."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from codabench_kit import api
from codabench_kit.components.registry import Registry, signature_options

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def test_the_api_exports_what_a_plugin_needs():
    for name in ("hookimpl", "Augmenter", "CleanResult", "OptionError", "BuildError",
                 "check_choice", "check_unit", "check_positive", "check_int", "Register",
                 "get_registry"):
        assert name in api.__all__ and hasattr(api, name), name


def test_importing_the_api_imports_no_framework():
    code = ("import sys, codabench_kit.api\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def core_imports_of(path: Path) -> set[str]:
    """The ``codabench_kit`` modules a file imports (top level and inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith("codabench_kit"):
            names.add(node.module)
    return names


def test_built_in_plugins_take_the_plugin_api_from_one_place():
    """The built-ins are written as a third-party plugin is: the API, their own modules,
    and the few core helpers a plugin of their kind builds on."""
    allowed = {"codabench_kit.api", "codabench_kit.training.augmenter",
               "codabench_kit.training.weights", "codabench_kit.training.compiled",
               "codabench_kit.cleaning.phash", "codabench_kit.cleaning.grouping",
               "codabench_kit.cleaning.features"}
    for path in sorted(PLUGINS.rglob("*.py")):
        imported = {m for m in core_imports_of(path)
                    if not m.startswith("codabench_kit.plugins")}
        assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"


def make_thing(seed=0, strength=0.5, kinds=("a", "b"), *, flag=False, weights="none"):
    return None


def test_signature_options_skip_what_cbk_passes_itself():
    assert signature_options(make_thing, "augmenter") == {
        "strength": 0.5, "kinds": ["a", "b"], "flag": False, "weights": "none"}
    assert signature_options(make_thing, "backbone") == {
        "seed": 0, "strength": 0.5, "kinds": ["a", "b"], "flag": False}
    assert signature_options(make_thing, "cleaner")["seed"] == 0


class FakePluginManager:
    """Just enough of a plugin manager for Registry.from_plugin_manager: one plugin."""

    def __init__(self, hook_name, function):
        impl = type("Impl", (), {"plugin_name": "fake", "function": staticmethod(function)})
        caller = type("Caller", (), {"get_hookimpls": staticmethod(lambda: [impl])})
        empty = type("Caller", (), {"get_hookimpls": staticmethod(lambda: [])})
        self.hook = type("Hook", (), {})()
        for name in ("register_cleaners", "register_augmenters", "register_backbones",
                     "register_tta"):
            setattr(self.hook, name, caller if name == hook_name else empty)
        self.load_failures = []


@pytest.mark.parametrize("options, expected", [
    (None, {"strength": 0.5, "kinds": ["a", "b"], "flag": False, "weights": "none"}),
    ({"strength": 0.25}, {"strength": 0.25}),
    ({}, {}),
])
def test_register_reads_options_from_the_signature_unless_given(options, expected):
    pm = FakePluginManager("register_augmenters",
                           lambda register: register("thing", make_thing, options=options))
    assert Registry.from_plugin_manager(pm).get("thing").options == expected


def test_every_built_in_component_has_the_options_of_its_factory(registry):
    """One source for each default: the factory's signature."""
    for component in registry.components():
        assert component.options == signature_options(component.factory, component.kind), \
            component.name
