"""Backbone weights: ``imagenet``, ``none`` or a path, with clear errors offline.

Plugins that wrap ``keras.applications`` call :func:`build_application` so that every
backbone handles ``--weights`` the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from codabench_kit.errors import BuildError


def normalize_weights(weights: str | None) -> str | None:
    """``"none"``/``None`` -> ``None``; ``"imagenet"`` stays; anything else must be an existing file."""
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BuildError(
            f"expected --weights to be 'imagenet', 'none' or the path of a weights file; "
            f"received {weights!r}, which is not an existing file"
        )
    return str(path.resolve())


def build_application(constructor: Callable[..., Any], weights: str | None, name: str,
                      **kwargs: Any):
    """Call a ``keras.applications`` constructor with ``include_top=False``.

    ``imagenet`` lets Keras download (or reuse its cache); offline this fails with a
    :class:`BuildError` naming ``--weights none|PATH``. A path is loaded after building.
    """
    if weights == "imagenet":
        try:
            return constructor(include_top=False, weights="imagenet", **kwargs)
        except Exception as exc:
            raise BuildError(
                f"could not get ImageNet weights for {name}: {type(exc).__name__}: {exc}. "
                f"Offline, pass --weights none (train from scratch) or --weights PATH "
                f"(a .weights.h5 file for this backbone)"
            ) from None
    model = constructor(include_top=False, weights=None, **kwargs)
    if weights is not None:
        try:
            model.load_weights(weights)
        except Exception as exc:
            raise BuildError(
                f"the weights file {weights} does not fit backbone {name}: "
                f"{type(exc).__name__}: {str(exc)[:300]}"
            ) from None
    return model
