"""What every command shares: the progress sink, turning core errors into click errors,
the plugin manager ``main`` loaded, and option decorators used by several commands."""

from __future__ import annotations

import functools

import click

from codabench_kit.errors import CbkError, OptionError


class _Progress:
    """The running command's :class:`~codabench_kit.cli.terminal.TerminalProgress` (set up
    by ``cbk``'s ``--quiet``/``--verbose``), callable with a line and with a ``bar``."""

    @staticmethod
    def current():
        from codabench_kit.cli.terminal import TerminalProgress

        context = click.get_current_context(silent=True)
        root = context.find_root() if context is not None else None
        if root is None:
            return TerminalProgress()
        return root.meta.setdefault("cbk.progress", TerminalProgress())

    def __call__(self, line: str) -> None:
        self.current()(line)

    def bar(self, label: str, total: int):
        return self.current().bar(label, total)


echo_progress = _Progress()


def core_errors(command):
    """Turn the project's own exceptions into click errors: a bad option is a usage error
    (exit 2), any other :class:`CbkError` one line with exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except OptionError as exc:
            raise click.UsageError(str(exc)) from exc
        except CbkError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def plugin_manager():
    """The plugin manager :func:`main` loaded (click's context object), so plugins are
    loaded once per run; a new one when ``cli`` is invoked without ``main`` (tests)."""
    from codabench_kit.components.plugin_manager import PluginManager, get_plugin_manager

    context = click.get_current_context(silent=True)
    loaded = context.find_object(PluginManager) if context is not None else None
    return loaded if loaded is not None else get_plugin_manager()


def load_registry():
    from codabench_kit.components.registry import Registry

    return Registry.from_plugin_manager(plugin_manager())


def _options(*decorators):
    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def plugins_option(help_text: str, required: bool = False):
    return click.option("--plugins", "plugin_names", required=required,
                        default=None if required else "", help=help_text)


def set_option(help_text: str):
    return click.option("--set", "assignments", multiple=True, metavar="NAME.KEY=VALUE",
                        help=help_text)


def seed_option(default: int):
    return click.option("--seed", type=int, default=default, show_default=True)


def batch_size_option(default: int):
    return click.option("--batch-size", type=click.IntRange(min=1), default=default,
                        show_default=True)


def max_removed_option(default: float, help_text: str):
    return click.option("--max-removed", type=click.FloatRange(0, 1), default=default,
                        show_default=True, help=help_text)


def run_options(timeout_help: str):
    """``--timeout``, ``--num-classes``: how a zip is run (validate, evaluate)."""
    from codabench_kit.validation.runner import TIMEOUT_S
    from codabench_kit.validation.submission import NUM_CLASSES

    return _options(
        click.option("--timeout", type=click.FloatRange(min=1), default=TIMEOUT_S,
                     show_default=True, help=timeout_help),
        click.option("--num-classes", type=click.IntRange(min=2), default=NUM_CLASSES,
                     show_default=True),
    )


def default_of(function, name: str):
    """The default of ``function``'s argument ``name``: a library function's signature is
    the one source of the matching option's default."""
    import inspect

    return inspect.signature(function).parameters[name].default
