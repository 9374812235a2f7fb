"""One check of a validation run: the unit that ``cbk validate`` prints and judges by."""

from __future__ import annotations

from dataclasses import dataclass


def printable(text: object) -> str:
    """``text`` with every character a terminal would act on escaped the way ``repr`` does
    (``\\x1b``, ``\\r``, ``\\x07``, ``\\n``, C1 controls, ``\\u202e``...): strings from a zip
    (entry names, exception messages, model output) cannot move the cursor, recolour or
    overwrite cbk's lines."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def printable_lines(text: object) -> str:
    """:func:`printable` line by line, keeping the line breaks (for a traceback or a log tail)."""
    return "\n".join(printable(line) for line in str(text).splitlines())


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True)
class Check:
    """One stage's verdict; ``detail`` is a single line meant for the user, control
    characters escaped (it may quote the zip: see :func:`printable`)."""

    name: str
    ok: bool
    detail: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", printable(self.detail))
