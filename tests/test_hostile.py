"""Hostile submissions: each tries to harm the host from model code, under each sandbox.

Every case runs under ``bwrap`` and under ``unshare`` (forced through the ``sandbox``
argument) and skips saying why where that sandbox does not work here, or lacks the
protection the case needs (``pytest -rs`` prints the reason). Model code probes from
``Model()``: where its probes find a way out it raises, so a contained case is a
passing report. The host is then checked itself: the test's ``sleep`` still runs and is
not stopped, no process holding the case's marker survives, no IPC object or file is left
outside validate's temp folder, the Unix-socket listener received nothing, and no secret
shows in the report or the log. :func:`test_validate.validate` also checks that nothing
under tmp_path changed and that validate's temp folder is gone.

Some cases signal every process model code can see (SIGKILL, SIGSTOP, ``kill(-1)``): run
outside a PID namespace, as root, that is every process on the machine. Their model code
first checks that it sees only a handful of processes and refuses otherwise; keep that
guard when changing them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import test_sandbox
import test_validate
from test_validate import model, validate, write_zip

from codabench_kit.validation.sandbox import Sandbox, python_paths

isolated = test_validate.isolated  # the fixture: cwd, tempfile's folder and HOME under tmp_path

KINDS = ["bwrap", "unshare"]
SECRET = f"cbk-secret-{uuid.uuid4().hex}"
CONTAINED = "return np.zeros(len(X), dtype=int)"


def sandbox_with(kind: str, protection: str) -> Sandbox:
    """The ``kind`` sandbox, or skip saying why it does not work here or lacks ``protection``."""
    return test_sandbox.confined(kind, protection=protection)


def run(kind: str, init: str, *, timeout: float = 30, predict: str = CONTAINED, top: str = ""):
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(predict, init=init, top=top)}),
                      sandbox=kind, timeout=timeout)  # fmt: skip
    text = "\n".join([*report.lines(), report.log_tail or ""])
    assert SECRET not in text, text
    return report


def assert_contained(report) -> None:
    assert report.ok, report.lines()


def _state(pid: int) -> str | None:
    """The process's state letter (``T`` stopped, ``Z`` zombie), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _with_marker(marker: str) -> list[int]:
    """Live processes (not zombies) whose command line holds ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if any(marker.encode() in arg for arg in argv) and _state(pid) not in (None, "Z"):
            found.append(pid)
    return found


@pytest.fixture
def bystander():
    """A ``sleep`` of the caller's, which model code must not be able to signal; yields its pid."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc.pid
    proc.kill()
    proc.wait()


# --- processes ---------------------------------------------------------------------------

SIGNAL_EVERYONE = """\
import os, signal
# Safety: refuse to signal anything unless this is a PID namespace of its own (a handful of
# processes); run without one, this code would signal every process of the caller's.
if len([p for p in os.listdir('/proc') if p.isdigit()]) > 10:
    raise AssertionError('not in a PID namespace of its own: refusing to signal')
mine = {os.getpid(), os.getppid()}
hit = []
for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()] + [BYSTANDER]:
    if pid in mine:
        continue
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        try:
            os.kill(pid, sig)
            hit.append(pid)
        except OSError:
            pass
if BYSTANDER in hit:
    raise AssertionError('signalled the bystander %d' % BYSTANDER)
"""
GUARD = """# Safety: refuse to signal anything unless this is a PID namespace of its own (a handful of
# processes); run without one, this code would signal every process of the caller's.
if len([p for p in os.listdir('/proc') if p.isdigit()]) > 10:
    raise AssertionError('not in a PID namespace of its own: refusing to signal')
"""
KILL_ALL = """\
import os, signal, subprocess, sys
# Safety: refuse to signal anything unless this is a PID namespace of its own (a handful of
# processes); run without one, this code would signal every process of the caller's.
if len([p for p in os.listdir('/proc') if p.isdigit()]) > 10:
    raise AssertionError('not in a PID namespace of its own: refusing to signal')
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
os.kill(-1, signal.SIGKILL)  # every process it may signal but itself (and its namespace's init)
assert child.wait() == -signal.SIGKILL
"""


