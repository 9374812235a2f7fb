"""The sandbox that ``cbk validate`` runs model code in, and the fallback without one.

Each confining test runs under ``bwrap`` and under ``unshare``, each forced through the
``sandbox`` argument, and skips saying why where that sandbox does not work here
(``pytest -rs`` prints the reason). The fallback is forced with ``CBK_SANDBOX=none`` or
``sandbox="none"``, or brought about by a PATH whose ``bwrap`` and ``unshare`` fail.
Every :func:`validate` call also checks that nothing under tmp_path changed and that
validate's temp folder is gone (see tests/test_validate.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
import test_validate
from test_validate import assert_rejected, model, validate, write_zip

from codabench_kit.cli import cli
from codabench_kit.errors import CbkError
from codabench_kit.validation.sandbox import SANDBOX_ENV, Sandbox, choose_sandbox

isolated = test_validate.isolated  # the fixture: cwd, tempfile's folder and HOME under tmp_path

KINDS = ["bwrap", "unshare"]
NO_NETWORK_HINT = "— validate runs model code without network access; bundle what it needs in the zip"
READ_ONLY_HINT = "— validate lets model code write only in its temporary folder ($HOME and $TMPDIR)"
FALLBACK_TAIL = " — model code runs with your permissions and network access"
AS_ROOT = ", process limit (run as root)" if os.geteuid() == 0 else ""
"""The kernel does not apply RLIMIT_NPROC to root, and the sandbox line says so."""


def confined(kind: str, *, read_only: bool = False, protection: str | None = None) -> Sandbox:
    """The ``kind`` sandbox, or skip saying why it is not available here, cannot make the
    file system read-only (``read_only``) or lacks ``protection``."""
    try:
        chosen = choose_sandbox(kind)
    except CbkError as exc:
        pytest.skip(f"no {kind} sandbox on this machine: {exc}")
    if read_only and not chosen.read_only:
        pytest.skip(f"{chosen.describe()}: the file system cannot be made read-only here")
    if protection is not None and protection not in chosen.protections:
        pytest.skip(f"{chosen.describe()}: no {protection!r} on this machine")
    return chosen


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 (outside any sandbox); yields its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def connecting_model(port: int) -> bytes:
    return model(
        f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
        "return np.zeros(len(X), dtype=int)"
    )


def fake_programs(folder: Path, scripts: dict[str, str]) -> Path:
    """Shell scripts named like programs in ``folder``, for a PATH of fakes."""
    folder.mkdir()
    for name, body in scripts.items():
        (folder / name).write_text("#!/bin/sh\n" + body)
        (folder / name).chmod(0o755)
    return folder


# --- confined ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_connection_to_localhost_blocked(isolated, listener, kind):
    chosen = confined(kind)
    seen: list[str] = []
    report = validate(write_zip(Path("sub.zip"), {"model.py": connecting_model(listener)}), sandbox=kind,
                      progress=seen.append)  # fmt: skip
    line = assert_rejected(report, "predict", "predict(X) raised: ")
    assert line.endswith(NO_NETWORK_HINT), line
    assert "no network" in chosen.describe() and report.sandbox == chosen.describe() and chosen.describe() in seen


@pytest.mark.parametrize("kind", KINDS)
def test_name_resolution_blocked(isolated, kind):
    confined(kind)
    source = model("import socket\nsocket.getaddrinfo('pypi.org', 443)\nreturn np.zeros(len(X), dtype=int)")
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}), sandbox=kind)
    line = assert_rejected(report, "predict", "predict(X) raised: gaierror: ")
    assert line.endswith(NO_NETWORK_HINT), line


ALLOWED_WRITES = """\
import os, subprocess, tempfile
try:  # its own folder, the unpacked zip, is read-only
    open('inside.txt', 'w').write('escaped')
    raise AssertionError('wrote in its own folder')
except OSError:
    pass
open('../../escaped.txt', 'w').write('ok')  # validate's temp folder
tempfile.mkstemp()
open(os.path.expanduser('~/.cache-like'), 'w').write('ok')
if os.path.isdir('/dev/shm'):
    open('/dev/shm/SHM_NAME', 'w').write('ok')  # a private /dev/shm
try:  # there is no way back to a writable file system
    subprocess.run(['mount', '-o', 'remount,bind,rw', '/'], capture_output=True)
except OSError:
    pass
