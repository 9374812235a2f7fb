"""Fast tests for ``codabench_kit.validation``: fake numpy-only submissions, no TensorFlow.

Every run happens with cwd = tmp_path and ``tempfile.tempdir`` pointed at an empty
folder, which must be empty again afterwards: the validator cleans up on every path out.
"""

from __future__ import annotations

import stat
import sys
import tempfile
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from codabench_kit.errors import CbkError, DataError, ZipRejectedError
from codabench_kit.validation import Check, ValidationReport, inspect_zip, safe_extract, validate_zip

N = 32
IMAGES = np.random.default_rng(1).integers(0, 256, size=(N, 96, 96, 3), dtype=np.uint8)
TRUE_LABELS = (IMAGES[:, 0, 0, 0] % 8).astype(np.int64)


def write_zip(path: Path, files: dict[str, bytes], *, infos: list[tuple[zipfile.ZipInfo, bytes]] = ()) -> Path:
    """Write a zip holding ``files`` ({name: bytes}) plus hand-made entries ``infos``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate-name tests
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
            for info, data in infos:
                zf.writestr(info, data)
    return path


def model(predict: str = "return (X[:, 0, 0, 0] % 8).astype(np.int64)", init: str = "pass", top: str = "") -> bytes:
    """The source of a numpy-only model.py with the given method bodies."""
    source = f"""\
import numpy as np
{top}

class Model:
    def __init__(self):
{textwrap.indent(init, " " * 8)}

    def predict(self, X):
{textwrap.indent(predict, " " * 8)}
"""
    return source.encode()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """cwd = tmp_path/work, temp files under tmp_path/tmp; yields the temp folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(work)
    yield tmp
    assert list(tmp.iterdir()) == [], "validate_zip left files in the temp folder"
    assert list(work.iterdir()) == [] or all(p.suffix == ".zip" for p in work.iterdir())


def validate(path: Path, **kwargs) -> ValidationReport:
    kwargs.setdefault("images", IMAGES)
    kwargs.setdefault("timeout", 30)
    return validate_zip(path, **kwargs)


# --- a good submission ---------------------------------------------------------------

GOOD_CHECKS_ENV = """\
import os
here = os.path.dirname(os.path.abspath(__file__))
assert os.getcwd() == here, (os.getcwd(), here)
assert "PYTHONPATH" not in os.environ
assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
"""


def test_good_submission_passes(sandbox):
    path = write_zip(Path("sub.zip"), {"model.py": model(init=GOOD_CHECKS_ENV), "weights/readme.txt": b"hi"})
    labels = TRUE_LABELS.copy()
    labels[:8] = (labels[:8] + 1) % 8  # 24 of 32 right
    seen: list[str] = []
    report = validate(path, labels=labels, progress=seen.append)
    assert report.ok, report.lines()
    assert [c.name for c in report.checks] == ["zip", "load", "predict", "answer", "accuracy"]
    assert report.accuracy == pytest.approx(0.75)
    assert "accuracy 0.750 on 32 labelled images" in report.lines()[-1]
    np.testing.assert_array_equal(report.predictions, TRUE_LABELS)
    assert report.load_s is not None and report.predict_s is not None and report.peak_mb > 0
    assert report.ms_per_image == pytest.approx(report.predict_s * 1000 / N)
    assert report.lines()[1].startswith("ok    load: Model() ready in ")
    assert "32 images in " in report.lines()[2] and "ms/image), peak memory " in report.lines()[2]
    assert seen, "progress callback never called"


def test_default_images_and_no_labels(sandbox):
    report = validate_zip(write_zip(Path("sub.zip"), {"model.py": model("return np.zeros(len(X), dtype=int)")}))
    assert report.ok, report.lines()
    assert report.accuracy is None and report.predictions.shape == (32,)
    assert [c.name for c in report.checks] == ["zip", "load", "predict", "answer"]