@pytest.mark.parametrize("how", ["each-pid", "kill-minus-one"])
@pytest.mark.parametrize("kind", KINDS)
def test_signals_reach_no_host_process(isolated, bystander, kind, how):
    """SIGSTOP and SIGKILL to every pid model code sees and to the bystander's; or kill(-1, SIGKILL)."""
    sandbox_with(kind, "own pid/ipc/uts/mount namespaces")
    assert_contained(run(kind, SIGNAL_EVERYONE.replace("BYSTANDER", str(bystander)) if how == "each-pid" else KILL_ALL))
    assert _state(bystander) not in (None, "Z", "T"), f"the bystander is {_state(bystander)}"
    assert _state(os.getpid()) == "R"  # cbk itself was not stopped (it returned)


@pytest.mark.parametrize("kind", KINDS)
def test_stopping_everything_cannot_stop_the_timeout(isolated, bystander, kind):
    """Model code SIGSTOPs its parent and every pid it sees, then hangs: the timeout still fires."""
    sandbox_with(kind, "own pid/ipc/uts/mount namespaces")
    init = ("import os, signal, time\n"
            f"{GUARD}"
            "for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()] + [os.getppid()]:\n"
            "    if pid != os.getpid():\n"
            "        try:\n"
            "            os.kill(pid, signal.SIGSTOP)\n"
            "        except OSError:\n"
            "            pass\n"
            "time.sleep(60)")  # fmt: skip
    report = run(kind, init, timeout=4)  # validate() asserts it returned within the timeout
    assert not report.ok and "timed out after 4 s" in report.lines()[-1], report.lines()
    assert _state(bystander) not in (None, "Z", "T")


DAEMON = """\
import os, subprocess, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(120)', 'MARKER'])
    os._exit(0)
os.wait()
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', 'MARKER'], start_new_session=True)
import time
deadline = time.time() + 10
def count():
    pids = [p for p in os.listdir('/proc') if p.isdigit()]
    return len([p for p in pids if b'MARKER' in open('/proc/%s/cmdline' % p, 'rb').read()])
while count() < 2:
    if time.time() > deadline:
        raise AssertionError('the daemons did not start')
    time.sleep(0.05)
"""


@pytest.mark.parametrize("ending", ["returns", "times-out"])
@pytest.mark.parametrize("kind", KINDS)
def test_setsid_daemons_die_with_the_run(isolated, kind, ending):
    """A double-forked setsid() daemon and a start_new_session child outlive neither a
    finished run nor a timed-out one."""
    sandbox_with(kind, "own pid/ipc/uts/mount namespaces")
    marker = f"cbk-daemon-{uuid.uuid4().hex}"
    init = DAEMON.replace("MARKER", marker)
    if ending == "times-out":
        report = run(kind, init + "time.sleep(60)", timeout=5)
        assert "timed out after 5 s" in report.lines()[-1], report.lines()
    else:
        assert_contained(run(kind, init))
    deadline = time.monotonic() + 5
    while _with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _with_marker(marker)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"daemons {survivors} outlived the run"


# --- IPC -------------------------------------------------------------------------------

IPC_OBJECTS = """\
import ctypes, ctypes.util, os
libc = ctypes.CDLL(None, use_errno=True)
if libc.shmget(KEY, 4096, 0o1000 | 0o666) < 0:  # IPC_CREAT
    raise AssertionError('shmget: %s' % os.strerror(ctypes.get_errno()))
if libc.msgget(KEY, 0o1000 | 0o666) < 0:
    raise AssertionError('msgget: %s' % os.strerror(ctypes.get_errno()))
if libc.semget(KEY, 1, 0o1000 | 0o666) < 0:
    raise AssertionError('semget: %s' % os.strerror(ctypes.get_errno()))
rt = libc if hasattr(libc, 'mq_open') else ctypes.CDLL(ctypes.util.find_library('rt'), use_errno=True)
rt.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
if rt.mq_open(b'/NAME', os.O_CREAT | os.O_RDWR, 0o666, None) < 0:
    raise AssertionError('mq_open: %s' % os.strerror(ctypes.get_errno()))
open('/dev/shm/NAME', 'w').write('left behind')
"""


