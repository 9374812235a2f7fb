"""Fast tests for ``codabench_kit.validation``: fake numpy-only submissions, no TensorFlow.

A corpus of bad and hostile zips (``ZIP_CASES``, ``UNREADABLE_CASES``, ``RUN_CASES``,
``HANG_CASES``): each must be rejected with exactly one clear line, within its timeout.
Every run happens with cwd = tmp_path/work, ``tempfile.tempdir`` and ``TMPDIR`` pointed at
an empty tmp_path/tmp and ``HOME`` at an empty tmp_path/home; :func:`validate` checks that
nothing under tmp_path changed and the temp folder is empty again (validate's own
``cbk-validate-*`` folder removed), on every path out. Model code runs in the machine's
sandbox (``auto``); tests/test_sandbox.py tests the sandboxes and the fallback themselves.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import textwrap
import time
import uuid
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from codabench_kit.errors import CbkError, DataError, ZipRejectedError
from codabench_kit.validation import ValidationReport, inspect_zip, safe_extract, validate_zip
from codabench_kit.validation.sandbox import choose_sandbox

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
def isolated(tmp_path, monkeypatch):
    """cwd = tmp_path/work, temp files under tmp_path/tmp, HOME = tmp_path/home; yields the temp folder."""
    tmp, work, home = (tmp_path / name for name in ("tmp", "work", "home"))
    for folder in (tmp, work, home):
        folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CBK_SANDBOX", raising=False)
    monkeypatch.chdir(work)
    yield tmp
    assert list(tmp.iterdir()) == [], "validate_zip left files in the temp folder"
    assert list(home.iterdir()) == [], "something was written to $HOME"


SLACK_S = 10.0
"""Start-up and clean-up allowed on top of the child's timeout (2 busy CPU cores)."""