"""


@pytest.mark.parametrize("target", ["tmp_path", "caller-home", "caller-cwd"])
@pytest.mark.parametrize("kind", KINDS)
def test_write_outside_its_folder_fails(isolated, tmp_path, kind, target):
    confined(kind, read_only=True)
    outside = {"tmp_path": tmp_path / "outside.txt", "caller-home": tmp_path / "home" / ".bashrc",
               "caller-cwd": tmp_path / "work" / "evil.py"}[target]  # fmt: skip
    shm_name = f"cbk-test-{uuid.uuid4().hex}"
    init = ALLOWED_WRITES.replace("SHM_NAME", shm_name) + f"open({str(outside)!r}, 'w').write('escaped')"
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(init=init)}), sandbox=kind)
    # Paths that lead to a mount point inside the sandbox exist there, read-only; others do not exist
    line = assert_rejected(report, "load", f"Model() failed: ")
    assert (f"OSError: [Errno 30] Read-only file system: '{outside}'" in line and line.endswith(READ_ONLY_HINT)
            or f"FileNotFoundError: [Errno 2] No such file or directory: '{outside}'" in line), line
    assert not outside.exists() and not Path("/dev/shm", shm_name).exists()


@pytest.mark.parametrize("kind", [*KINDS, "none"])
def test_other_interpreter(isolated, kind):
    """``--python``: the model process runs under another interpreter (here a script that execs this one)."""
    if kind != "none":
        confined(kind)
    python = Path("other-python").absolute()
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    source = model(top="import sys\nassert sys.argv[0].endswith('ingest.py')")
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}), sandbox=kind, python=str(python))
    assert report.ok, report.lines()


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("stage", ["starting", "running"])
@pytest.mark.parametrize("kind", KINDS)
def test_model_dies_with_cbk(tmp_path, kind, stage):
    """When the cbk process is killed outright, the sandboxed model process dies with it.

    ``starting`` kills cbk as soon as the sandbox is on its way to ingest.py (it may still
    be bwrap, unshare or sandbox_exec.py); ``running`` once ingest.py runs.
    """
    confined(kind)
    zip_path = write_zip(tmp_path / "sub.zip", {"model.py": model("import time; time.sleep(120)")})
    scratch = tmp_path / "scratch"  # the killed cbk cannot clean up; this folder is removed below
    scratch.mkdir()
    code = (f"from codabench_kit.validation import validate_zip; "
            f"validate_zip({str(zip_path)!r}, timeout=120, sandbox={kind!r})")  # fmt: skip
    cbk = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(scratch)})
    model_pids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        ready = _is_model if stage == "running" else _leads_to_model
        while not any(ready(p) for p in _descendants(cbk.pid)) and time.monotonic() < deadline:
            time.sleep(0.01)
        model_pids = _descendants(cbk.pid)
        assert any(ready(p) for p in model_pids), "the model process never started"
        cbk.send_signal(signal.SIGKILL)
        cbk.wait()
        deadline = time.monotonic() + 10
        while any(_running(p) for p in model_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(p) for p in model_pids), "the model process outlived cbk"
    finally:
        if cbk.poll() is None:
            cbk.kill()
            cbk.wait()
        for pid in model_pids:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(scratch)


def _argv(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _leads_to_model(pid: int) -> bool:
    return any(arg.endswith(b"ingest.py") for arg in _argv(pid))


def _is_model(pid: int) -> bool:
    """Whether ``pid`` runs ingest.py itself (not bwrap, unshare or sandbox_exec.py on the way to it)."""
    argv = _argv(pid)
    return len(argv) > 1 and argv[1].endswith(b"ingest.py")


# --- the fallback and the choice ---------------------------------------------------------


def test_fallback_forced_with_environment(isolated, listener, monkeypatch):
    monkeypatch.setenv(SANDBOX_ENV, "none")
    seen: list[str] = []
    report = validate(write_zip(Path("sub.zip"), {"model.py": connecting_model(listener)}), progress=seen.append)
    assert report.ok, report.lines()  # it connected: nothing confined it
    assert report.sandbox == "sandbox: none (disabled with CBK_SANDBOX=none)" + FALLBACK_TAIL
    assert report.sandbox in seen


def test_fallback_forced_with_argument(isolated, listener):
    report = validate(write_zip(Path("sub.zip"), {"model.py": connecting_model(listener)}), sandbox="none")
    assert report.ok, report.lines()
    assert report.sandbox == "sandbox: none (disabled with sandbox='none')" + FALLBACK_TAIL


def test_fallback_when_neither_works(isolated, listener, monkeypatch):
    fakes = fake_programs(Path("fake-bin").absolute(), {
        "bwrap": "echo 'bwrap: setting up uid map: Permission denied' >&2; exit 1\n",
        "unshare": "echo 'unshare: unshare failed: Operation not permitted' >&2; exit 1\n",
    })  # fmt: skip
    monkeypatch.setenv("PATH", str(fakes))
    report = validate(write_zip(Path("sub.zip"), {"model.py": connecting_model(listener)}))
    assert report.ok, report.lines()
    assert report.sandbox == (
        "sandbox: none (neither bwrap nor user namespaces available: bwrap failed: bwrap: setting up uid map: "
        "Permission denied; unshare -r -n failed: unshare: unshare failed: Operation not permitted)" + FALLBACK_TAIL
    )


def test_fallback_when_nothing_is_installed(isolated, monkeypatch):
    monkeypatch.setenv("PATH", str(Path("empty-bin").absolute()))
    report = validate(write_zip(Path("sub.zip"), {"model.py": model()}))
    assert report.ok, report.lines()
    assert report.sandbox == (
        "sandbox: none (neither bwrap nor user namespaces available: bwrap not found; unshare not found)"
        + FALLBACK_TAIL
    )


@pytest.mark.parametrize("flag, error, protections, missing", [
    ("-m", "unshare: cannot change root filesystem propagation: Permission denied",
     "no network, own pid/ipc/uts namespaces, limits",
     "read-only fs, own mount namespace, minimal /dev, no home, /tmp or /run"),
    ("-p", "unshare: unshare failed: Invalid argument", "no network, limits",
     "read-only fs, own pid/ipc/uts/mount namespaces, minimal /dev, no home, /tmp or /run"),
], ids=["mount-namespaces-fail", "pid-namespaces-fail-too"])
def test_unshare_without_some_namespaces_says_what_is_missing(isolated, listener, monkeypatch, flag,
                                                             error, protections, missing):
    """``unshare`` works but not with ``flag`` (``-m``: no mount namespace; ``-p``: only
    ``unshare -r -n`` is left): no network, and the line lists every missing protection."""
    real = shutil.which("unshare")
    if real is None:
        pytest.skip("unshare is not installed")
    confined("unshare")
    fakes = fake_programs(Path("fake-bin").absolute(), {"unshare": f"""\