def _sysv_keys() -> set[int]:
    keys = set()
    for kind in ("shm", "msg", "sem"):
        path = Path("/proc/sysvipc", kind)
        if path.exists():
            keys |= {int(line.split()[0]) for line in path.read_text().splitlines()[1:] if line.strip()}
    return keys


def _mq_exists(name: str) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    rt = libc if hasattr(libc, "mq_open") else ctypes.CDLL(ctypes.util.find_library("rt"), use_errno=True)
    rt.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    mqd = rt.mq_open(f"/{name}".encode(), os.O_RDONLY, 0, None)
    if mqd < 0:
        return False
    rt.mq_close(mqd)
    rt.mq_unlink(f"/{name}".encode())
    return True


@pytest.mark.skipif(not Path("/proc/sysvipc/shm").exists(), reason="needs /proc/sysvipc to see SysV IPC objects")
@pytest.mark.parametrize("kind", KINDS)
def test_ipc_objects_stay_private_and_go(isolated, kind):
    """SysV shared memory, message queue and semaphore, a POSIX message queue and a /dev/shm
    file: created inside, none seen on the host afterwards."""
    sandbox_with(kind, "own pid/ipc/uts/mount namespaces")
    key = int.from_bytes(os.urandom(3), "big") + 1
    name = f"cbk-test-{uuid.uuid4().hex}"
    before = _sysv_keys()
    assert_contained(run(kind, IPC_OBJECTS.replace("KEY", str(key)).replace("NAME", name)))
    assert key not in _sysv_keys() - before, "a SysV IPC object was left on the host"
    assert not _mq_exists(name), "a POSIX message queue was left on the host"
    assert not Path("/dev/shm", name).exists()


# --- devices ---------------------------------------------------------------------------

DEVICES = """\
import os, stat
allowed = {'null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'console'}
opened = []
for root, dirs, files in os.walk('/dev'):
    for name in files:
        path = os.path.join(root, name)
        try:
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if (stat.S_ISBLK(mode) or stat.S_ISCHR(mode)) and name not in allowed and not name.startswith('nvidia'):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY))  # opened, never written
                opened.append(path)
            except OSError:
                pass
if opened:
    raise AssertionError('device nodes open for writing: %s' % opened)
try:
    os.mknod('/dev/cbk-disk', 0o600 | stat.S_IFBLK, os.makedev(8, 0))
    raise AssertionError('mknod worked')
except OSError:
    pass
"""


@pytest.mark.parametrize("kind", KINDS)
def test_no_host_devices_writable(isolated, kind):
    """Only null, zero, full, random, urandom, tty (and GPUs) in /dev; no mknod."""
    sandbox_with(kind, "minimal /dev")
    before = set(os.listdir("/dev"))
    assert_contained(run(kind, DEVICES))
    assert set(os.listdir("/dev")) <= before


# --- files and sockets -----------------------------------------------------------------

READ_SECRETS = """\
import os
found = []
candidates = PATHS + ['/proc/%s/root' % p + q for p in os.listdir('/proc') if p.isdigit() for q in PATHS]
for path in candidates:
    try:
        data = open(path, 'rb').read()
    except OSError:
        continue
    found.append(path)
listed = []
for folder, allowed in FOLDERS.items():
    try:
        extra = set(os.listdir(folder)) - set(allowed)
    except OSError:
        continue
    if extra:
        listed.append((folder, extra))
if found or listed:
    raise AssertionError('read %d secret file(s), listed %s' % (len(found), [f for f, _ in listed]))
"""


