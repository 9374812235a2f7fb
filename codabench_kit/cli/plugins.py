"""``cbk plugins``, ``cbk new-plugin`` and ``cbk completion``: what is installed, a new
plugin of one's own, and the shell's completion of it all."""

from __future__ import annotations

import json

import click

from codabench_kit.cli.shared import core_errors, plugin_manager
from codabench_kit.components.registry import KINDS


@click.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--kind", type=click.Choice(KINDS), default=None,
              help="Only components of this kind.")
@core_errors
def plugins_command(as_json, kind):
    """List installed plugins and the components each provides.

    \b
    Examples:
      cbk plugins
      cbk plugins --json --kind backbone
    """
    from codabench_kit.components.listing import component_lines, failure_lines, get_plugins
    from codabench_kit.components.registry import Registry

    pm = plugin_manager()
    registry = Registry.from_plugin_manager(pm)
    if as_json:
        click.echo(json.dumps(get_plugins(pm, registry, kind), indent=2, default=str))
        return
    for line in component_lines(registry, kind):
        click.echo(line)
    for line in failure_lines(pm):
        click.echo(line, err=True)


@click.command(name="new-plugin")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(KINDS),
              help="The kind of component the plugin registers.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Existing folder to create the plugin's folder in.")
@core_errors
def new_plugin_command(name, kind, directory):
    """Create an installable plugin package NAME that registers one working component:
    pyproject.toml with the codabench_kit entry point, the module, a test, a README.

    NAME is a distribution name: cbk-example gives the module cbk_example and the
    component example. Nothing is written if NAME's folder exists or NAME clashes with
    an installed plugin. docs/writing-plugins.md goes on from there.

    \b
    Examples:
      cbk new-plugin cbk-example --kind augmenter
      cbk new-plugin cbk-blank-frames --kind cleaner --dir ~/src
      cd cbk-example && pip install -e . && pytest && cbk build --plugins example
    """
    import shlex

    from codabench_kit.components.scaffold import new_plugin

    plugin = new_plugin(name, kind, directory)
    click.echo(f"created {plugin.path}: the {kind} {plugin.names.component!r} in "
               f"{plugin.names.module}.py")
    click.echo("next:")
    for line in (f"cd {shlex.quote(str(plugin.path))}",
                 "pip install -e .                # then `cbk plugins` lists it",
                 "pytest                          # its own tests",
                 f"cbk build --plugins {plugin.names.component}"):
        click.echo(f"  {line}")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script for cbk (commands, options, choices).

    \b
    Examples:
      cbk completion bash >> ~/.bashrc
      cbk completion zsh > ~/.zfunc/_cbk
      cbk completion fish > ~/.config/fish/completions/cbk.fish
    """
    from click.shell_completion import get_completion_class

    group = click.get_current_context().find_root().command  # the `cbk` group
    completer = get_completion_class(shell)(group, {}, "cbk", "_CBK_COMPLETE")
    click.echo(completer.source())
