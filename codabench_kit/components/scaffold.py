"""``cbk new-plugin``: an installable third-party plugin package, from ``templates/plugin``.

:func:`new_plugin` writes a folder that ``pip install -e`` turns into a plugin ``cbk``
finds through the ``codabench_kit`` entry point::

    cbk-example/
        pyproject.toml          # setuptools, [project.entry-points.codabench_kit]
        README.md               # install, test, use with cbk, publish
        cbk_example.py          # one registered component of the chosen kind
        tests/test_cbk_example.py

The package is rendered from one set of templates (``templates/plugin/*.tmpl``) with
``{{ placeholder }}`` fields; the component's code and its tests come from
``templates/plugin/kinds/<kind>.py.tmpl`` and ``<kind>_test.py.tmpl``. Nothing is written
unless everything is: the files go to a hidden folder beside the target, which is renamed
into place at the end; an existing target is never touched.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import shutil
import uuid
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Iterable

from codabench_kit import PROJECT_NAME, __version__
from codabench_kit.errors import CbkError, OutputExistsError, PluginError
from codabench_kit.components.registry import KINDS

DISTRIBUTION_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
"""A valid distribution (project) name, as PEP 508 defines it."""

COMPONENT_PREFIXES = ("codabench-kit-", "cbk-")
"""Stripped from the distribution name to name the component: cbk-example -> example."""

KIND_CODE = {
    "cleaner": {"hook": "register_cleaners", "factory": "make_constant_filter", "extra": ""},
    "augmenter": {"hook": "register_augmenters", "factory": "RandomBrightness", "extra": ""},
    "backbone": {"hook": "register_backbones", "factory": "make_backbone",
                 "extra": ", pretrained=False"},
    "tta": {"hook": "register_tta", "factory": "BrightnessTTA", "extra": ""},
}
"""Per kind: the hook the module implements, the factory it registers, and extra
metadata passed to ``register``."""

PACKAGE_FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "{module}.py": "module.py.tmpl",
    "tests/test_{module}.py": "test_module.py.tmpl",
}
"""Generated file (relative to the package folder) -> its template in templates/plugin."""

_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin package goes by."""

    distribution: str
    """What ``pip install`` and PyPI call it, as given: ``cbk-example``."""
    module: str
    """Its import name, also its entry-point name (the provider ``cbk plugins`` shows):
    ``cbk_example``."""
    component: str
    """The name of the component it registers, for ``cbk build --plugins``: ``example``."""


@dataclass(frozen=True)
class NewPlugin:
    """What :func:`new_plugin` created."""

    path: Path
    kind: str
    names: PluginNames
    files: tuple[str, ...]
    """The files written, relative to ``path``."""


def plugin_names(name: str) -> PluginNames:
    """The distribution, module and component names for a plugin called ``name``.

    Raises :class:`PluginError` when ``name`` is not a valid distribution name or gives no
    valid Python module name.
    """
    if not isinstance(name, str) or not DISTRIBUTION_NAME.match(name):
        raise PluginError(
            "expected a distribution name: letters, digits, '-', '_' and '.', starting and "
            f"ending with a letter or digit (for example cbk-sharpen); received {name!r}")
    module = re.sub(r"[-_.]+", "_", name).lower()
    if not module.isidentifier() or keyword.iskeyword(module):
        raise PluginError(
            f"expected a name that gives a Python module name (a letter first, not a keyword); "
            f"received {name!r}, which gives {module!r}")
    component = re.sub(r"[-_.]+", "-", name).lower()
    for prefix in COMPONENT_PREFIXES:
        if component.startswith(prefix) and len(component) > len(prefix):
            component = component[len(prefix):]
            break
    return PluginNames(distribution=name, module=module, component=component)


def check_kind(kind: str) -> str:
    """``kind`` if it is a component kind; a :class:`PluginError` otherwise."""
    if kind not in KINDS:
        raise PluginError(f"expected a plugin kind, one of {', '.join(KINDS)}; "
                          f"received {kind!r}")
    return kind


