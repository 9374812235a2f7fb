"""What is installed: the plugins, the components each registers, the defaults, and the
plugins that failed to load (``cbk plugins``; like datasette's ``get_plugins()``)."""

from __future__ import annotations

from typing import Any

from codabench_kit.components.selection import DEFAULTS


def get_plugins(pm, registry, kind: str | None = None) -> dict[str, Any]:
    """JSON-ready: ``plugins`` (name, distribution, hooks, components), ``components``
    (of ``kind``, or all), ``defaults`` per kind and ``failed`` plugins."""
    return {
        "plugins": [
            {"name": name, "distribution": pm.distributions.get(name, "?"),
             "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
             "components": [c.name for c in registry.components() if c.provider == name]}
            for name, plugin in sorted(pm.list_name_plugin())
        ],
        "components": [c.to_dict() for c in registry.components(kind)],
        "defaults": DEFAULTS,
        "failed": [vars(f) for f in pm.load_failures],
    }


def component_lines(registry, kind: str | None = None) -> list[str]:
    """One line per component (kind, name, provider, default mark, description), one for
    its options and one for the training recipe it recommends, if any."""
    lines = []
    for component in registry.components(kind):
        default = " (default)" if component.name in DEFAULTS[component.kind] else ""
        lines.append(f"{component.kind:<10} {component.name:<12} [{component.provider}]"
                     f"{default} {component.description}")
        options = ", ".join(f"{k}={v!r}" for k, v in component.options.items())
        if options:
            lines.append(f"{'':<24}options: {options}")
        recommended = _recommended_recipe(component)
        if recommended:
            lines.append(f"{'':<24}recommends: {recommended}")
    return lines


def _recommended_recipe(component) -> str:
    """``train.ema=True, ...`` for a backbone's recommended recipe, checked as a build
    checks it; a bad one is listed with its error instead of stopping the listing."""
    from codabench_kit.errors import PluginError
    from codabench_kit.training.recipe import recommended_by

    try:
        recommended = recommended_by(component)
    except PluginError as exc:
        return f"(invalid: {exc})"
    return ", ".join(f"{section}.{key}={value!r}" for section, values in recommended.items()
                     for key, value in values.items())


def failure_lines(pm) -> list[str]:
    """One line per plugin that failed to load, with its error."""
    return [f"FAILED     plugin {f.name!r} ({f.distribution}, {f.value}): {f.error}"
            for f in pm.load_failures]
