"""What a failed validation says, from what actually failed: the working directory a zip
depends on (per the target's conditions), the frame a TypeError came from, the cause
kept from a long message, a model file saved by a newer Keras than the target's.

The fast tests run numpy-only submissions in this interpreter (``--target current``),
choosing the conditions with ``--conditions``; the slow ones (tests/test_repack.py) use
the real codabench target."""

from __future__ import annotations

import io
import json
import os
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.validation import validate_zip
from codabench_kit.validation.diagnosis import (Diagnosis, ModelFile, cause, deepest_frame,
                                                diagnose, error_hint)
from codabench_kit.validation.targets import TARGETS, conditions_for

RELATIVE_LOADER = textwrap.dedent("""\
    import numpy as np

    class Model:
        def __init__(self):
            self.w = np.load("weights.npy")

        def predict(self, X):
            return (X[:, 0, 0, 0] % 8).astype(np.int64) * 0 + int(self.w[0])
    """)


def zip_with(path: Path, model_py: str, **files: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", model_py)
        for name, data in files.items():
            archive.writestr(name.replace("__", "/"), data)
    return path


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def relative_zip(tmp_path: Path) -> Path:
    return zip_with(tmp_path / "relative.zip", RELATIVE_LOADER, **{"weights.npy": npy([3])})


FIX = "open it as os.path.join(os.path.dirname(__file__), 'weights.npy')"


def test_a_relative_path_loader_is_a_warning_where_the_target_runs_inside_its_folder(tmp_path):
    report = validate_zip(relative_zip(tmp_path), timeout=60)  # an2dl conditions by default
    assert report.ok, report.lines()
    assert report.warnings == (
        "cwd: model code opens 'weights.npy' by a relative path: it works only when the "
        "working directory is the submission folder (true here, not under Codabench's "
        f"example ingestion) — {FIX}",)
    assert report.lines()[-1].startswith("warn  cwd: model code opens 'weights.npy'")


def test_a_relative_path_loader_fails_where_the_target_runs_elsewhere(tmp_path):
    report = validate_zip(relative_zip(tmp_path), timeout=60, conditions="codabench-example")
    assert not report.ok
    load = next(c for c in report.checks if c.name == "load")
    assert not load.ok
    assert load.detail.startswith("Model() failed: FileNotFoundError: ")
    assert load.detail.endswith(
        "(at model.py:5 in __init__) — model code opens 'weights.npy' by a relative path; it "
        "is in the zip, but this target runs with the working directory elsewhere (as "
        f"Codabench's example ingestion) — {FIX}")


C_LOADER = textwrap.dedent("""\
    import ctypes
    import numpy as np

    class Model:
        def __init__(self):
            libc = ctypes.CDLL(None)
            libc.fopen.restype = ctypes.c_void_p
            handle = libc.fopen(b"weights.bin", b"rb")  # as h5py does: C code, no audit event
            if not handle:
                raise FileNotFoundError("could not open the weights")
            libc.fclose(ctypes.c_void_p(handle))

        def predict(self, X):
            return np.zeros(len(X), dtype=np.int64)
    """)


def test_a_file_opened_by_c_code_is_found_from_model_py_naming_it_without_file(tmp_path):
    path = zip_with(tmp_path / "c.zip", C_LOADER, **{"weights.bin": b"w"})
    warned = validate_zip(path, timeout=60)
    assert warned.ok
    assert warned.warnings == (
        "cwd: model.py names 'weights.bin' and never uses __file__, so it opens it by a "
        "relative path: it works only when the working directory is the submission folder "
        "(true here, not under Codabench's example ingestion) — open it as "
        "os.path.join(os.path.dirname(__file__), 'weights.bin')",)
    failed = validate_zip(path, timeout=60, conditions="codabench-example")
    load = next(c for c in failed.checks if c.name == "load")
    assert load.detail == (
        "Model() failed: FileNotFoundError: could not open the weights (at model.py:10 in "
        "__init__) — model.py names 'weights.bin' and never uses __file__, so it opens it by a "
        "relative path; it is in the zip, but this target runs with the working directory "
        "elsewhere (as Codabench's example ingestion) — open it as "
        "os.path.join(os.path.dirname(__file__), 'weights.bin')")


def test_an_absolute_path_loader_passes_in_both_conditions_without_warning(tmp_path):
    source = RELATIVE_LOADER.replace(
        'np.load("weights.npy")',
        'np.load(__import__("os").path.join(__import__("os").path.dirname(__file__), "weights.npy"))')
    path = zip_with(tmp_path / "absolute.zip", source, **{"weights.npy": npy([3])})
    for conditions in ("an2dl", "codabench-example"):
        report = validate_zip(path, timeout=60, conditions=conditions)
        assert report.ok and report.warnings == (), (conditions, report.lines())


def test_a_relative_open_that_the_code_survives_still_fails_elsewhere(tmp_path):
    source = RELATIVE_LOADER.replace(
        'self.w = np.load("weights.npy")',
        'try:\n            self.w = np.load("weights.npy")\n'
        '        except OSError:\n            self.w = np.zeros(1, int)')
    path = zip_with(tmp_path / "fallback.zip", source, **{"weights.npy": npy([3])})
    report = validate_zip(path, timeout=60, conditions="codabench-example")
    assert [c.name for c in report.checks if not c.ok] == ["cwd"]
    assert report.checks[-1].detail.startswith("model code opens 'weights.npy' by a relative path;")


def test_the_example_conditions_append_the_submission_to_sys_path_and_leave_its_folder(tmp_path):
    source = textwrap.dedent("""\
        import os, sys
        import numpy as np
        HERE = os.path.dirname(os.path.abspath(__file__))

        class Model:
            def predict(self, X):
                last = sys.path[-1] == HERE and sys.path.count(HERE) == 1
                away = os.getcwd() != HERE
                return np.full(len(X), 2 * last + away, dtype=np.int64)
        """)
    path = zip_with(tmp_path / "where.zip", source)
    example = validate_zip(path, timeout=60, conditions="codabench-example")
    an2dl = validate_zip(path, timeout=60, conditions="an2dl")
    assert set(example.predictions.tolist()) == {3}
    assert set(an2dl.predictions.tolist()) == {0}


def test_cli_conditions_option_and_the_codabench_example_target(tmp_path):
    path = str(relative_zip(tmp_path))
    result = CliRunner().invoke(cli, ["validate", path, "--target", "current",
                                      "--conditions", "codabench-example"])
    assert result.exit_code == 1
    assert "FAIL  load: Model() failed: FileNotFoundError:" in result.output
    assert FIX in result.output
    warned = CliRunner().invoke(cli, ["validate", path, "--target", "current"])
    assert warned.exit_code == 0, warned.output
    assert "warn  cwd: model code opens 'weights.npy' by a relative path" in warned.output
    assert TARGETS["codabench-example"].conditions == "codabench-example"
    assert TARGETS["codabench-example"].key == TARGETS["codabench"].key  # one venv for both
    assert conditions_for("codabench-example", None).cwd == "elsewhere"
    assert conditions_for("codabench", None).name == conditions_for("current", None).name == "an2dl"
    assert conditions_for(None, "/usr/bin/python3").name == "an2dl"


def init_error(tmp_path: Path, init: str) -> str:
    """The load check's line for a Model whose ``__init__`` is ``init`` (indented 4)."""
    source = ("import numpy as np\n\n\nclass Model:\n    " + init + "\n\n"
              "    def predict(self, X):\n        return np.zeros(len(X), dtype=np.int64)\n")
    report = validate_zip(zip_with(tmp_path / "init.zip", source), timeout=60)
    load = next(c for c in report.checks if c.name == "load")
    assert not load.ok
    return load.detail


def test_a_model_whose_init_takes_arguments_gets_the_no_arguments_hint(tmp_path):
    detail = init_error(tmp_path, "def __init__(self, x):\n        self.x = x")
    assert detail.startswith("Model() failed: TypeError: ")
    assert "missing 1 required positional argument: 'x'" in detail
    assert detail.endswith(" — Codabench calls Model() with no arguments; make __init__ take "
                           "only self")


def test_a_type_error_raised_deeper_than_the_call_gets_no_arguments_hint(tmp_path):
    detail = init_error(tmp_path, "def __init__(self):\n"
                                  "        import json\n"
                                  "        json.loads('{}', bogus=1)")
    assert "unexpected keyword argument 'bogus'" in detail  # "argument", yet not Model()'s
    assert "Codabench calls Model() with no arguments" not in detail
    assert "(at model.py:7 in __init__) — raised at __init__.py:" in detail
    assert detail.endswith(", not by the call Model() itself")


def test_a_type_error_inside_an_installed_package_names_it():
    traceback = ('Traceback (most recent call last):\n'
                 '  File "/x/ingest.py", line 200, in _init_model\n    model = model_cls()\n'
                 '  File "/s/model.py", line 9, in __init__\n    keras.models.load_model(p)\n'
                 '  File "/v/lib/python3.11/site-packages/keras/src/saving/serialization_lib.py",'
                 ' line 720, in deserialize_keras_object\n    raise TypeError(\n'
                 'TypeError: could not be deserialized\n')
    error = {"phase": "init", "type": "TypeError", "message": "x", "traceback": traceback}
    assert deepest_frame(traceback) == (
        "/v/lib/python3.11/site-packages/keras/src/saving/serialization_lib.py", 720,
        "deserialize_keras_object")
    assert error_hint(error, Diagnosis()) == (
        "raised inside keras (serialization_lib.py:720 in deserialize_keras_object), not by "
        "the call Model(): something model code builds or loads cannot be made by this keras")


def test_a_long_message_keeps_its_cause_the_last_line_escaped(tmp_path):
    long = "x" * 900
    detail = init_error(tmp_path, "def __init__(self):\n"
                                  f"        raise TypeError('{long}\\n\\nException encountered: "
                                  "Glorot() got an unexpected keyword argument \\'input_axes\\'\\x1b')")
    assert detail.startswith("Model() failed: TypeError: Exception encountered: Glorot() got an "
                             "unexpected keyword argument 'input_axes'\\x1b (at model.py:")
    assert "xxx" not in detail
    assert cause("a\n" + "y" * 400 + "z") == "y" * 147 + " ... " + "y" * 146 + "z"


def keras_archive(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": version}))
        archive.writestr("config.json", "{}")
    return buffer.getvalue()


def test_a_keras_file_newer_than_the_target_is_named_with_the_fix(tmp_path):
    submission = tmp_path / "s"
    (submission / "sub").mkdir(parents=True)
    (submission / "sub" / "net.keras").write_bytes(keras_archive("3.15.1"))
    (submission / "old.keras").write_bytes(keras_archive("3.4.0"))
    (submission / "broken.keras").write_bytes(b"not a zip")
    found = diagnose(submission)
    assert found.model_files == (ModelFile("broken.keras", "keras", None),
                                 ModelFile("old.keras", "keras", "3.4.0"),
                                 ModelFile("sub/net.keras", "keras", "3.15.1"))
    after = found.after_run({"versions": {"keras": "3.4.1", "tensorflow": "2.17.0"}})
    error = {"phase": "init", "type": "TypeError", "message": "...", "traceback": ""}
    assert error_hint(error, after) == (
        "sub/net.keras was saved by Keras 3.15.1 and the target has Keras 3.4.1: re-save it "
        "with keras==3.4.1, or export a SavedModel (`cbk repack ZIP --out NEW.zip`)")
    named = replace(after, zip_name="student.zip")
    assert error_hint(error, named).endswith("(`cbk repack student.zip --out NEW.zip`)")
    assert error_hint(error, found.after_run({"versions": {"keras": "3.15.0"}})) is None


def test_the_version_line_reaches_the_fail_line_and_the_file_is_named_before_running(tmp_path):
    source = textwrap.dedent("""\
        import os
        import numpy as np

        class Model:
            def __init__(self):
                raise TypeError("Could not deserialize\\nException encountered: "
                                "GlorotUniform.__init__() got an unexpected keyword argument 'input_axes'")

            def predict(self, X):
                return np.zeros(len(X), dtype=np.int64)
        """)
    path = zip_with(tmp_path / "new.zip", source, **{"weights.keras": keras_archive("99.1.0")})
    lines = []
    report = validate_zip(path, timeout=60, progress=lines.append)
    assert "model file weights.keras: saved by Keras 99.1.0" in lines
    load = next(c for c in report.checks if c.name == "load")
    try:
        import keras
    except ImportError:
        pytest.skip("needs keras installed here (the child reports its version)")
    assert load.detail == (
        "Model() failed: TypeError: Exception encountered: GlorotUniform.__init__() got an "
        "unexpected keyword argument 'input_axes' (at model.py:6 in __init__) — weights.keras "
        f"was saved by Keras 99.1.0 and the target has Keras {keras.__version__}: re-save it "
        f"with keras=={keras.__version__}, or export a SavedModel (`cbk repack new.zip --out "
        "NEW.zip`)")


def test_verbose_prints_the_whole_traceback(tmp_path, monkeypatch):
    # `cbk -v` sets TF_CPP_MIN_LOG_LEVEL=0 for TensorFlow: in this process, for this test only.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    source = RELATIVE_LOADER.replace('self.w = np.load("weights.npy")', "self.w = helper()") \
        + "\n\ndef helper():\n    raise RuntimeError('deep down')\n"
    path = str(zip_with(tmp_path / "deep.zip", source))
    quiet = CliRunner().invoke(cli, ["validate", path, "--target", "current"])
    loud = CliRunner().invoke(cli, ["-v", "validate", path, "--target", "current"])
    assert quiet.exit_code == loud.exit_code == 1
    assert "Traceback (most recent call last)" not in quiet.output
    assert "Traceback (most recent call last)" in loud.stderr
    assert 'in helper\n    raise RuntimeError(\'deep down\')' in loud.stderr


@pytest.mark.slow
def test_a_layer_that_cannot_be_rebuilt_is_told_from_the_frame_not_the_word_argument(tmp_path):
    """A real Keras TypeError inside Model(): its message says "arguments", yet the call
    Model() was fine; the hint names keras's frame instead."""
    pytest.importorskip("keras", reason="needs keras installed here")
    detail = init_error(tmp_path, "def __init__(self):\n"
                                  "        import keras\n"
                                  "        keras.layers.deserialize({'module': 'keras.layers', "
                                  "'class_name': 'Dense', 'config': {'units': 8, "
                                  "'bogus_axes': None}, 'registered_name': None})")
    assert detail.startswith("Model() failed: TypeError: Exception encountered: Unrecognized "
                             "keyword arguments passed to Dense: {'bogus_axes': None} (at "
                             "model.py:7 in __init__) — raised inside keras ("), detail
    assert detail.endswith(", not by the call Model(): something model code builds or loads "
                           "cannot be made by this keras")
    assert "Codabench calls Model() with no arguments" not in detail
