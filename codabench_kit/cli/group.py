"""The ``cbk`` group: global options, the commands, and :func:`main`, which loads plugins
(and their commands) before running it.

Imports of TensorFlow/Keras happen inside command bodies, so ``cbk --help`` and
``cbk plugins`` answer at once. Each command parses its options and makes one library
call; core errors (:class:`~codabench_kit.errors.CbkError`) become click errors.
"""

from __future__ import annotations

import click

from codabench_kit import __version__
from codabench_kit.cli.build import build, init
from codabench_kit.cli.data import augment, clean
from codabench_kit.cli.plugins import completion, new_plugin_command, plugins_command
from codabench_kit.cli.submission import evaluate, history, package, repack, validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cbk")
@click.option("-q", "--quiet", is_flag=True, help="Print results and errors only: no "
              "progress lines or bars (a build's log still has them).")
@click.option("-v", "--verbose", is_flag=True, help="Also print TensorFlow's own messages "
              "(hidden by default).")
@click.pass_context
def cli(ctx, quiet, verbose):
    """codabench-kit: from a competition's training file to a Codabench submission
    that is proven to run.

    \b
    Examples:
      cbk build                                  # offline demo -> submissions/*.zip
      cbk build --plugins mobilenet,augmix --data training_set.npz --weights imagenet
      cbk validate submissions/cbk-cnn-20261122-101500.zip
      cbk plugins --json
      cbk -q build --config cbk.toml                # the zip's path only
    """
    import os

    from codabench_kit.cli.terminal import TerminalProgress

    ctx.meta["cbk.progress"] = TerminalProgress(quiet=quiet)
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:  # TensorFlow's C++ and Python chatter (tracing warnings, oneDNN notes)
        import logging

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "2")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


for command in (build, init, completion, clean, augment, package, validate, repack, evaluate,
                plugins_command, new_plugin_command, history):
    cli.add_command(command)


def main(argv=None):
    """Entry point: load plugins and their commands, then run the CLI."""
    from codabench_kit.components.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    try:
        pm.hook.register_commands(cli=cli)
    except Exception as exc:  # a broken plugin command must not take the CLI down
        click.echo(f"warning: a plugin failed to add its commands: {exc}", err=True)
    return cli.main(args=argv, prog_name="cbk", obj=pm)