@pytest.mark.parametrize("kind", KINDS)
def test_caller_files_not_readable(isolated, tmp_path, monkeypatch, kind):
    """A secret in the caller's (fake) home, one in its cwd and one in /tmp's test folder:
    neither readable directly nor through /proc/PID/root; those folders not even listable."""
    sandbox_with(kind, "no home, /tmp or /run")
    home = tmp_path / "fakehome"
    home.mkdir()
    (home / ".netrc").write_text(SECRET)
    (Path.cwd() / "secret.txt").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    monkeypatch.setenv("HOME", str(home))
    paths = [str(home / ".netrc"), str(Path.cwd() / "secret.txt"), str(tmp_path / "secret.txt")]
    folders = _visible_in([str(home), str(Path.cwd()), os.path.expanduser("~root"), "/run", "/var", "/home"])
    assert_contained(run(kind, READ_SECRETS.replace("PATHS", repr(paths)).replace("FOLDERS", repr(folders))))


def _visible_in(folders: list[str]) -> dict[str, list[str]]:
    """For each folder, the entries the sandbox may show in it: those on the way to the Python install."""
    visible = [*python_paths(sys.executable), tempfile.gettempdir()]
    allowed = {}
    for folder in folders:
        prefix = folder.rstrip("/") + "/"
        allowed[folder] = sorted({p[len(prefix):].split("/")[0] for p in visible if p.startswith(prefix)})
    return allowed


WRITE_EVERYWHERE = """\
import os
wrote = []
for folder in FOLDERS:
    try:
        with open(os.path.join(folder, 'NAME'), 'w') as f:
            f.write('escaped')
        wrote.append(folder)
    except OSError:
        pass
# the private places it may write: its HOME, TMPDIR and /dev/shm
for folder in (os.environ['HOME'], os.environ['TMPDIR'], '/dev/shm'):
    open(os.path.join(folder, 'NAME'), 'w').write('ok')
if [f for f in wrote if f not in ('/tmp', '/var/tmp', '/dev/shm')]:  # private ones
    raise AssertionError('wrote in %s' % wrote)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_no_files_outside_its_folder(isolated, tmp_path, kind):
    """Writes to the host's /tmp, /var/tmp, /dev/shm, /root, the caller's cwd and tmp_path fail or land
    in a private place that goes with the run."""
    sandbox_with(kind, "read-only fs")
    name = f"cbk-test-{uuid.uuid4().hex}"
    folders = ["/tmp", "/var/tmp", "/dev/shm", "/root", "/run", "/", str(Path.cwd()), str(tmp_path)]
    assert_contained(run(kind, WRITE_EVERYWHERE.replace("FOLDERS", repr(folders)).replace("NAME", name)))
    left = [folder for folder in folders if Path(folder, name).exists()]
    assert not left, f"files left in {left}"


SEND_SECRET = """\
import os, socket, stat
sent = []
targets = [PATH] + [os.path.join(d, n) for d in ('/run', '/var/run', '/tmp', '/run/user') if os.path.isdir(d)
                    for n in os.listdir(d)]
for path in targets:
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(path)
        s.sendall(b'stolen')
        sent.append(path)
    except OSError:
        pass
try:  # an abstract socket lives in the network namespace
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(ABSTRACT)
    s.sendall(b'stolen')
    sent.append('abstract')
except OSError:
    pass
if sent:
    raise AssertionError('sent to %s' % sent)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_unix_sockets_unreachable(isolated, tmp_path, kind):
    """Listeners on the host, at a path and in the abstract namespace, receive nothing."""
    sandbox_with(kind, "no home, /tmp or /run")
    path = str(tmp_path / "listener.sock")
    abstract = f"\0cbk-test-{uuid.uuid4().hex}"
    received: list[bytes] = []
    servers = []
    for address in (path, abstract):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen(4)
        server.settimeout(0.2)
        servers.append(server)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            for server in servers:
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(2)
                    try:
                        received.append(conn.recv(1024) or b"(connected)")
                    except OSError:
                        received.append(b"(connected)")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        report = run(kind, SEND_SECRET.replace("ABSTRACT", repr(abstract)).replace("PATH", repr(path)))
    finally:
        stop.set()
        thread.join(5)
        for server in servers:
            server.close()
    assert_contained(report)
    assert received == [], received


