"""Set up the sandbox around the command that runs model code, then exec it.

STANDALONE: stdlib only, Linux only. ``cbk validate`` runs it twice around the sandbox
program, with its own Python::

    python sandbox_exec.py --parent PID --limits -- bwrap ... -- COMMAND ARG...
    python sandbox_exec.py --parent PID --limits -- unshare OPTIONS -- \
        python sandbox_exec.py --inside [--writable DIR] [--visible PATH]... [--read-only PATH]... \
        [--no-init] -- COMMAND ARG...

Outside (``--parent``), before the sandbox program starts, it:

1. asks the kernel to SIGKILL it when its parent (cbk, process PID) dies, and stops at once
   if PID is no longer its parent (cbk died before that);
2. with ``--limits``, sets resource limits that everything started inside inherits: at
   most PROCESS_HEADROOM more processes (threads count) for this uid, files of at most
   FILE_SIZE bytes, OPEN_FILES open files, no core dumps; and joins a new, empty session
   keyring (the caller's holds keys that whoever possesses it can read);
3. execs the rest, which keeps this process id (cbk's kill still reaches it).

Inside ``unshare`` (``--inside``), which has already given it a user namespace (root inside,
mapped to the caller), empty network, new PID, IPC and UTS namespaces and, with ``-m``, a
private mount namespace with ``/proc`` of the new PID namespace, it:

1. with ``--writable DIR``: builds a new root on a tmpfs holding read-only binds of the
   system paths, the ETC_FILES of ``/etc``, ``/proc`` (read-only: no sysctl writes), each ``--visible`` path, DIR bound
   writable with each ``--read-only`` path read-only again, and a minimal ``/dev`` (null,
   zero, full, random, urandom, tty, a private ``shm``, GPU nodes); pivots into it with ``pivot_root``
   and detaches the old root, so the caller's home, ``/tmp`` and ``/run`` are gone;
2. sets no_new_privs and empties its capability bounding set, so model code, though uid 0
   in the namespace, has no capabilities and cannot mount anything;
3. stays the PID namespace's init (unless ``--no-init``): forks COMMAND in a new session,
   reaps every orphan, and exits with COMMAND's status (128 + N when signal N killed it) as
   soon as COMMAND ends, which kills everything left in the namespace, daemons included.

Any failure before the exec prints one line starting ``cbk sandbox:`` and exits 125.
"""

import ctypes
import errno
import glob
import os
import platform
import resource
import signal
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MS_PRIVATE, MNT_DETACH = 1 << 18, 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
FAILED = 125

PROCESS_HEADROOM = 4096
FILE_SIZE = 8 << 30
OPEN_FILES = 4096
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf",
             "passwd", "group", "hosts", "host.conf", "gai.conf", "os-release", "mime.types")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEVICE_GLOBS = ("/dev/nvidia*", "/dev/dxg")
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280, "i686": 288}
KEYCTL_JOIN_SESSION_KEYRING = 1
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217, "i686": 217}

# statvfs flag -> mount flag to keep when remounting (the kernel refuses to drop locked ones).
_KEEP = (
    (os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME), (os.ST_RELATIME, MS_RELATIME),
)  # fmt: skip


class SandboxFailed(Exception):
    pass


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        code = ctypes.get_errno()
        raise SandboxFailed("%s: %s" % (what, os.strerror(code)))


def _mount(source, target, fstype, flags, what):
    _check(
        _libc.mount(
            source and os.fsencode(source), os.fsencode(target), fstype and fstype.encode(), ctypes.c_ulong(flags), None
        ),
        what,
    )


def _unescape(field):
    """/proc/self/mountinfo writes space, tab, newline and backslash as octal escapes."""
    out, i = bytearray(), 0
    raw = os.fsencode(field)
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


_PROC = ["/proc"]  # where /proc is (under the old root while the new one is built)


def _mount_points():
    points = []
    with open(_PROC[0] + "/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point not in points:
                points.append(point)
    return points


def _remount_read_only(point):
    try:
        flags = os.statvfs(point).f_flag
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.ENOENT, errno.ENOTDIR):
            return  # hidden or unreachable: model code cannot reach it either
        raise SandboxFailed("statvfs %s: %s" % (point, exc.strerror)) from None
    if flags & os.ST_RDONLY:
        return
    keep = 0
    for st_flag, ms_flag in _KEEP:
        if flags & st_flag:
            keep |= ms_flag
    _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, "remount %s read-only" % point)


def _drop_capabilities():
    """Empty the bounding set: the exec'd program gets no capabilities (inheritable and ambient are empty)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            code = ctypes.get_errno()
            if code == errno.EINVAL:  # past the kernel's last capability
                break
            raise SandboxFailed("prctl(PR_CAPBSET_DROP, %d): %s" % (cap, os.strerror(code)))


def _processes_of(uid):
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/status" % entry) as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == uid:
                                count += int(_threads(f) or 1)
                            break
            except (OSError, ValueError):
                pass
    return count


def _threads(f):
    for line in f:
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 1


def set_limits():
    """Resource limits for everything started from here on (never above the current hard limits)."""
    nproc = _processes_of(os.getuid()) + PROCESS_HEADROOM
    for limit, value in ((resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, FILE_SIZE),
                         (resource.RLIMIT_NOFILE, OPEN_FILES), (resource.RLIMIT_CORE, 0)):
        soft, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(limit, (value, value))


def new_session_keyring():
    """Leave the caller's session keyring (its keys, e.g. Kerberos tickets, are readable by whoever
    possesses it) for a new, empty one, which everything started from here on inherits."""
    number = _SYS_KEYCTL.get(platform.machine())
    if number is None:
        raise SandboxFailed("keyctl: unknown system call number on %s" % platform.machine())
    if _libc.syscall(ctypes.c_long(number), KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EOPNOTSUPP):  # a kernel without keyrings has none to leak
            raise SandboxFailed("keyctl(KEYCTL_JOIN_SESSION_KEYRING): %s" % os.strerror(code))


def _bind(source, target, what, read_only=True):
    _mount(source, target, None, MS_BIND | MS_REC, "bind %s" % what)
    if read_only:
        for point in _mount_points():
            if point == target or point.startswith(target.rstrip("/") + "/"):
                _remount_read_only(point)


def _make_target(path, like):
    """An empty file or folder (like ``like``) at ``path``, its parents created."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    if os.path.isdir(like):
        if not os.path.isdir(path):
            os.mkdir(path, 0o755)
    elif not os.path.exists(path):
        open(path, "w").close()


