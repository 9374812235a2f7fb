"""validate's temporary folder goes away whatever model code or the zip leave in it, and a
killed cbk's folder is swept by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from codabench_kit.validation import validate_zip
from codabench_kit.validation.cleanup import PREFIX, remove_tree, sweep_stale
from tests.test_validate import GOOD, IMAGES, assert_rejected, isolated, model, validate, write_zip  # noqa: F401

DEPTH = 1500


def _deep_chain(root: Path, depth: int) -> None:
    """``depth`` nested folders under ``root``, made with relative paths (too long otherwise)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o400, dir_fd=fd), "w") as f:
            f.write("x")
    finally:
        os.close(fd)


def test_remove_tree_deep_and_locked(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    _deep_chain(root, DEPTH)
    (root / "locked").mkdir()
    (root / "locked" / "inner").mkdir()
    (root / "locked" / "inner" / "ro.txt").write_text("x")
    (root / "locked" / "inner" / "ro.txt").chmod(0o400)
    (root / "locked" / "inner").chmod(0o000)
    (root / "locked").chmod(0o000)
    (root / "link").symlink_to(tmp_path / "keep")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file").write_text("kept")
    assert remove_tree(root) is True
    assert not root.exists()
    assert (tmp_path / "keep" / "file").read_text() == "kept"  # the link was removed, not followed


DEEP_MODEL = f"""\
import os
fd = os.open(os.environ.get('TMPDIR') or os.path.expanduser('~'), os.O_RDONLY)  # writable there
for _ in range({DEPTH}):
    os.mkdir('d', dir_fd=fd)
    child = os.open('d', os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = child
os.chmod('d', 0o000) if os.path.isdir('d') else None
"""


def test_deep_tree_made_by_model_is_cleaned_up(isolated):
    source = model(init=DEEP_MODEL + "os.chmod(os.path.expanduser('~'), 0o000)",
                   predict="return np.zeros(len(X), dtype=int)")
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}))
    assert report.ok, report.lines()
    # the fixture checks that the temp folder is empty


def test_deep_tree_shipped_in_the_zip_is_cleaned_up(isolated):
    deep = "/".join(["d"] * DEPTH) + "/f.txt"
    report = validate(write_zip(Path("sub.zip"), {**GOOD, deep: b"x"}))
    assert report.lines(), "no verdict"
    # whether the zip is accepted or rejected, a verdict is printed and nothing is left


KILLED = """\
import sys
import numpy as np
from codabench_kit.validation import validate_zip
validate_zip(sys.argv[1], images=np.zeros((2, 96, 96, 3), dtype=np.uint8), timeout=60, sandbox="none")
"""


def test_killed_cbk_folder_is_swept_next_run(isolated, tmp_path):
    init = "import os, time; open(os.path.expanduser('~/pid'), 'w').write(str(os.getpid())); time.sleep(60)"
    path = write_zip(Path("sub.zip"), {"model.py": model(init=init)})
    env = {**os.environ, "TMPDIR": str(isolated), "PYTHONPATH": os.getcwd() + os.pathsep + str(Path(__file__).parents[1])}
    cbk = subprocess.Popen([sys.executable, "-c", KILLED, str(path)], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        pid_files: list[Path] = []
        while not pid_files and time.monotonic() < deadline:
            time.sleep(0.2)
            pid_files = list(isolated.glob(f"{PREFIX}{cbk.pid}-*/home/pid"))
        assert pid_files, list(isolated.iterdir())
        time.sleep(0.2)
        os.kill(int(pid_files[0].read_text()), signal.SIGKILL)  # the model's process, then cbk
    finally:
        cbk.kill()
        cbk.wait()
    (left,) = isolated.iterdir()
    assert left.name.startswith(f"{PREFIX}{cbk.pid}-")
    assert sweep_stale(isolated) == [left]
    assert list(isolated.iterdir()) == []


def test_next_validate_sweeps_a_dead_pid_folder(isolated):
    stale = isolated / f"{PREFIX}999999999-abc"
    (stale / "run").mkdir(parents=True)
    (stale / "run" / "x").write_text("x")
    (stale / "run").chmod(0o000)
    live = isolated / f"{PREFIX}{os.getpid()}-live"  # this process's: not stale
    live.mkdir()
    report = validate_zip(write_zip(Path("sub.zip"), GOOD), images=IMAGES, timeout=30)
    assert report.ok, report.lines()
    assert not stale.exists() and live.exists()
    live.rmdir()