for a in "$@"; do
    [ "$a" = "--" ] && break
    [ "$a" = "{flag}" ] && {{ echo '{error}' >&2; exit 1; }}
done
exec "{real}" "$@"
"""})  # fmt: skip
    # No bwrap, and the fake unshare; the programs sandbox_exec.py runs are still on PATH.
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(fakes / name) if name == "unshare" else None)
    report = validate(write_zip(Path("sub.zip"), {"model.py": connecting_model(listener)}))
    line = assert_rejected(report, "predict", "predict(X) raised: ")
    assert line.endswith(NO_NETWORK_HINT)
    assert report.sandbox == f"sandbox: unshare ({protections}; missing: {missing}{AS_ROOT} — {error})"


def test_forced_sandbox_that_does_not_work_is_an_error(isolated, monkeypatch):
    monkeypatch.setenv("PATH", str(Path("empty-bin").absolute()))
    path = write_zip(Path("sub.zip"), {"model.py": model()})
    for kind, message in [("bwrap", "CBK_SANDBOX=bwrap: expected a working bubblewrap, received: bwrap not found"),
                          ("unshare", "CBK_SANDBOX=unshare: expected working user namespaces, received: "
                                      "unshare not found")]:  # fmt: skip
        monkeypatch.setenv(SANDBOX_ENV, kind)
        with pytest.raises(CbkError, match=message):
            validate(path)
        with pytest.raises(CbkError, match=message.replace(f"CBK_SANDBOX={kind}", f"sandbox='{kind}'")):
            validate(path, sandbox=kind)
    monkeypatch.setenv(SANDBOX_ENV, "docker")
    with pytest.raises(CbkError, match="CBK_SANDBOX: expected one of auto, bwrap, unshare, none, received 'docker'"):
        validate(path)
    with pytest.raises(CbkError, match="sandbox: expected one of auto, bwrap, unshare, none, received 'off'"):
        validate(path, sandbox="off")


@pytest.mark.parametrize("setting", ["auto", "none"])
def test_cli_says_which_sandbox(isolated, monkeypatch, setting):
    monkeypatch.setenv(SANDBOX_ENV, setting)
    expected = choose_sandbox().describe()
    assert expected == choose_sandbox("auto").describe() if setting == "auto" else "CBK_SANDBOX=none" in expected
    write_zip(Path("sub.zip"), {"model.py": model()})
    result = CliRunner().invoke(cli, ["validate", "sub.zip", "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert expected in result.stderr.splitlines(), result.stderr
    assert result.stdout.splitlines()[-1] == "valid: sub.zip"