def build_root(writable, visible, read_only):
    """The new root (see the module's docstring), pivoted into; the old one detached."""
    cwd = os.getcwd()
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "make / private")
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "tmpfs on /tmp")
    os.mkdir("/tmp/oldroot")
    os.mkdir("/tmp/newroot")
    os.chdir("/tmp")
    _pivot_root(b".", b"oldroot")
    new = "/newroot"
    _PROC[0] = "/oldroot/proc"
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "tmpfs for the new root")
    old = "/oldroot"
    for path in SYSTEM_PATHS:
        if os.path.islink(old + path):
            os.symlink(os.readlink(old + path), new + path)
        elif os.path.isdir(old + path):
            _make_target(new + path, old + path)
            _bind(old + path, new + path, path)
    for name in ETC_FILES:
        source = old + "/etc/" + name
        if os.path.exists(source):
            _make_target(new + "/etc/" + name, source)
            _bind(source, new + "/etc/" + name, "/etc/" + name)
    _make_target(new + "/proc", "/")
    _bind(old + "/proc", new + "/proc", "/proc")  # read-only: no sysctl writes, whoever uid 0 maps to
    _make_dev(old, new + "/dev")
    for path in visible:
        if os.path.lexists(old + path) and not any(path == p or path.startswith(p + "/") for p in SYSTEM_PATHS):
            _make_target(new + path, old + path)
            _bind(old + path, new + path, path)
    _make_target(new + writable, old + writable)
    _bind(old + writable, new + writable, writable, read_only=False)
    for path in read_only:
        _bind(old + path, new + path, path)
    os.chdir(new)
    _pivot_root(b".", b".")
    _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, "remount / read-only")
    try:
        os.chdir(cwd)
    except OSError:
        pass  # cwd is hidden now


def _pivot_root(new_root, put_old):
    number = _SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SandboxFailed("pivot_root: unknown system call number on %s" % platform.machine())
    _check(_libc.syscall(ctypes.c_long(number), new_root, put_old), "pivot_root")


def _make_dev(old, dev):
    os.mkdir(dev, 0o755)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "tmpfs on /dev")
    nodes = ["/dev/" + name for name in DEVICES]
    nodes += [p[len(old):] for pattern in DEVICE_GLOBS for p in glob.glob(old + pattern) if not os.path.isdir(p)]
    for node in nodes:
        if os.path.exists(old + node):
            open(dev + node[4:], "w").close()
            _mount(old + node, dev + node[4:], None, MS_BIND, "bind " + node)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, dev + "/" + name)
    os.mkdir(dev + "/shm", 0o1777)
    _mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "tmpfs on /dev/shm")


def _init(command):
    """Run ``command`` as the child of this PID namespace's init; return its exit status."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            os.execvp(command[0], command)
        except OSError as exc:
            sys.stderr.write("cbk sandbox: cannot run %s: %s\n" % (command[0], exc.strerror))
        os._exit(FAILED)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: os.kill(child, number))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return FAILED
        except InterruptedError:
            continue
        if pid == child:
            if os.WIFSIGNALED(status):
                return 128 + os.WTERMSIG(status)
            return os.WEXITSTATUS(status)


_OPTIONS = ("--parent", "--writable", "--visible", "--read-only")
_FLAGS = ("--limits", "--inside", "--no-init")


def main(argv):
    options = {name: [] for name in _OPTIONS}
    flags = set()
    while argv[:1] and argv[0] != "--":
        if argv[0] in _FLAGS:
            flags.add(argv[0])
            argv = argv[1:]
        elif argv[0] in _OPTIONS and len(argv) >= 2:
            options[argv[0]].append(argv[1])
            argv = argv[2:]
        else:
            break
    parent = options["--parent"]
    if argv[:1] != ["--"] or len(argv) < 2 or (parent and not parent[0].isdigit()) or (
            not parent and "--inside" not in flags):
        sys.stderr.write("usage: python sandbox_exec.py --parent PID [--limits] -- COMMAND ARG...\n"
                         "       python sandbox_exec.py --inside [--writable DIR] [--visible PATH]... "
                         "[--read-only PATH]... [--no-init] -- COMMAND ARG...\n")
        return 2
    command = argv[1:]
    writable = options["--writable"][0] if options["--writable"] else None
    try:
        if parent:
            _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
            if os.getppid() != int(parent[0]):  # cbk died before the line above
                return FAILED
            if "--limits" in flags:
                set_limits()
                new_session_keyring()
        if "--inside" in flags:
            if writable is not None:
                real = os.path.realpath
                build_root(real(writable), [os.path.abspath(p) for p in options["--visible"]],
                           [real(p) for p in options["--read-only"]])
            _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
            _drop_capabilities()
    except (SandboxFailed, OSError) as exc:
        sys.stderr.write("cbk sandbox: %s\n" % exc)
        return FAILED
    if "--inside" in flags and "--no-init" not in flags:
        return _init(command)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write("cbk sandbox: cannot run %s: %s\n" % (command[0], exc.strerror))
    return FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
