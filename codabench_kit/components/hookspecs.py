"""Hook specifications: what a codabench-kit plugin may implement.

Each ``register_<kind>`` hook receives a ``register`` callback. A plugin calls it once
per component it provides::

    @hookimpl
    def register_augmenters(register):
        register("my-aug", make_my_aug, description="...", options={"strength": 0.5})

``register(name, factory, *, description="", options=None, **metadata)`` records a
*factory*; nothing is built while plugins are listed, so ``cbk plugins`` never imports
TensorFlow. Option defaults fix each option's type for ``--set name.key=value``;
without ``options=``, they are read from the factory's signature (its keyword arguments
with defaults; see :class:`~codabench_kit.components.registry.Register`).
Component names are unique across all kinds; a duplicate is an error naming both
providers. The factories' call signatures are documented per hook below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codabench_kit import hookspec
from codabench_kit.components.registry import Register

if TYPE_CHECKING:  # pragma: no cover - typing only
    import click


@hookspec
def register_cleaners(register: Register) -> None:
    """Register data cleaners.

    Called once when the registry is collected.

    :param register: callback ``register(name, factory, description=, options=)``.

    The factory is called as ``factory(**options)`` and returns a callable
    ``clean(images, labels) -> CleanResult`` (see :mod:`codabench_kit.cleaning.run`),
    where ``images`` is uint8 (N, H, W, 3) and ``labels`` int (N,). Cleaners run in
    the order selected, each on what the previous one kept.
    """


@hookspec
def register_augmenters(register: Register) -> None:
    """Register training-time augmenters.

    Called once when the registry is collected.

    :param register: callback ``register(name, factory, description=, options=)``.

    The factory is called as ``factory(seed=int, **options)`` and returns a callable
    ``augment(images, labels) -> (images, labels)`` on a batch: images float32
    (B, H, W, 3) in 0..255, labels one-hot float32 (B, C). It may return backend
    tensors. Augmenters run in the training input pipeline only, never inside the
    exported model.
    """


@hookspec
def register_backbones(register: Register) -> None:
    """Register backbones (feature extractors).

    Called once when the registry is collected.

    :param register: callback ``register(name, factory, description=, options=,
        pretrained=bool, recipe=dict)``. ``pretrained=True`` means the backbone accepts
        ``weights="imagenet"`` or a weights-file path. ``recipe`` (optional) recommends
        training-recipe values for builds with this backbone, e.g.
        ``{"train": {"ema": True}}``: they override the recipe's defaults, and cbk.toml
        and ``--set`` override them (:mod:`codabench_kit.training.recipe`).

    The factory is called as ``factory(input_shape=(H, W, 3), weights=None|"imagenet"|path,
    **options)`` and returns a ``keras.Model`` that maps float32 images in 0..255 to a
    pooled feature vector (B, F), with its preprocessing inside the graph.
    """


@hookspec
def register_tta(register: Register) -> None:
    """Register test-time augmentation (TTA) strategies.

    Called once when the registry is collected.

    :param register: callback ``register(name, factory, description=, options=)``.

    The factory is called as ``factory(**options)`` and returns a callable
    ``views(images) -> list[tensor]`` built from ``keras.ops``; the exported model
    averages the class probabilities of all views, in one batched graph.
    """


@hookspec
def register_commands(cli: "click.Group") -> None:
    """Add commands to the ``cbk`` command-line interface.

    Called once when the CLI starts.

    :param cli: the top-level ``click.Group``; call ``cli.add_command(...)`` or use
        ``@cli.command()``.
    """
