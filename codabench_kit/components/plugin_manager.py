"""Creating the plugin manager and loading plugins from entry points.

Nothing is loaded at import time: call :func:`get_plugin_manager`. Each entry point of
the ``codabench_kit`` group is imported on its own, so a plugin that fails to import is
recorded by name (``PluginManager.load_failures``) instead of breaking the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata

import pluggy

from codabench_kit import PROJECT_NAME
from codabench_kit.components import hookspecs

LOAD_PLUGINS_ENV = "CBK_LOAD_PLUGINS"
"""Comma-separated entry-point names to load; unset loads all, empty loads none."""


@dataclass(frozen=True)
class LoadFailure:
    """A plugin whose entry point could not be imported."""

    name: str
    value: str
    distribution: str
    error: str


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which entry points failed to load."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.load_failures: list[LoadFailure] = []
        self.distributions: dict[str, str] = {}
        """Plugin name -> the distribution that provides it (entry-point plugins only)."""

    def load_entrypoints(self, group: str = PROJECT_NAME, only: set[str] | None = None) -> None:
        for ep in metadata.entry_points(group=group):
            if only is not None and ep.name not in only:
                continue
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name):
                continue
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


def get_plugin_manager(load_entrypoints: bool = True) -> PluginManager:
    """Return a new plugin manager with the hook specs added and, by default, every
    entry-point plugin of the ``codabench_kit`` group loaded (the built-ins included).

    ``CBK_LOAD_PLUGINS=a,b`` narrows loading to those entry-point names.
    """
    pm = PluginManager()
    if load_entrypoints:
        only_env = os.environ.get(LOAD_PLUGINS_ENV)
        only = None if only_env is None else {n.strip() for n in only_env.split(",") if n.strip()}
        pm.load_entrypoints(only=only)
    pm.check_pending()
    return pm
