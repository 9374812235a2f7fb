"""Progress: lines for the log, bars for a person at a terminal.

Core code reports through a ``progress`` callable that takes one line. A long step also
asks for a bar with :func:`bar`: the CLI's ``TerminalProgress`` draws it on stderr
when stderr is a terminal (and not ``--quiet``); any other callable (tests, the Python
API, a log) gets a bar that does nothing, so core code never checks where it runs.
"""

from __future__ import annotations

from typing import Callable


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
