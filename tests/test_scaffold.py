"""`cbk new-plugin`: the scaffold installs, lists, and passes its own tests; every kind
registers a working component; bad input writes nothing."""

import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.errors import CbkError, OutputExistsError, PluginError
from codabench_kit.components.plugin_manager import PluginManager
from codabench_kit.components.registry import KINDS, Component, Registry
from codabench_kit.components.scaffold import new_plugin, plugin_names


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def load_by_path(name: str, path: Path):
    """Import ``path`` as module ``name`` without installing it or leaving it in sys.modules."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def registered(plugin) -> Component:
    """The component of a generated plugin, registered by path as its entry point would."""
    module = load_by_path(plugin.names.module, plugin.path / f"{plugin.names.module}.py")
    pm = PluginManager()
    pm.register(module, name=plugin.names.module)
    pm.check_pending()
    return Registry.from_plugin_manager(pm).get(plugin.names.component, plugin.kind)


def generated_tests(plugin, tmp_path):
    """The generated package's test functions, each ready to call with the component (its
    other fixture, ``tmp_path``, given a fresh folder)."""
    path = plugin.path / "tests" / f"test_{plugin.names.module}.py"
    module = load_by_path(f"test_{plugin.names.module}", path)
    tests = {}
    for name, fn in vars(module).items():
        if not name.startswith("test_"):
            continue
        parameters = list(inspect.signature(fn).parameters)
        assert parameters[0] == "component" and set(parameters) <= {"component", "tmp_path"}
        folder = tmp_path / "fixtures" / name

        def call(component, fn=fn, wants_folder="tmp_path" in parameters, folder=folder):
            if not wants_folder:
                return fn(component)
            folder.mkdir(parents=True)
            return fn(component, tmp_path=folder)

        tests[name] = call
    return tests


@pytest.mark.slow
def test_new_plugin_installs_lists_and_passes_its_own_tests(tmp_path):
    result = CliRunner().invoke(cli, ["new-plugin", "cbk-example", "--kind", "augmenter",
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "cbk-example"
    assert f"created {package}" in result.output
    assert "cbk build --plugins example" in result.output
    env = {k: v for k, v in os.environ.items() if k not in ("CBK_LOAD_PLUGINS", "PYTEST_ADDOPTS")}
    pip = [sys.executable, "-m", "pip"]
    try:
        install = subprocess.run([*pip, "install", "-q", "--no-deps", "--no-build-isolation",
                                  "--no-index", "-e", str(package)],
                                 capture_output=True, text=True, env=env)
        assert install.returncode == 0, install.stdout + install.stderr
        listing = subprocess.run([sys.executable, "-m", "codabench_kit", "plugins", "--json"],
                                 cwd=tmp_path, capture_output=True, text=True, env=env)
        assert listing.returncode == 0, listing.stderr
        payload = json.loads(listing.stdout)
        assert {"name": "cbk_example", "distribution": "cbk-example",
                "hooks": ["register_augmenters"], "components": ["example"]} in payload["plugins"]
        component = next(c for c in payload["components"] if c["name"] == "example")
        assert (component["kind"], component["provider"]) == ("augmenter", "cbk_example")
        assert payload["failed"] == []
        own_tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                                   cwd=package, capture_output=True, text=True, env=env)
        assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
        assert " passed" in own_tests.stdout and "failed" not in own_tests.stdout
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "cbk-example"], capture_output=True,
                       env=env)
    assert importlib.util.find_spec("cbk_example") is None


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_registers_a_working_component(tmp_path, kind):
    plugin = new_plugin(f"cbk-scaffolded-{kind}", kind, tmp_path)
    module = f"cbk_scaffolded_{kind}"
    assert plugin.path == tmp_path / f"cbk-scaffolded-{kind}"
    assert files_under(tmp_path) == sorted([
        plugin.path.name, *(f"{plugin.path.name}/{f}" for f in
                            ("README.md", "pyproject.toml", f"{module}.py", "tests",
                             f"tests/test_{module}.py"))])
    pyproject = (plugin.path / "pyproject.toml").read_text()
    assert f'[project.entry-points.codabench_kit]\n{module} = "{module}"' in pyproject
    readme = (plugin.path / "README.md").read_text()
    assert "pip install -e ." in readme and "pytest" in readme
    assert f"cbk build --plugins scaffolded-{kind}" in readme
    for path in plugin.path.rglob("*"):
        assert "{{" not in path.name and (path.is_dir() or "{{" not in path.read_text())

    component = registered(plugin)
    assert (component.name, component.kind, component.provider) == (
        f"scaffolded-{kind}", kind, module)
    assert component.description and component.options
    # The generated tests, run on the component registered by path: they pass.
    tests = generated_tests(plugin, tmp_path / "run")
    assert len(tests) >= 3
    for test in tests.values():
        test(component)


class _OneView:
    merge = "mean"

    def __call__(self, images):
        return [images]


def _keep_everything(**options):
    from codabench_kit.cleaning.run import CleanResult

    return lambda images, labels: CleanResult(np.ones(len(labels), dtype=bool))


IDLE = {
    "augmenter": (lambda seed=0, **options: (lambda images, labels: (images, labels)),
                  "test_changes_brightness_within_range"),
    "cleaner": (_keep_everything, "test_removes_near_constant_images_with_a_reason"),
    "tta": (lambda **options: _OneView(), "test_views_are_batches_of_the_same_shape"),
}
"""Per kind: a factory that does nothing useful, and the generated test that catches it."""


@pytest.mark.parametrize("kind", sorted(IDLE))
def test_generated_tests_fail_on_a_component_that_does_nothing(tmp_path, kind):
    plugin = new_plugin(f"cbk-idle-{kind}", kind, tmp_path)
    real = registered(plugin)
    factory, catching_test = IDLE[kind]
    idle = Component(name=real.name, kind=kind, factory=factory, provider=real.provider,
                     description=real.description, options=real.options)
    with pytest.raises(AssertionError):
        generated_tests(plugin, tmp_path / "run")[catching_test](idle)


@pytest.mark.parametrize("name, derived", [
    ("cbk-example", ("cbk_example", "example")),
    ("Cbk.Blank_Frames", ("cbk_blank_frames", "blank-frames")),
    ("codabench-kit-sharpen", ("codabench_kit_sharpen", "sharpen")),
    ("cbk", ("cbk", "cbk")),
    ("sharpen", ("sharpen", "sharpen")),
])
def test_names_are_derived_from_the_distribution_name(name, derived):
    names = plugin_names(name)
    assert (names.distribution, names.module, names.component) == (name, *derived)


@pytest.mark.parametrize("name, expected", [
    ("", "expected a distribution name"),
    ("cbk example", "expected a distribution name"),
    ("../evil", "expected a distribution name"),
    ("cbk-", "expected a distribution name"),
    ("2cool", "gives '2cool'"),
    ("import", "not a keyword"),
    ("codabench-kit", "'codabench_kit' (from 'codabench-kit') is already importable"),
    ("numpy", "'numpy' (from 'numpy') is already importable"),
    ("cbk-cnn", "'cnn' (from 'cbk-cnn') is already registered"),
])
def test_bad_name_is_refused_and_nothing_written(tmp_path, name, expected):
    with pytest.raises(PluginError, match="expected") as info:
        new_plugin(name, "augmenter", tmp_path)
    assert expected in str(info.value)
    assert repr(name) in str(info.value)
    assert files_under(tmp_path) == []


def test_bad_kind_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(PluginError) as info:
        new_plugin("cbk-example", "model", tmp_path)
    assert str(info.value) == ("expected a plugin kind, one of cleaner, augmenter, backbone, "
                               "tta; received 'model'")
    assert files_under(tmp_path) == []


def test_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "cbk-example").mkdir()
    (tmp_path / "cbk-example" / "mine.py").write_text("keep me")
    with pytest.raises(OutputExistsError, match="already exists"):
        new_plugin("cbk-example", "augmenter", tmp_path)
    assert files_under(tmp_path) == ["cbk-example", "cbk-example/mine.py"]
    assert (tmp_path / "cbk-example" / "mine.py").read_text() == "keep me"


def test_missing_parent_folder_is_refused(tmp_path):
    with pytest.raises(CbkError, match="expected an existing folder"):
        new_plugin("cbk-example", "augmenter", tmp_path / "absent")
    assert files_under(tmp_path) == []


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    written = []
    real_write = Path.write_text

    def write_then_fail(self, *args, **kwargs):
        if written:
            raise OSError("disk full")
        written.append(self)
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_then_fail)
    with pytest.raises(CbkError, match="could not write the plugin .*disk full"):
        new_plugin("cbk-example", "augmenter", tmp_path)
    assert written and files_under(tmp_path) == []


def test_cli_reports_what_it_created_and_what_to_run_next(tmp_path):
    result = CliRunner().invoke(cli, ["new-plugin", "cbk-blank", "--kind", "cleaner",
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"created {tmp_path / 'cbk-blank'}: the cleaner 'blank' in cbk_blank.py"
    assert [line.split("#")[0].strip() for line in lines[2:]] == [
        f"cd {tmp_path / 'cbk-blank'}", "pip install -e .", "pytest",
        "cbk build --plugins blank"]


def test_cli_refuses_bad_kind_and_existing_folder(tmp_path):
    result = CliRunner().invoke(cli, ["new-plugin", "cbk-x", "--kind", "model",
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "'model' is not one of" in result.output
    (tmp_path / "cbk-x").mkdir()
    result = CliRunner().invoke(cli, ["new-plugin", "cbk-x", "--kind", "tta",
                                      "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "already exists" in result.output and "never overwrites" in result.output
    assert files_under(tmp_path) == ["cbk-x"]
