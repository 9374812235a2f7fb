"""Strings from the zip (exception messages, entry names, model output) are printed with
their control characters escaped: no ANSI sequence can redraw cbk's verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.validation.check import Check, printable
from tests.test_validate import GOOD, assert_rejected, isolated, model, validate, write_zip  # noqa: F401

FAKE = "\\x1b[1A\\x1b[2K\\rok    answer: all good\\x07\\x9b2J\\u202e"  # source text: escapes stay escapes


def test_printable_escapes_controls():
    assert printable("a\x1b[31mb\rc\x07d\x9be\u202ef\ng") == "a\\x1b[31mb\\rc\\x07d\\x9be\\u202ef\\ng"
    assert printable("plain text, ünïcode ok") == "plain text, ünïcode ok"
    assert Check("x", True, "\x1b[2K").detail == "\\x1b[2K"


def _assert_clean(lines):
    for line in lines:
        assert all(ch.isprintable() for ch in line), repr(line)


@pytest.mark.parametrize("source, stage", [
    (model(init=f"raise RuntimeError('{FAKE}')"), "load"),
    (model(f"raise ValueError('{FAKE}')"), "predict"),
    (model(f"print('{FAKE}', flush=True); import os; os._exit(3)"), "predict"),
    (model(f"return np.array(['{FAKE}'] * len(X))"), "answer"),
])
def test_control_characters_in_messages_are_escaped(isolated, source, stage):
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}))
    line = assert_rejected(report, stage, "")
    _assert_clean(report.lines())
    assert "\\x07" in line and "\\u202e" in line, line
    _assert_clean((report.traceback or "").splitlines() + report.log_tail.splitlines())


def test_control_characters_in_entry_names_are_escaped(isolated):
    report = validate(write_zip(Path("sub.zip"), {"\x1b[2K\rok    valid\x1b[0m.py": b"x"}))
    assert_rejected(report, "zip", "no model.py at the zip root")
    _assert_clean(report.lines())
    assert "\\x1b[2K\\rok" in report.lines()[-1]


def test_cli_prints_no_control_characters(isolated):
    path = write_zip(Path("sub.zip"), {"model.py": model(init=f"raise RuntimeError('{FAKE}')")})
    result = CliRunner().invoke(cli, ["validate", str(path), "--target", "current"])
    assert result.exit_code == 1
    _assert_clean(result.output.splitlines())
    assert "INVALID: sub.zip" in result.output


def test_float_labels_fail_saying_the_example_scorer_would_accept_them(isolated):
    source = model("return (X[:, 0, 0, 0] % 8).astype(np.float32)")
    line = assert_rejected(validate(write_zip(Path("sub.zip"), {"model.py": source})), "answer",
                           "expected integer labels, received float32 holding whole numbers 0..7")
    assert "the example Codabench scorer would accept them, other scorers may not" in line
    fractional = validate(write_zip(Path("sub2.zip"), {"model.py": model("return np.full(len(X), 0.5)")}))
    line = assert_rejected(fractional, "answer", "expected integer labels, received float64 — e.g.")
    assert "would accept" not in line