def _snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root``: files with (size, mtime), folders as None."""
    snapshot: dict[str, tuple[int, int] | None] = {}
    for p in root.rglob("*"):
        info = p.lstat()
        snapshot[str(p.relative_to(root))] = None if stat.S_ISDIR(info.st_mode) else (info.st_size, info.st_mtime_ns)
    return snapshot


def validate(path: Path, **kwargs) -> ValidationReport:
    """validate_zip, checking that it kept to its timeout and wrote nothing under tmp_path."""
    kwargs.setdefault("images", IMAGES)
    kwargs.setdefault("timeout", 30)
    root = Path(tempfile.gettempdir()).parent  # tmp_path, under the ``isolated`` fixture
    before = _snapshot(root)
    start = time.monotonic()
    report = validate_zip(path, **kwargs)
    elapsed = time.monotonic() - start
    assert elapsed < kwargs["timeout"] + SLACK_S, f"took {elapsed:.1f} s with a {kwargs['timeout']} s timeout"
    assert _snapshot(root) == before, "validate_zip left or changed files outside its temp folder"
    return report


def assert_rejected(report: ValidationReport, stage: str, message: str) -> str:
    """Not ok; the stages before ``stage`` passed; exactly one FAIL line, for ``stage``, holding ``message``."""
    assert not report.ok
    names = [c.name for c in report.checks]
    assert names[-1] == stage and all(c.ok for c in report.checks[:-1]), report.lines()
    failed = [line for line in report.lines() if line.startswith("FAIL")]
    assert len(failed) == 1, report.lines()
    (line,) = failed
    assert line.startswith(f"FAIL  {stage}: ") and "\n" not in line and len(line) < 500, line
    assert message in line, line
    assert report.accuracy is None
    return line


# --- a good submission ---------------------------------------------------------------

GOOD_CHECKS_ENV = """\
import os
here = os.path.dirname(os.path.abspath(__file__))
assert os.getcwd() == here, (os.getcwd(), here)
assert "PYTHONPATH" not in os.environ
assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
workdir = os.path.dirname(os.path.dirname(here))  # <workdir>/run/submission
assert os.path.basename(workdir).startswith("cbk-validate-"), workdir
assert os.path.dirname(workdir) == TEMP, (workdir, TEMP)  # under tempfile's folder, so the fixture sees it go
assert os.environ["TMPDIR"] == os.path.join(workdir, "tmp") and os.path.isdir(os.environ["TMPDIR"])
assert os.environ["HOME"] == os.path.join(workdir, "home") and os.path.isdir(os.environ["HOME"])
"""


def test_good_submission_passes(isolated):
    init = f"TEMP = {str(isolated)!r}\n" + GOOD_CHECKS_ENV
    path = write_zip(Path("sub.zip"), {"model.py": model(init=init), "weights/readme.txt": b"hi"})
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
    assert report.sandbox is not None and report.sandbox.startswith("sandbox: ") and report.sandbox in seen


def test_default_images_and_no_labels(isolated):
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
    "file-folder-clash": ({**GOOD, "w": b"1", "w/x": b"2"}, [], "also stores it as a file"),
    "duplicate": (
        {**GOOD, "a.py": b"1"},
        [(zipfile.ZipInfo("a.py"), b"2")],
        "duplicate entry 'a.py' — the zip stores that name twice",
    ),
}


@pytest.mark.parametrize("files, infos, message", list(ZIP_CASES.values()), ids=list(ZIP_CASES))
def test_unsafe_zip_rejected(isolated, files, infos, message):
    path = write_zip(Path("sub.zip"), files, infos=infos)
    if "secret.py" in files:
        set_encrypted_flag(path, "secret.py")
    report = validate(path)
    assert_rejected(report, "zip", message)
    assert len(report.checks) == 1 and report.sandbox is None  # no model code ran
    with pytest.raises(ZipRejectedError, match="."):
        inspect_zip(path)


UNREADABLE_CASES = {
    # name: (the file's bytes, made from a good zip's bytes; expected text in the line)
    "empty-file": (lambda good: b"", "sub.zip is empty (0 bytes), not a zip file"),
    "not-a-zip": (lambda good: b"this is not a zip file at all", "sub.zip is not a readable zip file"),
    "not-a-zip-gzip": (lambda good: b"\x1f\x8b\x08\x00" + bytes(200), "is it truncated, or a different format?"),
    "truncated-half": (lambda good: good[: len(good) // 2], "sub.zip is not a readable zip file"),
    "truncated-tail": (lambda good: good[:-10], "sub.zip is not a readable zip file"),
}


@pytest.mark.parametrize("content, message", list(UNREADABLE_CASES.values()), ids=list(UNREADABLE_CASES))
def test_unreadable_file_rejected(isolated, content, message):
    good = write_zip(Path("good.zip"), GOOD).read_bytes()
    path = Path("sub.zip")
    path.write_bytes(content(good))
    report = validate(path)
    assert_rejected(report, "zip", message)
    assert len(report.checks) == 1


def test_missing_file_rejected(isolated):
    report = validate(Path("nope.zip"))
    assert_rejected(report, "zip", "no such file: nope.zip")


def test_truncated_data_rejected(isolated):
    """A zip whose central directory is intact but whose data is cut short: rejected while unpacking."""
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()  # incompressible
    path = Path("sub.zip")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("model.py", model())
        zf.writestr("weights.bin", data)
    raw = path.read_bytes()
    start = raw.index(data)
    path.write_bytes(raw[: start + 1000] + raw[start + len(data) :])  # 3 KB of weights.bin gone
    report = validate(path)
    line = assert_rejected(report, "zip", "entry 'model.py' is corrupt: ")  # its offset now lies before the file
    assert line.endswith("— is the zip truncated or damaged?")


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
        "importing model.py failed: ModuleNotFoundError: No module named 'not_a_module' (at model.py:3 in <module>)",
    ),
    "init-raises": (model(init="raise RuntimeError('boom')"), "load", "Model() failed: RuntimeError: boom"),
    "init-sys-exit": (model(init="import sys; sys.exit(4)"), "load", "model code called sys.exit(4) during Model()"),
    "init-os-exit": (
        model(init="import os; os._exit(5)"),
        "load",
        "the process exited with code 5 during Model() without reporting back — does model code call os._exit()?",
    ),
    "init-needs-arg": (
        model().replace(b"def __init__(self):", b"def __init__(self, path):"),
        "load",
        "missing 1 required positional argument: 'path' — Codabench calls Model() with no arguments",
    ),
    "no-model-class": (b"import numpy as np\nclass Net:\n    pass\n", "load", "model.py defines no Model"),
    "exit-at-import": (model(top="import sys; sys.exit(2)"), "load", "model code called sys.exit(2)"),
    "predict-raises": (model("raise ValueError('bad input')"), "predict", "predict(X) raised: ValueError: bad input"),
    "predict-kills-itself": (
        model("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"),
        "predict",
        "the process was killed by SIGKILL during predict(X) without reporting back",
    ),
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


CANARY = (
    "import os as _os\n"
    "for _p in [_os.path.expanduser('~/.cbk-canary'), *OUTSIDE]:\n"
    "    try:\n"
    "        open(_p, 'w').write('escaped')\n"
    "    except OSError:\n"
    "        pass\n"
)


@pytest.fixture(scope="module")
def machine_sandbox():
    """The sandbox ``auto`` picks on this machine."""
    return choose_sandbox("auto")


def with_canary(source: bytes, outside: list[Path]) -> bytes:
    """``source`` preceded by one line that tries to write to ~ and to each ``outside`` path.

    It runs at import, before the model's own failure (except for a SyntaxError, where
    nothing runs). One line, so line numbers in messages move by one only.
    """
    line = f"OUTSIDE = {[str(p) for p in outside]!r}; exec({CANARY!r})\n"
    return line.encode() + source


@pytest.mark.parametrize("source, stage, message", list(RUN_CASES.values()), ids=list(RUN_CASES))
def test_broken_submission_reported(isolated, tmp_path, machine_sandbox, source, stage, message):
    # Writes to ~ land in validate's temp folder whatever the sandbox; absolute paths outside
    # it are refused only by a read-only sandbox, so only then does the canary try them.
    outside = [tmp_path / "outside.txt", tmp_path / "home" / "canary.txt"] if machine_sandbox.read_only else []
    report = validate(write_zip(Path("sub.zip"), {"model.py": with_canary(source, outside)}), labels=TRUE_LABELS)
    assert_rejected(report, stage, message)
    assert report.sandbox == machine_sandbox.describe()
    # validate() checked that nothing under tmp_path changed; the fixture, that ~ and the temp folder are empty


HANG_CASES = {
    "hang-import": (model(top="import time; time.sleep(60)"), "load", "during the import of model.py"),
    "hang-init": (model(init="import time; time.sleep(60)"), "load", "during Model()"),
    "hang-predict": (model("import time; time.sleep(60)"), "predict", "during predict(X)"),
    "hang-predict-busy": (model("while True: pass"), "predict", "during predict(X)"),
}


@pytest.mark.parametrize("source, stage, during", list(HANG_CASES.values()), ids=list(HANG_CASES))
def test_hanging_submission_times_out(isolated, source, stage, during):
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}), timeout=3)
    line = assert_rejected(report, stage, during)
    assert line == f"FAIL  {stage}: timed out after 3 s {during}"


def test_hanging_child_process_is_killed(isolated):
    """A process that model code starts and leaves behind ends with the run.

    The sandbox's PID namespace numbers processes its own way, so the child is found by a
    marker in its command line, not by the pid model code sees."""
    marker = f"cbk-test-child-{uuid.uuid4().hex}"
    start = ("import subprocess, sys\n"
             f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
             "print('child started', flush=True)\n"
             "import time; time.sleep(60)")  # fmt: skip
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(start)}), timeout=3)
    assert_rejected(report, "predict", "timed out after 3 s during predict(X)")
    assert "child started" in report.log_tail
    deadline = time.monotonic() + 5
    while _with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _with_marker(marker), f"the model's child process {_with_marker(marker)} outlived the run"


def _with_marker(marker: str) -> list[int]:
    """The live processes whose command line holds ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes().split(b"\0") and _alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is dead too
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_model_writing_outside_its_folder_is_cleaned_up(isolated, tmp_path):
    """Relative escapes, tempfile and ~ all land in validate's temp folder, which is removed."""
    source = model(
        init="open('../../escaped.txt', 'w').write('x')\nimport tempfile; tempfile.mkstemp()\n"
        "import os; open(os.path.expanduser('~/.keras-like'), 'w').write('x')",
        predict="return np.zeros(len(X), dtype=int)",
    )
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}))
    assert report.ok, report.lines()
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "work" / "escaped.txt").exists()
    # validate() asserts nothing changed under tmp_path; the fixture, that ~ and the temp folder are empty


def test_bad_arguments(isolated):
    path = write_zip(Path("sub.zip"), GOOD)
    with pytest.raises(DataError, match=r"images: expected a uint8 array .* received float64 array of shape \(2, 96"):
        validate_zip(path, images=np.zeros((2, 96, 96)))
    with pytest.raises(DataError, match=r"labels: expected 32 integer labels .* received float64"):
        validate_zip(path, images=IMAGES, labels=np.zeros(N))
    with pytest.raises(CbkError, match="cannot start the Python interpreter"):
        validate_zip(path, images=IMAGES, python=str(Path(sys.executable).parent / "no-such-python"))


@pytest.mark.skipif(sys.platform == "win32", reason="uses a shell-script interpreter")
def test_interpreter_without_numpy(isolated, tmp_path):
    """``python -S`` skips site-packages, so numpy is missing: the harness says so."""
    fake = tmp_path / "python-no-site"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    fake.chmod(0o755)
    report = validate(write_zip(Path("sub.zip"), GOOD), python=str(fake))
    assert not report.ok
    line = report.lines()[-1]
    assert line.startswith(f"FAIL  load: the validation harness failed under {fake}: ModuleNotFoundError: ")
    assert "numpy" in line and line.endswith("install numpy in that interpreter")
