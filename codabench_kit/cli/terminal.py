"""The CLI's progress on a terminal: lines on stderr, bars when it is a terminal."""

from __future__ import annotations

import sys
import time

import click

from codabench_kit.progress import NullBar


class TerminalProgress:
    """The CLI's progress: lines on stderr (none with ``quiet``), kept with their times
    for the build's log; bars on stderr when it is a terminal."""

    def __init__(self, *, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream
        self.started = time.perf_counter()
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(f"[{time.perf_counter() - self.started:8.1f} s] {line}")
        if not self.quiet:
            click.echo(line, err=True)

    def bar(self, label: str, total: int):
        stream = self.stream or sys.stderr
        if self.quiet or not stream.isatty():
            return NullBar()
        return click.progressbar(length=total, label=label, file=stream, show_eta=True,
                                 show_percent=True)

    def log_text(self) -> str:
        return "\n".join(self.lines) + "\n"
