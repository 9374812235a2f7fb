"""Creating the plugin manager: the built-in plugins, then third-party entry points.

Nothing is loaded at import time: call :func:`get_plugin_manager`. As in llm and
datasette, the built-ins (:data:`DEFAULT_PLUGINS`) are imported and registered by module
name every time, so they cannot be unloaded, whatever ``CBK_LOAD_PLUGINS`` says and
whichever copy of the package is installed. Third-party plugins come from the
``codabench_kit`` entry-point group, each imported on its own: one that fails to import
is recorded (``PluginManager.load_failures``) instead of breaking the others.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

import pluggy

from codabench_kit import PROJECT_NAME
from codabench_kit.components import hookspecs

LOAD_PLUGINS_ENV = "CBK_LOAD_PLUGINS"
"""Comma-separated entry-point names of third-party plugins to load; unset loads every
one, empty loads none. The built-ins are always loaded."""

DEFAULT_PLUGINS = {
    "cleaners": "codabench_kit.plugins.cleaners",
    "augmenters": "codabench_kit.plugins.augmenters",
    "backbones": "codabench_kit.plugins.backbones",
    "tta": "codabench_kit.plugins.tta",
    "kerascv": "codabench_kit.plugins.kerascv",
    "hub": "codabench_kit.plugins.hub",
}
"""The built-in plugins: plugin name -> module. Each is written as a third-party plugin
would be (``@hookimpl`` functions in a module); only their registration differs."""

BUILTIN_DISTRIBUTION = "codabench-kit"


@dataclass(frozen=True)
class LoadFailure:
    """A plugin whose entry point could not be imported."""

    name: str
    value: str
    distribution: str
    error: str


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and which failed."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.load_failures: list[LoadFailure] = []
        self.distributions: dict[str, str] = {}
        """Plugin name -> the distribution that provides it."""

    def load_defaults(self) -> None:
        """Register every built-in plugin (:data:`DEFAULT_PLUGINS`)."""
        for name, module in DEFAULT_PLUGINS.items():
            if self.get_plugin(name) is None:
                self.register(importlib.import_module(module), name=name)
                self.distributions[name] = BUILTIN_DISTRIBUTION

    def load_entrypoints(self, group: str = PROJECT_NAME, only: set[str] | None = None) -> None:
        """Register the entry points of ``group`` (those named in ``only``, if given)."""
        for ep in metadata.entry_points(group=group):
            if only is not None and ep.name not in only:
                continue
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue  # a built-in's name, or one already loaded
            dist = ep.dist.name if ep.dist is not None else "?"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break cbk
                self.load_failures.append(
                    LoadFailure(ep.name, ep.value, dist, f"{type(exc).__name__}: {exc}")
                )
                continue
            self.register(plugin, name=ep.name)
            self.distributions[ep.name] = dist


def plugins_to_load(environ=os.environ) -> set[str] | None:
    """The entry-point names ``CBK_LOAD_PLUGINS`` asks for; ``None`` (all) when unset."""
    value = environ.get(LOAD_PLUGINS_ENV)
    return None if value is None else {n.strip() for n in value.split(",") if n.strip()}


def get_plugin_manager(load_entrypoints: bool = True) -> PluginManager:
    """Return a new plugin manager with the hook specs, the built-in plugins and, by
    default, the third-party entry-point plugins of the ``codabench_kit`` group
    (narrowed by ``CBK_LOAD_PLUGINS=a,b``).

    ``check_pending`` runs last, so a misspelt hook name fails here, at once.
    """
    pm = PluginManager()
    pm.load_defaults()
    if load_entrypoints:
        pm.load_entrypoints(only=plugins_to_load())
    pm.check_pending()
    return pm
