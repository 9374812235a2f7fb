"""``cbk repack``: a zip whose model file the target cannot load, repacked as a SavedModel
that it can, with parity on a probe; and what ``cbk validate`` says about such a zip
first.

The fast tests cover finding the model file, the warning about Python work in the
original predict, and that a failure leaves nothing. The slow ones save a tiny Keras
model with this interpreter's Keras into a real-world-shaped zip (model.py loading
``weights.keras`` or ``weights.h5`` beside it) and run it in the ``codabench`` target
(TF 2.17.0 + Keras 3.4.1, made once with pip and cached); they skip, saying why, when
that venv cannot be made here.
"""

from __future__ import annotations

import re
import textwrap
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.errors import BuildError
from codabench_kit.packaging.repack import find_model_file, python_work, repack_zip

STUDENT_MODEL_PY = textwrap.dedent("""\
    import os

    import keras
    import numpy as np

    HERE = os.path.dirname(os.path.abspath(__file__))


    class Model:
        def __init__(self):
            self.model = keras.models.load_model(os.path.join(HERE, "{name}"))

        def predict(self, X):
            return np.argmax(self.model.predict(X, verbose=0), axis=-1)
    """)


def test_no_model_file_is_an_error_naming_what_the_zip_holds(tmp_path):
    (tmp_path / "model.py").write_text("class Model: pass\n")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(BuildError, match=r"no model file to repack: expected one \.keras, "
                                         r"\.h5/\.hdf5 or SavedModel folder .*; it holds: "
                                         r"model\.py, notes\.txt"):
        find_model_file(tmp_path)


def test_several_model_files_are_an_error_naming_them(tmp_path):
    (tmp_path / "a.keras").write_bytes(b"x")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "b.h5").write_bytes(b"x")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(BuildError, match=r"several model files in the zip \(a\.keras, sm/, "
                                         r"w/b\.h5\): cbk repack repacks a zip with exactly one"):
        find_model_file(tmp_path)
    (tmp_path / "a.keras").unlink()
    (tmp_path / "w" / "b.h5").unlink()
    assert find_model_file(tmp_path) == tmp_path / "sm"


def test_python_work_in_the_original_predict_is_found():
    plain = STUDENT_MODEL_PY.format(name="w.keras")
    assert python_work(plain) == []
    busy = plain.replace("self.model.predict(X, verbose=0)",
                         "self.model.predict(preprocess(X) / 255.0, verbose=0)")
    assert python_work(busy) == ["model.py:14: preprocess(X)", "model.py:14: preprocess(X) / 255.0"]
    served = plain.replace("self.model.predict(X, verbose=0)",
                           "self.model.serve(tf.constant(X, tf.float32)).numpy()")
    assert python_work(served) == python_work(plain.replace(".predict(", "(")) == []
    own = busy.replace("preprocess(X)", "self.prep(X)") + "\n    def prep(self, X):\n        return X\n"
    assert python_work(own) == ["model.py:14: self.prep(X)", "model.py:14: self.prep(X) / 255.0"]


def test_a_failed_repack_leaves_nothing_and_an_existing_output_is_kept(tmp_path):
    source = tmp_path / "in.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("model.py", "class Model: pass\n")
    out = tmp_path / "out.zip"
    with pytest.raises(BuildError, match="no model file to repack"):
        repack_zip(source, out, validate=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zip"]
    out.write_bytes(b"mine")
    result = CliRunner().invoke(cli, ["repack", str(source), "--out", str(out), "--no-validate"])
    assert result.exit_code == 1 and "already exists; cbk never overwrites outputs" in result.output
    assert out.read_bytes() == b"mine"


# --- slow: real Keras files in the codabench target ----------------------------------


def codabench_python() -> Path:
    from codabench_kit.errors import TargetError
    from codabench_kit.validation.targets import target_python

    try:
        return target_python("codabench", progress=print)
    except TargetError as error:
        pytest.skip(f"the codabench target cannot be made here: {error}")


def student_zip(tmp_path: Path, suffix: str) -> Path:
    """A zip as students make them: model.py + a model saved by this interpreter's Keras."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((96, 96, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(8, activation="softmax")(x)
    name = f"weights{suffix}"
    keras.Model(inputs, outputs).save(tmp_path / name)
    path = tmp_path / f"student{suffix.replace('.', '-')}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", STUDENT_MODEL_PY.format(name=name))
        archive.write(tmp_path / name, name)
    return path


@pytest.mark.slow
def test_a_keras_file_of_the_current_keras_fails_in_the_codabench_target_with_the_version_line(
        tmp_path):
    import keras

    codabench_python()
    if keras.__version__.startswith("3.4."):
        pytest.skip(f"this Keras ({keras.__version__}) is the target's: its files load there")
    path = student_zip(tmp_path, ".keras")
    result = CliRunner().invoke(cli, ["validate", str(path), "--target", "codabench"])
    assert result.exit_code == 1, result.output
    assert f"model file weights.keras: saved by Keras {keras.__version__}" in result.stderr
    load = next(line for line in result.output.splitlines() if line.startswith("FAIL  load:"))
    assert load.startswith("FAIL  load: Model() failed: TypeError: ")
    assert load.endswith(
        f"(at model.py:11 in __init__) — weights.keras was saved by Keras {keras.__version__} "
        "and the target has Keras 3.4.1: re-save it with keras==3.4.1, or export a SavedModel "
        f"(`cbk repack {path.name} --out NEW.zip`)")
    # the cause, not a blind cut: the message's last line
    assert "unexpected keyword argument" in load or "could not be" in load, load


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_repack_gives_a_zip_valid_in_the_codabench_target_with_parity(tmp_path, suffix):
    codabench_python()
    path = student_zip(tmp_path, suffix)
    out = tmp_path / "repacked.zip"
    result = CliRunner().invoke(cli, ["repack", str(path), "--out", str(out),
                                      "--target", "codabench"])
    assert result.exit_code == 0, result.output
    repacked = re.search(r"repacked weights\S* \(parity max \|dp\| (\S+), valid in the "
                         r"target\): (\S+)", result.output)
    assert repacked and float(repacked.group(1)) <= 1e-4 and repacked.group(2) == str(out)
    parity = re.search(r"ok    parity: probe of 16 images: max \|dp\| (\S+) ", result.stderr)
    assert parity and float(parity.group(1)) <= 1e-4, result.stderr
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert {"model.py", "manifest.json", "probe.npz", "artifact/saved_model.pb"} <= set(names)
    again = CliRunner().invoke(cli, ["validate", str(out), "--target", "codabench"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow
def test_a_repack_that_fails_validation_leaves_nothing(tmp_path):
    path = student_zip(tmp_path, ".keras")
    out = tmp_path / "repacked.zip"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["repack", str(path), "--out", str(out),
                                      "--python", str(tmp_path / "no-such-python")])
    assert result.exit_code == 1
    assert "cannot start the Python interpreter" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no OUT, no partial file
