"""The command-line edge: help everywhere, and bad inputs rejected before any work."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli


def commands():
    return sorted(cli.commands)


@pytest.mark.parametrize("command", [[]] + [[name] for name in commands()])
def test_help_on_every_command(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if command:
        assert "Example" in result.output


@pytest.fixture
def invoke_build(tmp_path, monkeypatch):
    """Run ``cbk build ARGS`` in an empty folder; return the result and the files it left."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def invoke(*args):
        result = CliRunner().invoke(cli, ["build", *args])
        return result, sorted(str(p.relative_to(work)) for p in Path(work).rglob("*"))

    return invoke


def test_build_refuses_an_existing_output_before_any_work(tmp_path, invoke_build):
    out = tmp_path / "sub.zip"
    out.write_bytes(b"precious")
    result, _ = invoke_build("--out", str(out))
    assert result.exit_code == 1
    assert "already exists; cbk never overwrites outputs" in result.stderr
    assert out.read_bytes() == b"precious"
    assert "data:" not in result.stderr  # nothing loaded, nothing trained


@pytest.mark.parametrize("args, message", [
    (["--plugins", "efnet"], "unknown component 'efnet'. Did you mean 'effnet'"),
    (["--plugins", "cnn,effnet"], "a build uses one backbone"),
    (["--set", "effnet.variant=s"], "does not use; add it to --plugins"),
    (["--set", "cnn"], "expected --set COMPONENT.OPTION=VALUE"),
    (["--weights", "imagenet"], "backbone 'cnn' has no pretrained weights"),
    (["--plugins", "mobilenet", "--weights", "no/such/file.h5"],
     "expected --weights to be 'imagenet', 'none' or the path of a weights file"),
    (["--out", "sub.tar"], "expected --out to end in .zip"),
    (["--heldout-policy", "mixed:n=99"], "received 'mixed:n=99'"),
    (["--data", "missing.npz"], "missing.npz"),
    (["--set", "train.optimizer=rmsprop"],
     "train.optimizer expects one of adamw, adam, lion, sgd; received 'rmsprop'"),
    (["--set", "train.learning_rat=0.1"], "Did you mean 'learning_rate'?"),
    (["--set", "head.dense=256,wide"], "head.dense expects comma-separated positive widths"),
    (["--plugins", "cnn,d4-tta", "--set", "d4-tta.merge=median"], "d4-tta.merge"),
    (["--set", "train.label_smoothing=1.5"], "train.label_smoothing must be in [0, 1)"),
])
def test_build_bad_inputs_fail_fast_and_write_nothing(invoke_build, args, message):
    result, files = invoke_build(*args)
    assert result.exit_code in (1, 2), result.output
    assert message in result.stderr
    assert files == []


def test_build_bad_data_file_writes_nothing(tmp_path, invoke_build):
    data = tmp_path / "train.npz"
    np.savez(data, images=np.zeros((4, 3, 96, 96), np.uint8), labels=np.zeros(4, np.uint8))
    result, files = invoke_build("--data", str(data))
    assert result.exit_code == 1
    assert "(N, 96, 96, 3)" in result.stderr and "(4, 3, 96, 96)" in result.stderr
    assert files == []


def test_validate_missing_zip(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "nope.zip")])
    assert result.exit_code == 1
    assert "nope.zip" in result.output and "INVALID" in result.output


def test_package_needs_a_run_folder(tmp_path):
    result = CliRunner().invoke(cli, ["package", str(tmp_path), "--out", str(tmp_path / "a.zip")])
    assert result.exit_code == 1
    assert "expected a cbk run folder holding run.json" in result.stderr
    assert not (tmp_path / "a.zip").exists()


def test_completion_script_and_completions():
    import os
    import subprocess
    import sys

    script = CliRunner().invoke(cli, ["completion", "bash"])
    assert script.exit_code == 0 and "_CBK_COMPLETE=bash_complete" in script.output
    env = dict(os.environ, _CBK_COMPLETE="bash_complete", COMP_WORDS="cbk va", COMP_CWORD="1")
    done = subprocess.run([sys.executable, "-m", "codabench_kit"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert "plain,validate" in done.stdout.splitlines()
    bad = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert bad.exit_code == 2 and "'tcsh' is not one of 'bash', 'zsh', 'fish'" in bad.output


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "codabench_kit", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("cbk, version ")