PLANT = """\
import os, sys
io = os.path.dirname(os.path.abspath(sys.argv[4]))  # ingest.py SUBMISSION INPUT OUTPUT RESULT [PROBE]
real_replace = os.replace

def replace(source, target):  # ingest.py writes RESULT.json with os.replace: plant after the last write
    final = os.path.basename(str(target)) == 'result.json' and '"done"' in open(source).read()
    real_replace(source, target)
    if final:
        for name, how in (('result.json', 'link'), ('output.npy', 'fifo'), ('output.probe.npy', 'fifo')):
            path = os.path.join(io, name)
            if os.path.lexists(path):
                os.unlink(path)
            if how == 'link':
                os.symlink(TARGET, path)
            else:
                os.mkfifo(path)

os.replace = replace
"""


@pytest.mark.parametrize("kind", KINDS)
def test_planted_links_and_fifos_not_followed(isolated, tmp_path, kind):
    """Model code swaps its results for a symlink to a file of the caller's and FIFOs after each write:
    cbk neither reads the caller's file (its secret would show in the FAIL line) nor blocks."""
    sandbox_with(kind, "read-only fs")
    target = tmp_path / "caller-secret.json"
    target.write_text(json.dumps({"phase": "done", "error": {"phase": "predict", "type": "Leak", "message": SECRET}}))
    report = run(kind, PLANT.replace("TARGET", repr(str(target))), timeout=20)  # run(): no secret in the lines
    assert not report.ok, report.lines()


# --- the environment -------------------------------------------------------------------

@pytest.mark.parametrize("kind", [*KINDS, "none"])
def test_secret_environment_variable_not_visible(isolated, monkeypatch, kind):
    """A secret in the caller's environment is in no variable model code sees, in no other
    process's environ it can read, and so in no report line (the model puts all it found in its error)."""
    if kind != "none":
        sandbox_with(kind, "no network")
    monkeypatch.setenv("CBK_TEST_TOKEN", SECRET)
    monkeypatch.setenv("PYTHONSTARTUP", "/nonexistent-startup.py")
    init = ("import os\n"
            "seen = dict(os.environ)\n"
            f"for p in [p for p in os.listdir('/proc') if p.isdigit()] if {kind != 'none'} else []:\n"
            "    try:\n"
            "        seen[p] = open('/proc/%s/environ' % p, 'rb').read().decode('latin-1')\n"
            "    except OSError:\n"
            "        pass\n"
            "found = [k for k, v in seen.items() if 'cbk-secret-' in v or 'CBK_TEST_TOKEN' in v or 'STARTUP' in v]\n"
            "found += [k for k in os.environ if k.startswith('CBK_TEST') or k == 'PYTHONSTARTUP']\n"
            "if found:\n"
            "    raise RuntimeError('found the secret in %s' % found)")  # fmt: skip
    assert_contained(run(kind, init))  # run() also asserts the secret is in no line and not in the log


# --- session and privileges -----------------------------------------------------------

SESSION = """\
import ctypes, os, socket
if os.getsid(0) == 0:  # its session leader is outside its PID namespace: the caller's session
    raise AssertionError('runs in the session of a process outside the sandbox')
try:
    os.close(os.open('/dev/tty', os.O_RDWR))
    raise AssertionError('has a controlling terminal')
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
if libc.sethostname(b'cbk-owned', 9) == 0:
    raise AssertionError('set the host name')
for line in open('/proc/self/status'):
    if line.startswith(('CapEff:', 'CapBnd:')) and int(line.split()[1], 16):
        raise AssertionError('capabilities left: ' + line.strip())
    if line.startswith('NoNewPrivs:') and line.split()[1] != '1':
        raise AssertionError('no_new_privs unset')
"""