# --- rejected zips ---------------------------------------------------------------------

GOOD = {"model.py": model()}


def _symlink() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link.py")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def set_encrypted_flag(path: Path, name: str) -> None:
    """zipfile cannot encrypt: set the 'encrypted' bit of ``name``'s central directory record."""
    raw = bytearray(path.read_bytes())
    record = raw.index(b"PK\x01\x02")
    while raw[record + 46 : record + 46 + len(name)] != name.encode():
        record = raw.index(b"PK\x01\x02", record + 4)
    raw[record + 8] |= 0x1
    path.write_bytes(bytes(raw))


ZIP_CASES = {
    "traversal": ({**GOOD, "../evil.py": b"x"}, [], "'../evil.py' contains '..' (path traversal)"),
    "traversal-inner": ({**GOOD, "a/../../evil.py": b"x"}, [], "path traversal"),
    "absolute": ({**GOOD, "/etc/evil.py": b"x"}, [], "'/etc/evil.py' has an absolute path"),
    "drive": ({**GOOD, "C:\\evil.py": b"x"}, [], "absolute path"),
    "unc": ({**GOOD, "\\\\host\\share\\evil.py": b"x"}, [], "absolute path"),
    "symlink": (GOOD, [(_symlink(), b"/etc/passwd")], "'link.py' is a symlink"),
    "encrypted": ({**GOOD, "secret.py": b"x"}, [], "'secret.py' is encrypted"),
    "zip-bomb": ({**GOOD, "big.bin": bytes(50 * 1024 * 1024)}, [], "'big.bin' expands from"),
    "empty-zip": ({}, [], "the zip holds no entries"),
    "no-model": ({"predict.py": b"x"}, [], "no model.py at the zip root (the zip holds: predict.py)"),
    "nested-model": (
        {"sub/model.py": model()},
        [],
        "model.py must be at the zip root; found sub/model.py — zip the folder's contents, not the folder",
    ),
    "wrong-case": ({"Model.py": model()}, [], "found Model.py — the name is case-sensitive"),
    "duplicate": (
        {**GOOD, "a.py": b"1"},
        [(zipfile.ZipInfo("a.py"), b"2")],
        "duplicate entry 'a.py' — the zip stores that name twice",
    ),
    "file-folder-clash": ({**GOOD, "w": b"1", "w/x": b"2"}, [], "also stores it as a file"),
}


@pytest.mark.parametrize("files, infos, message", list(ZIP_CASES.values()), ids=list(ZIP_CASES))
def test_unsafe_zip_rejected(sandbox, files, infos, message):
    path = write_zip(Path("sub.zip"), files, infos=infos)
    if "secret.py" in files:
        set_encrypted_flag(path, "secret.py")
    report = validate(path)
    assert not report.ok
    assert [c.name for c in report.checks] == ["zip"]
    (line,) = report.lines()
    assert line.startswith("FAIL  zip: ") and "\n" not in line
    assert message in line
    with pytest.raises(ZipRejectedError, match="."):
        inspect_zip(path)


def _good_bytes(tmp: Path) -> bytes:
    return write_zip(tmp / "good.zip", GOOD).read_bytes()


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda good: b"", "sub.zip is empty (0 bytes), not a zip file"),
        (lambda good: b"this is not a zip file at all", "sub.zip is not a readable zip file"),
        (lambda good: good[: len(good) // 2], "sub.zip is not a readable zip file"),
        (lambda good: good[:-10], "sub.zip is not a readable zip file"),
    ],
    ids=["empty-file", "not-a-zip", "truncated-half", "truncated-tail"],
)
def test_unreadable_file_rejected(sandbox, tmp_path, content, message):
    path = Path("sub.zip")
    path.write_bytes(content(_good_bytes(tmp_path)))
    report = validate(path)
    assert not report.ok and [c.name for c in report.checks] == ["zip"]
    assert message in report.lines()[0]