def check_free(names: PluginNames, taken: Iterable[str] | None = None) -> None:
    """Raise a :class:`PluginError` if the plugin's names clash with what is installed: a
    module of the same import name, an entry point of the same name in the
    ``codabench_kit`` group, or a component of the same name (``taken``: the registered
    component names; by default those of the installed plugins)."""
    try:
        spec = importlib.util.find_spec(names.module)
    except (ImportError, ValueError):  # a broken package of that name is still a clash
        spec = True
    if spec is not None:
        where = getattr(spec, "origin", None) or "installed"
        raise PluginError(
            f"expected a new module name; {names.module!r} (from {names.distribution!r}) is "
            f"already importable ({where}): choose another name")
    used = {ep.name for ep in metadata.entry_points(group=PROJECT_NAME)}
    if names.module in used:
        raise PluginError(
            f"expected a new plugin name; an installed plugin already uses the entry point "
            f"{names.module!r} (run `cbk plugins`): choose another name")
    if taken is None:
        from codabench_kit.components.plugin_manager import get_plugin_manager
        from codabench_kit.components.registry import Registry

        taken = [c.name for c in Registry.from_plugin_manager(get_plugin_manager()).components()]
    if names.component in set(taken):
        raise PluginError(
            f"expected a new component name; {names.component!r} (from {names.distribution!r}) "
            f"is already registered by an installed plugin (run `cbk plugins`): choose another "
            f"name")


def render(template: str, fields: dict[str, str]) -> str:
    """``template`` with every ``{{ key }}`` replaced by ``fields[key]``."""

    def field(match: re.Match) -> str:
        key = match.group(1)
        if key not in fields:
            raise PluginError(f"plugin template field {{{{ {key} }}}} has no value; "
                              f"expected one of {', '.join(sorted(fields))}")
        return fields[key]

    return _PLACEHOLDER.sub(field, template)


def plugin_files(names: PluginNames, kind: str) -> dict[str, str]:
    """The generated package: relative path -> text."""
    templates = resources.files("codabench_kit.templates").joinpath("plugin")

    def read(*parts: str) -> str:
        return templates.joinpath(*parts).read_text(encoding="utf-8")

    code = KIND_CODE[kind]
    fields = {
        "distribution": names.distribution,
        "module": names.module,
        "entry_point": names.module,
        "component": names.component,
        "kind": kind,
        "hook": code["hook"],
        "factory": code["factory"],
        "register_extra": code["extra"],
        "cbk_version": ".".join(__version__.split(".")[:2]),
    }
    fields["component_code"] = render(read("kinds", f"{kind}.py.tmpl"), fields).rstrip("\n")
    fields["component_tests"] = render(read("kinds", f"{kind}_test.py.tmpl"),
                                       fields).rstrip("\n")
    return {path.format(module=names.module): render(read(template), fields)
            for path, template in PACKAGE_FILES.items()}


def new_plugin(name: str, kind: str, directory: str | Path = ".", *,
               taken: Iterable[str] | None = None) -> NewPlugin:
    """Create the plugin package ``directory/name`` registering one ``kind`` component.

    :param name: the distribution name, e.g. ``cbk-example`` (module ``cbk_example``,
        component ``example``).
    :param kind: ``cleaner``, ``augmenter``, ``backbone`` or ``tta``.
    :param directory: an existing folder to create the package folder in.
    :param taken: component names already in use (default: those of the installed plugins).

    Raises :class:`PluginError` for a bad name or kind or a name that clashes with an
    installed one, :class:`OutputExistsError` when ``directory/name`` exists; in either
    case nothing is written.
    """
    check_kind(kind)
    names = plugin_names(name)
    parent = Path(directory)
    if not parent.is_dir():
        raise CbkError(f"expected an existing folder to create the plugin in; received "
                       f"{str(parent)!r}, which is not a folder")
    target = parent / name
    if target.exists() or target.is_symlink():
        raise OutputExistsError(f"{target} already exists; cbk new-plugin never overwrites: "
                                f"choose another name or --dir")
    check_free(names, taken)
    files = plugin_files(names, kind)
    staging = parent / f".{name}.cbk-new-plugin-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if target.exists() or target.is_symlink():  # created while we wrote
            raise OutputExistsError(f"{target} already exists; cbk new-plugin never "
                                    f"overwrites: choose another name or --dir")
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CbkError(f"could not write the plugin to {target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return NewPlugin(path=target, kind=kind, names=names, files=tuple(sorted(files)))