@pytest.mark.parametrize("kind", KINDS)
def test_new_session_no_terminal_no_capabilities(isolated, kind):
    """Model code runs in a session that began inside the sandbox, without a controlling terminal (no TIOCSTI into
    the caller's), has no capabilities, cannot gain any, cannot rename the host."""
    sandbox_with(kind, "own pid/ipc/uts/mount namespaces")
    hostname = socket.gethostname()
    assert_contained(run(kind, SESSION))
    assert socket.gethostname() == hostname


KERNEL_SETTINGS = """\
import os
value = open('/proc/sys/fs/file-max').read()
try:  # writes back the value it read: harmless even where it works
    with open('/proc/sys/fs/file-max', 'w') as f:
        f.write(value)
    raise AssertionError('wrote a sysctl')
except OSError:
    pass
for path in ('/proc/sys/kernel/core_pattern', '/proc/sysrq-trigger', '/sys/kernel/mm/transparent_hugepage/enabled'):
    try:
        os.close(os.open(path, os.O_WRONLY))  # opened, never written
        raise AssertionError('%s open for writing' % path)
    except OSError:
        pass
"""


@pytest.mark.parametrize("kind", KINDS)
def test_no_kernel_settings(isolated, kind):
    """Sysctls (``kernel.core_pattern`` would run a program as root on the host) and ``/sys`` are read-only,
    even where uid 0 inside maps to the caller's root."""
    sandbox_with(kind, "read-only fs")
    assert_contained(run(kind, KERNEL_SETTINGS))


KEYCTL = {"x86_64": 250, "aarch64": 219}
ADD_KEY = {"x86_64": 248, "aarch64": 217}


@pytest.mark.skipif(os.uname().machine not in KEYCTL, reason="keyctl's system call number known for x86_64 and aarch64")
@pytest.mark.parametrize("kind", KINDS)
def test_session_keyring_not_readable(isolated, kind):
    """A key in the caller's session keyring (Kerberos tickets, ecryptfs keys live there) cannot be
    read by model code (this test gives itself a new session keyring first, holding the key)."""
    sandbox_with(kind, "limits")
    libc = ctypes.CDLL(None, use_errno=True)
    keyctl, add_key = KEYCTL[os.uname().machine], ADD_KEY[os.uname().machine]
    if libc.syscall(keyctl, 1, None) < 0:  # KEYCTL_JOIN_SESSION_KEYRING
        pytest.skip(f"no kernel keyrings here: {os.strerror(ctypes.get_errno())}")
    key = libc.syscall(add_key, b"user", b"cbk-test", SECRET.encode(), len(SECRET), -3)  # @s
    assert key > 0, os.strerror(ctypes.get_errno())
    try:
        init = ("import ctypes, os\n"
                "buf = ctypes.create_string_buffer(256)\n"
                f"n = ctypes.CDLL(None).syscall({keyctl}, 11, {key}, buf, 256)  # KEYCTL_READ\n"
                "if n >= 0:\n"
                "    raise AssertionError('read the caller\\'s key: %d bytes' % n)")  # fmt: skip
        assert_contained(run(kind, init))
    finally:
        libc.syscall(keyctl, 3, key)  # KEYCTL_REVOKE


# --- limits ----------------------------------------------------------------------------

LIMITS = """\
import resource
for limit, most in ((resource.RLIMIT_NOFILE, 4096), (resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, 8 << 30)):
    soft, hard = resource.getrlimit(limit)
    if hard == resource.RLIM_INFINITY or hard > most:
        raise AssertionError('limit %d: %s' % (limit, (soft, hard)))
    try:
        resource.setrlimit(limit, (hard + 1, hard + 1))
        raise AssertionError('raised limit %d' % limit)
    except (ValueError, OSError):
        pass
if resource.getrlimit(resource.RLIMIT_NPROC)[1] == resource.RLIM_INFINITY:
    raise AssertionError('no process limit')
"""


@pytest.mark.parametrize("kind", KINDS)
def test_resource_limits_set_and_fixed(isolated, kind):
    """Open files, file size, core dumps and processes are limited, and model code cannot raise them."""
    sandbox_with(kind, "limits")
    assert_contained(run(kind, LIMITS))
