"""Parity (a cbk zip's probe against the trained model) and budgets in ``cbk validate``.

The fast tests use numpy-only submissions in this interpreter. The slow one builds a tiny
real submission and validates it in the ``codabench`` target (TF 2.17.0 + Keras 3.4.1,
made once with pip and cached); it skips, saying why, when that venv cannot be made.
"""

from __future__ import annotations

import io
import re
import textwrap
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.validation import validate_zip
from codabench_kit.validation.fidelity import Budget

PROBE = np.random.default_rng(4).integers(0, 256, size=(6, 96, 96, 3), dtype=np.uint8)


def softmax_of_pixels(images):
    """What the fake model computes: a softmax over 8 pixel values per image."""
    logits = images.reshape(len(images), -1)[:, :8].astype(np.float64) / 64.0
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def fake_zip(path, *, proba_body="return softmax(X)", probe=True, shift=0.0, extra=""):
    source = textwrap.dedent(f"""\
        import time
        import numpy as np

        def softmax(X):
            logits = X.reshape(len(X), -1)[:, :8].astype(np.float64) / 64.0
            e = np.exp(logits - logits.max(-1, keepdims=True))
            return (e / e.sum(-1, keepdims=True)).astype(np.float32)

        class Model:
            def predict(self, X):
                {extra}
                return softmax(X).argmax(-1)
        """)
    if proba_body:
        source += textwrap.indent(f"\ndef predict_proba(self, X):\n    {proba_body}\n", "    ")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", source)
        if probe:
            buffer = io.BytesIO()
            np.savez(buffer, images=PROBE, probabilities=softmax_of_pixels(PROBE) + shift)
            archive.writestr("probe.npz", buffer.getvalue())
    return path


def check(report, name):
    return next(c for c in report.checks if c.name == name)


def test_parity_holds_when_the_submission_computes_what_the_build_measured(tmp_path):
    report = validate_zip(fake_zip(tmp_path / "a.zip"), timeout=60)
    parity = check(report, "parity")
    assert report.ok and parity.ok
    assert parity.detail.startswith("probe of 6 images: max |dp| 0.0e+00")
    assert "6/6 labels equal" in parity.detail


def test_parity_fails_beyond_the_tolerance(tmp_path):
    report = validate_zip(fake_zip(tmp_path / "a.zip", shift=1e-3), timeout=60)
    parity = check(report, "parity")
    assert not report.ok and not parity.ok
    assert "max |dp| 1.0e-03" in parity.detail and "tolerance 0.0001" in parity.detail


@pytest.mark.parametrize("body, message", [
    (None, "received Model has no predict_proba method"),
    ("raise RuntimeError('no probabilities here')",
     "predict_proba on the parity probe raised: RuntimeError: no probabilities here"),
    ("return np.array(['a'] * len(X))", "received strings"),
    ("return softmax(X)[:, :4]", "expected probabilities of shape (6, 8) on the probe, "
                                 "received (6, 4)"),
])
def test_a_broken_predict_proba_fails_parity_with_one_line(tmp_path, body, message):
    report = validate_zip(fake_zip(tmp_path / "a.zip", proba_body=body), timeout=60)
    assert [c.name for c in report.checks if not c.ok] == ["parity"]
    assert message in check(report, "parity").detail


def test_a_zip_without_probe_is_not_checked_for_parity_and_says_so(tmp_path):
    lines = []
    report = validate_zip(fake_zip(tmp_path / "a.zip", probe=False), timeout=60,
                          progress=lines.append)
    assert report.ok and "parity" not in [c.name for c in report.checks]
    assert any(line.startswith("parity: not checked") for line in lines)


def test_budget_projects_the_hidden_test_set(tmp_path):
    path = fake_zip(tmp_path / "a.zip", extra="time.sleep(0.002 * len(X))")
    ok = validate_zip(path, timeout=60, budget=Budget(hidden_images=100))
    line = check(ok, "budget").detail
    assert ok.ok and line.startswith("100 hidden images in about")
    slow = validate_zip(path, timeout=60, budget=Budget(time_limit_s=10, hidden_images=10_000))
    assert not slow.ok
    assert "is over the 10 s limit" in check(slow, "budget").detail


@pytest.mark.parametrize("limits, message", [
    ({"max_zip_mb": 1e-4}, "MB limit"),
    ({"max_memory_mb": 1.0}, "peak memory"),
])
def test_budget_fails_on_zip_size_and_memory(tmp_path, limits, message):
    report = validate_zip(fake_zip(tmp_path / "a.zip"), timeout=60, budget=Budget(**limits))
    assert not report.ok and message in check(report, "budget").detail


def test_cli_budget_and_target_options(tmp_path):
    path = str(fake_zip(tmp_path / "a.zip"))
    result = CliRunner().invoke(cli, ["validate", path, "--target", "current",
                                      "--hidden-images", "50"])
    assert result.exit_code == 0, result.output
    assert "ok    parity: probe of 6 images" in result.output
    assert "ok    budget: 50 hidden images" in result.output
    both = CliRunner().invoke(cli, ["validate", path, "--target", "current", "--python", "x"])
    assert both.exit_code == 2 and "expected --target or --python, not both" in both.output
    unknown = CliRunner().invoke(cli, ["validate", path, "--target", "tf1"])
    assert unknown.exit_code == 1
    assert ("unknown target 'tf1'; expected one of: codabench, codabench-example, current"
            in unknown.output)


@pytest.mark.slow
def test_a_built_zip_keeps_parity_in_the_codabench_target(tmp_path):
    """A real cbk zip, run under TF 2.17.0 + Keras 3.4.1 (the codabench target, made with
    pip once and cached), reproduces the trained model's probabilities on its probe within
    1e-4."""
    from codabench_kit.errors import TargetError
    from codabench_kit.validation.targets import target_python

    try:
        python = target_python("codabench", progress=print)
    except TargetError as error:
        pytest.skip(f"the codabench target cannot be made here: {error}")
    out = tmp_path / "tiny.zip"
    built = CliRunner().invoke(cli, ["build", "--demo-size", "12", "--epochs", "1",
                                     "--set", "cnn.width=8", "--plugins", "cnn,d4-tta",
                                     "--out", str(out)])
    assert built.exit_code == 0, built.output
    result = CliRunner().invoke(cli, ["validate", str(out), "--target", "codabench"])
    assert result.exit_code == 0, result.output
    assert f"with {python}" in result.stderr
    parity = re.search(r"ok    parity: probe of (\d+) images: max \|dp\| (\S+) .* (\d+)/(\d+) "
                       r"labels equal", result.output)
    assert parity, result.output
    n, difference, equal, total = parity.groups()
    assert int(n) == int(total) == int(equal) > 0 and float(difference) <= 1e-4