def test_missing_file_rejected(sandbox):
    report = validate(Path("nope.zip"))
    assert not report.ok and "no such file: nope.zip" in report.lines()[0]


def test_limits(tmp_path):
    path = write_zip(tmp_path / "s.zip", {**GOOD, "a": b"1", "b": b"2", "c": b"x" * 5000})
    with pytest.raises(ZipRejectedError, match="holds 4 entries, more than the limit of 3"):
        inspect_zip(path, max_entries=3)
    with pytest.raises(ZipRejectedError, match="more than 4.0 KB of unpacked data .*'c'"):
        inspect_zip(path, max_total_bytes=4096)
    summary = inspect_zip(path)
    assert summary.num_files == 4 and summary.names[0] == "model.py"
    assert summary.compressed_bytes == path.stat().st_size and summary.uncompressed_bytes > 5000


def test_safe_extract_writes_files_and_never_overwrites(tmp_path):
    path = write_zip(tmp_path / "s.zip", {**GOOD, "pkg/": b"", "pkg/util.py": b"X = 1\n"})
    dest = tmp_path / "out"
    summary = safe_extract(path, dest)
    assert summary.names == ("model.py", "pkg/util.py")
    assert (dest / "pkg" / "util.py").read_bytes() == b"X = 1\n"
    with pytest.raises(ZipRejectedError, match="already exists; not overwriting"):
        safe_extract(path, dest)


def test_rejection_writes_nothing(tmp_path):
    path = write_zip(tmp_path / "s.zip", {**GOOD, "x/../../evil.py": b"x"})
    dest = tmp_path / "out"
    with pytest.raises(ZipRejectedError):
        safe_extract(path, dest)
    assert not dest.exists() and not (tmp_path / "evil.py").exists()


def test_corrupt_data_rolled_back(tmp_path):
    """A flipped byte in stored data fails the CRC check; what was written is removed."""
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("model.py", model())
        zf.writestr("data.bin", b"A" * 1000)
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"A" * 1000) + 10] ^= 0xFF
    path.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    with pytest.raises(ZipRejectedError, match="entry 'data.bin' is corrupt: Bad CRC-32"):
        safe_extract(path, dest)
    assert list(dest.iterdir()) == []


# --- submissions that unpack but do not run or answer correctly -----------------------------

RUN_CASES = {
    # name: (model.py source, failing check, expected text in its line)
    "syntax-error": (
        b"class Model:\n    def predict(self X):\n        pass\n",
        "load",
        "importing model.py failed: SyntaxError: ",
    ),
    "missing-import": (
        model(top="import not_a_module"),
        "load",
        "importing model.py failed: ModuleNotFoundError: No module named 'not_a_module' (at model.py:2 in <module>)",
    ),
    "init-raises": (model(init="raise RuntimeError('boom')"), "load", "Model() failed: RuntimeError: boom"),
    "init-needs-arg": (
        model().replace(b"def __init__(self):", b"def __init__(self, path):"),
        "load",
        "missing 1 required positional argument: 'path' — Codabench calls Model() with no arguments",
    ),
    "no-model-class": (b"import numpy as np\nclass Net:\n    pass\n", "load", "model.py defines no Model"),
    "exit-at-import": (model(top="import sys; sys.exit(2)"), "load", "model code called sys.exit(2)"),
    "predict-raises": (model("raise ValueError('bad input')"), "predict", "predict(X) raised: ValueError: bad input"),
    "sys-exit": (model("import sys; sys.exit(3)"), "predict", "model code called sys.exit(3) during predict(X)"),
    "os-exit": (
        model("import os; os._exit(0)"),
        "predict",
        "the process exited with code 0 during predict(X) without reporting back",
    ),
    "one-hot": (
        model("return np.eye(8, dtype=np.float32)[X[:, 0, 0, 0] % 8]"),
        "answer",
        "expected shape (32,), received (32, 8) — return one integer label per image, e.g. probs.argmax(axis=1)",
    ),
    "column": (model("return np.zeros((len(X), 1), dtype=int)"), "answer", "flatten it"),
    "float-labels": (
        model("return np.zeros(len(X), dtype=np.float32)"),
        "answer",
        "expected integer labels, received float32",
    ),
    "bool-labels": (model("return np.zeros(len(X), dtype=bool)"), "answer", "received bool"),
    "out-of-range": (
        model("y = np.zeros(len(X), dtype=int); y[3] = 9; return y"),
        "answer",
        "expected labels in 0..7, received min 0, max 9 (1 of 32 out of range)",
    ),
    "negative": (model("return np.full(len(X), -1)"), "answer", "received min -1, max -1"),
    "wrong-length": (model("return np.zeros(len(X) - 1, dtype=int)"), "answer", "expected shape (32,), received (31,)"),
    "strings": (model("return np.array(['cat'] * len(X))"), "answer", "received strings (dtype <U3), e.g. ['cat'"),
    "python-objects": (
        model("return [None] * len(X)"),
        "answer",
        "received Python objects (builtins.list, dtype object), e.g. [None",
    ),
    "none": (model("return None"), "answer", "predict returned None — expected an array of shape (32,)"),
    "ragged": (model("return [[1], [1, 2]]"), "answer", "predict's output could not be turned into an array"),
}


