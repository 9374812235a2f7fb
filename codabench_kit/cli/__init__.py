"""The ``cbk`` command line: parsing, then one library call per command."""

from codabench_kit.cli.group import cli, main

__all__ = ["cli", "main"]
