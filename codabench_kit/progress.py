"""Progress: lines for the log, bars for a person at a terminal.

Core code reports through a ``progress`` callable that takes one line. A long step also
asks for a bar with :func:`bar`: the CLI's :class:`TerminalProgress` draws it on stderr
when stderr is a terminal (and not ``--quiet``); any other callable (tests, the Python
API, a log) gets a bar that does nothing, so core code never checks where it runs.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import click


class NullBar:
    """A bar that draws nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, steps: int = 1) -> None:
        pass


def bar(progress: Callable[[str], None], label: str, total: int):
    """A context manager with ``update(steps)``: ``progress``'s bar if it draws one."""
    factory = getattr(progress, "bar", None)
    return factory(label, total) if factory is not None and total > 0 else NullBar()


def predict_callbacks(progress, label: str, steps: int) -> list:
    """Keras callbacks for ``model.predict``: a bar over its batches where ``progress``
    draws bars; none otherwise."""
    if progress is None or getattr(progress, "bar", None) is None:
        return []
    import keras

    class PredictBar(keras.callbacks.Callback):
        def on_predict_begin(self, logs=None):
            self.steps = bar(progress, label, steps)
            self.steps.__enter__()

        def on_predict_batch_end(self, batch, logs=None):
            self.steps.update(1)

        def on_predict_end(self, logs=None):
            self.steps.__exit__(None, None, None)

    return [PredictBar()]


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