@pytest.mark.parametrize("source, stage, message", list(RUN_CASES.values()), ids=list(RUN_CASES))
def test_broken_submission_reported(sandbox, source, stage, message):
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}), labels=TRUE_LABELS)
    assert not report.ok
    names = [c.name for c in report.checks]
    assert names[-1] == stage and all(c.ok for c in report.checks[:-1]), report.lines()
    line = report.lines()[-1]
    assert line.startswith(f"FAIL  {stage}: ") and "\n" not in line
    assert message in line, line
    assert report.accuracy is None


def test_hanging_predict_times_out(sandbox):
    report = validate(write_zip(Path("sub.zip"), {"model.py": model("import time; time.sleep(60)")}), timeout=3)
    assert not report.ok
    assert report.lines()[-1] == "FAIL  predict: timed out after 3 s during predict(X)"
    assert report.checks[1] == Check("load", True, report.checks[1].detail)


def test_model_writing_outside_its_folder_is_cleaned_up(sandbox, tmp_path):
    source = model(
        init="open('../../escaped.txt', 'w').write('x')\nimport tempfile; tempfile.mkstemp()",
        predict="return np.zeros(len(X), dtype=int)",
    )
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}))
    assert report.ok, report.lines()
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "work" / "escaped.txt").exists()
    # the sandbox fixture asserts that the temp folder is empty again


def test_bad_arguments(sandbox):
    path = write_zip(Path("sub.zip"), GOOD)
    with pytest.raises(DataError, match=r"images: expected a uint8 array .* received float64 array of shape \(2, 96"):
        validate_zip(path, images=np.zeros((2, 96, 96)))
    with pytest.raises(DataError, match=r"labels: expected 32 integer labels .* received float64"):
        validate_zip(path, images=IMAGES, labels=np.zeros(N))
    with pytest.raises(CbkError, match="cannot start the Python interpreter"):
        validate_zip(path, images=IMAGES, python=str(Path(sys.executable).parent / "no-such-python"))


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell-script interpreter")
def test_interpreter_without_numpy(sandbox, tmp_path):
    """``python -S`` skips site-packages, so numpy is missing: the harness says so."""
    fake = tmp_path / "python-no-site"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    fake.chmod(0o755)
    report = validate(write_zip(Path("sub.zip"), GOOD), python=str(fake))
    assert not report.ok
    line = report.lines()[-1]
    assert line.startswith(f"FAIL  load: the validation harness failed under {fake}: ModuleNotFoundError: ")
    assert "numpy" in line and line.endswith("install numpy in that interpreter")
