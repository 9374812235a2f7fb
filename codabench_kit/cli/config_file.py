"""cbk.toml: every option of ``cbk build`` in one file, and ``cbk init``'s starter.

Precedence: the command line, then the file, then the defaults. The file holds
``plugins = [...]``, a ``[build]`` table with the command's options (``epochs = 30``,
``data = "training_set.npz"``, ...: the long option names, ``-`` or ``_``), ``[head]``
and ``[train]`` for the recipe, and one table per component with its options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from codabench_kit.errors import OptionError

BUILD_TABLE = "build"
NOT_IN_FILE = ("config", "plugin_names", "assignments")
"""``cbk build`` parameters a config file cannot set (``plugins`` is top-level)."""


def apply_build_table(ctx: click.Context, table: dict[str, Any], source: str) -> None:
    """Fill ``ctx.params`` from the file's ``[build]`` table where the command line left
    a parameter at its default; each value is converted and checked by its click type."""
    params = {p.name: p for p in ctx.command.params if p.name not in NOT_IN_FILE}
    for key, value in table.items():
        name = key.replace("-", "_")
        param = params.get(name)
        if param is None:
            raise OptionError(f"{source}: [build] has no option {key!r}; its options: "
                              + ", ".join(sorted(params)))
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
            continue  # the command line wins
        try:
            converted = param.type_cast_value(ctx, value)
            if param.callback is not None:
                converted = param.callback(ctx, param, converted)
        except click.BadParameter as exc:
            raise OptionError(f"{source}: [build] {key} = {value!r}: {exc.message}") from None
        ctx.params[name] = converted


def starter_config(command: click.Command, registry) -> str:
    """A commented cbk.toml with every option of ``cbk build`` at its default."""
    from codabench_kit.components.selection import DEFAULTS
    from codabench_kit.training.recipe import Recipe

    lines = [
        "# cbk.toml: the options of `cbk build` (the command line wins over this file,",
        "# this file over the defaults). Uncomment and edit what you change.",
        "",
        "# Components in order: a backbone, cleaners, augmenters, one TTA strategy",
        "# (`cbk plugins` lists them). Empty: the defaults below.",
        f"# plugins = {_toml(_default_plugins(DEFAULTS))}",
        "plugins = []",
        "",
        f"[{BUILD_TABLE}]",
    ]
    for param in command.params:
        if param.name in NOT_IN_FILE or not isinstance(param, click.Option):
            continue
        help_text = " ".join((param.help or "").split())
        if help_text:
            lines.append(f"# {help_text}")
        default = param.default
        value = "false" if param.is_flag and not default else _toml(default)
        key = param.name
        lines.append(f"# {key} = {value}" if default is not None else f"# {key} = ...")
    recipe = Recipe.from_settings({}).to_dict()
    for section in ("head", "train"):
        lines += ["", f"[{section}]"]
        if section == "train":
            lines.append("# A backbone may recommend other values (`cbk plugins` lists them "
                         "as recommends:); this table and --set win over them.")
        lines += [f"# {key} = {_toml(value)}" for key, value in recipe[section].items()]
    for kind in ("backbone", "cleaner", "augmenter", "tta"):
        for name in DEFAULTS[kind]:
            component = registry.get(name, kind)
            if not component.options:
                continue
            lines += ["", f"# [{name}]  # {kind}: {component.description}"]
            lines += [f"# {key} = {_toml(value)}" for key, value in component.options.items()]
    return "\n".join(lines) + "\n"


def write_starter(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, never over an existing file."""
    from codabench_kit.packaging.bundle import write_new_file

    return write_new_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _default_plugins(defaults) -> list[str]:
    return [*defaults["backbone"], *defaults["cleaner"], *defaults["augmenter"],
            *defaults["tta"]]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if value is None:
        return '""'
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
