"""Option checks for component factories, built-in and third-party alike.

Each returns the value (converted where it says so) or raises an
:class:`~codabench_kit.errors.OptionError` that names ``component.key``, says what was
expected and echoes what was received, so every plugin's bad option reads the same.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

from codabench_kit.errors import OptionError


def check_choice(component: str, key: str, value: Any, allowed: Iterable) -> Any:
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise OptionError(
            f"{component}.{key} expects one of {', '.join(map(str, allowed))}; "
            f"received {value!r}"
        )
    return value


def check_unit(component: str, key: str, value: Any) -> float:
    """``value`` as a float if it is a number in [0, 1] (not a bool or a string)."""
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real) \
            or not 0.0 <= float(value) <= 1.0:
        raise OptionError(f"{component}.{key} expects a number in [0, 1]; received {value!r}")
    return float(value)


def check_positive(component: str, key: str, value: Any) -> float:
    """``value`` as a float if it is a number > 0 (not a bool or a string)."""
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real) or not value > 0:
        raise OptionError(f"{component}.{key} expects a number > 0; received {value!r}")
    return float(value)


def check_int(component: str, key: str, value: Any, *, low: int) -> int:
    """``value`` as an int if it is an integer >= ``low`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise OptionError(f"{component}.{key} expects an integer >= {low}; received {value!r}")
    return int(value)
