"""Train on JAX, package on TensorFlow: the split a GPU machine without TensorFlow relies on.

``cbk build`` with ``KERAS_BACKEND=jax`` trains, keeps the run folder and stops (no zip);
``cbk package RUN_DIR`` on TensorFlow then exports the SavedModel, checks it against the
JAX-trained model's probabilities, validates and publishes the zip. Each step runs in its
own process, since Keras fixes its backend at import. About 60 s on 2 CPU cores.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

TINY = ["--demo-size", "12", "--epochs", "1", "--set", "cnn.width=8",
        "--plugins", "flip-tta"]


def cbk(*args, backend, timeout=300):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "codabench_kit", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def explain(result):
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.mark.slow
def test_train_on_jax_then_package_on_tensorflow(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("needs jax installed beside tensorflow (pip install jax jaxlib) to train "
                    "on the JAX backend")
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs tensorflow to package the JAX-trained run")
    out = tmp_path / "x.zip"
    run_dir = tmp_path / "x.run"

    built = cbk("build", *TINY, "--out", out, backend="jax")
    assert built.returncode == 0, explain(built)
    assert re.search(r"^backend: keras \S+ on jax,", built.stderr, re.M), explain(built)
    assert built.stdout.strip().splitlines()[-1] == str(run_dir)
    assert f"cbk package {run_dir} --out {out}" in built.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.run"]  # no zip, no heldout
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "classifier.weights.h5", "heldout.npz", "run.json"]
    assert json.loads((run_dir / "run.json").read_text())["training"]["backend"] == "jax"

    packaged = cbk("package", run_dir, "--out", out, backend="tensorflow")
    assert packaged.returncode == 0, explain(packaged)
    assert packaged.stdout.strip().splitlines()[-1] == str(out)
    assert out.is_file() and (tmp_path / "x.heldout.npz").is_file()
    fidelity = re.search(r"max \|dp\| (\S+), (\d+)/(\d+) labels equal", packaged.stderr)
    assert fidelity, explain(packaged)
    assert float(fidelity.group(1)) <= 1e-4
    assert fidelity.group(2) == fidelity.group(3) and int(fidelity.group(3)) > 0
    assert "ok    answer" in packaged.stderr
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["training"]["backend"] == "jax"
    assert manifest["fidelity"]["labels_equal"] == manifest["fidelity"]["n"]
