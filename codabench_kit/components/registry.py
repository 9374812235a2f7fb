"""The component registry: name -> factory, collected from the plugins' register hooks.

Like timm's registry without its import-time globals: a :class:`Registry` is built from
a plugin manager on demand, names are unique across kinds, and an unknown name gets a
did-you-mean.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from codabench_kit.errors import (DuplicateComponentError, PluginError, UnknownComponentError,
                                  with_article)

KINDS = ("cleaner", "augmenter", "backbone", "tta")
"""Component kinds, in pipeline order."""

_HOOKS = {
    "cleaner": "register_cleaners",
    "augmenter": "register_augmenters",
    "backbone": "register_backbones",
    "tta": "register_tta",
}


RESERVED_ARGUMENTS = {"augmenter": ("seed",), "backbone": ("input_shape", "weights")}
"""Factory arguments that cbk passes itself, by kind (see the hooks); never options."""


class Register(Protocol):
    """The callback each ``register_<kind>`` hook receives: call it once per component."""

    def __call__(self, name: str, factory: Callable[..., Any], *, description: str = "",
                 options: dict[str, Any] | None = None, **metadata: Any) -> None:
        """Register ``factory`` under ``name``. ``options`` maps each option to its default
        (the default's type is the option's type); left out, they are the factory's
        keyword arguments with defaults, but for those cbk passes itself (an augmenter's
        ``seed``, a backbone's ``input_shape`` and ``weights``).
        ``metadata`` is kept with the component (e.g. ``pretrained=True``)."""


def signature_options(factory: Callable[..., Any], kind: str) -> dict[str, Any]:
    """The options of a ``kind`` ``factory`` read from its signature: each keyword argument
    with a default, but those cbk passes itself (:data:`RESERVED_ARGUMENTS`); tuples
    become lists."""
    reserved = RESERVED_ARGUMENTS.get(kind, ())
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return {}
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: list(p.default) if isinstance(p.default, tuple) else p.default
            for p in parameters
            if p.kind in keyword and p.default is not inspect.Parameter.empty
            and p.name not in reserved}


@dataclass(frozen=True)
class Component:
    """One registered component: a named factory with metadata. Listing never calls it."""

    name: str
    kind: str
    factory: Callable[..., Any] = field(repr=False)
    provider: str
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def create(self, **kwargs: Any) -> Any:
        """Call the factory; ``kwargs`` are the resolved options plus kind-specific arguments."""
        return self.factory(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "provider": self.provider,
            "description": self.description,
            "options": dict(self.options),
            **({"metadata": dict(self.metadata)} if self.metadata else {}),
        }


class Registry:
    """All components registered by the loaded plugins, by unique name."""

    def __init__(self) -> None:
        self._components: dict[str, Component] = {}
        self.load_failures: list = []

    @classmethod
    def from_plugin_manager(cls, pm) -> "Registry":
        registry = cls()
        registry.load_failures = list(getattr(pm, "load_failures", []))
        for kind, hook_name in _HOOKS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                provider = impl.plugin_name

                def register(name, factory, *, description="", options=None, _kind=kind,
                             _provider=provider, **metadata):
                    if options is None:
                        options = signature_options(factory, _kind)
                    registry.add(Component(name=name, kind=_kind, factory=factory,
                                           provider=_provider, description=description,
                                           options=dict(options), metadata=metadata))

                try:
                    impl.function(register)
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        f"plugin {provider!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                    ) from exc
        return registry

    def add(self, component: Component) -> None:
        if not component.name or not isinstance(component.name, str):
            raise PluginError(
                f"plugin {component.provider!r} registered a {component.kind} with an invalid "
                f"name: {component.name!r}"
            )
        if not callable(component.factory):
            raise PluginError(
                f"plugin {component.provider!r} registered {component.name!r} with a factory "
                f"that is not callable: {component.factory!r}"
            )
        existing = self._components.get(component.name)
        if existing is not None:
            raise DuplicateComponentError(
                f"component name {component.name!r} is registered twice: as a {existing.kind} "
                f"by plugin {existing.provider!r} and as a {component.kind} by plugin "
                f"{component.provider!r}; names must be unique across all kinds"
            )
        self._components[component.name] = component

    def __contains__(self, name: str) -> bool:
        return name in self._components

    def __len__(self) -> int:
        return len(self._components)

    def components(self, kind: str | None = None, pattern: str = "*") -> list[Component]:
        """Registered components, optionally of one kind and matching a glob, by name."""
        return sorted(
            (c for c in self._components.values()
             if (kind is None or c.kind == kind) and fnmatch.fnmatch(c.name, pattern)),
            key=lambda c: (KINDS.index(c.kind), c.name),
        )

    def get(self, name: str, kind: str | None = None) -> Component:
        """The component called ``name``; an unknown name raises with a did-you-mean."""
        component = self._components.get(name)
        if component is not None and (kind is None or component.kind == kind):
            return component
        if component is not None:
            raise UnknownComponentError(
                f"{name!r} is {with_article(component.kind)}, not {with_article(kind)}"
            )
        pool = [c.name for c in self.components(kind)]
        close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        broken = ""
        if self.load_failures:
            names = ", ".join(f.name for f in self.load_failures)
            broken = f" (plugins that failed to load: {names})"
        what = f"{kind} " if kind else "component "
        raise UnknownComponentError(
            f"unknown {what}{name!r}.{hint} Run `cbk plugins` to list the installed "
            f"components{broken}."
        )
