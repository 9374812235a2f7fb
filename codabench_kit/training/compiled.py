"""Running augmenters compiled: one TensorFlow graph (or XLA program) per augmenter.

Run eagerly, an augmenter pays Python and dispatch costs on every op of every batch; the
same ops compiled once run faster (2 CPU cores, ms per image: ``flips`` 0.25 -> 0.04 with
XLA, ``color`` 0.31 -> 0.07, ``augmix`` 0.62 -> 0.45 as a graph). An augmenter opts in
with a class attribute:

``COMPILE = "xla"``
    traced into a ``tf.function`` compiled by XLA, which fuses its element-wise ops; if
    XLA rejects an op, it falls back to a plain graph, once, with a warning.
``COMPILE = "graph"``
    traced into a plain ``tf.function`` (XLA is slower for some ops, convolutions
    folded over the batch among them).

In a plain graph, an augmenter that transforms a random subset of the batch (one with
``probability`` below 1, or ``noise``'s three kinds) gathers the subset, transforms it and
scatters it back, so its cost follows the subset's size (:func:`dynamic_subsets` tells it
so); XLA needs static shapes, so there it transforms the whole batch and selects.

Tracing is plain (``autograph=False``): Python control flow runs once, at trace time, on
static shapes. Opting in promises that every random draw comes from ``keras.random`` with the
augmenter's own ``SeedGenerator`` (so a traced call draws anew each time) and that the
output depends on nothing Python-side that changes between calls. Augmenters without the
attribute (third-party ones, say) run eagerly, exactly as written. Only the TensorFlow
backend compiles: JAX already compiles each op and caches it, and torch runs eagerly.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings

from codabench_kit.backend import import_keras

keras = import_keras()

MODES = ("xla", "graph")

_DYNAMIC_SUBSETS = contextvars.ContextVar("cbk_dynamic_subsets", default=False)


def dynamic_subsets() -> bool:
    """True while an augmenter is traced into a plain TensorFlow graph, where a tensor's
    batch size may be known only at run time (so a random subset can be gathered); False
    eagerly and under XLA."""
    return _DYNAMIC_SUBSETS.get()


@contextlib.contextmanager
def _tracing(mode):
    token = _DYNAMIC_SUBSETS.set(mode == "graph")
    try:
        yield
    finally:
        _DYNAMIC_SUBSETS.reset(token)


def compile_mode(augmenter) -> str | None:
    """How ``augmenter`` will run: ``"xla"``, ``"graph"`` or ``None`` (eagerly)."""
    mode = getattr(augmenter, "COMPILE", None)
    if mode not in MODES or keras.backend.backend() != "tensorflow":
        return None
    return mode


class Compiled:
    """``augmenter`` as a callable on ``(images, labels)`` that runs compiled (see the
    module's docstring); the augmenter itself is left as it is."""

    def __init__(self, augmenter):
        self.augmenter = augmenter
        self.mode = compile_mode(augmenter)
        self._function = None

    def __call__(self, images, labels):
        if self.mode is None:
            return self.augmenter(images, labels)
        import tensorflow as tf

        if self._function is None:
            self._function = tf.function(self.augmenter.__call__, autograph=False,
                                         jit_compile=self.mode == "xla")
        try:
            with _tracing(self.mode):  # read while tracing (first call, new shapes)
                return self._function(images, labels)
        except tf.errors.InvalidArgumentError as error:
            if self.mode != "xla":
                raise
            name = getattr(self.augmenter, "NAME", type(self.augmenter).__name__)
            warnings.warn(f"augmenter {name!r}: XLA cannot compile it "
                          f"({str(error).splitlines()[0][:160]}); running it as a plain graph",
                          RuntimeWarning, stacklevel=2)
            self.mode, self._function = "graph", None
            return self(images, labels)


def compile_chain(augmenters) -> list:
    return [Compiled(augmenter) for augmenter in augmenters]
