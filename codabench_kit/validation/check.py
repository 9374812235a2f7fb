"""One check of a validation run: the unit that ``cbk validate`` prints and judges by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One stage's verdict; ``detail`` is a single line meant for the user."""

    name: str
    ok: bool
    detail: str
