"""Finish the ``unshare`` sandbox from inside it, then exec the command that runs model code.

STANDALONE: stdlib only, Linux only. ``cbk validate`` runs it with its own Python as::

    unshare -r -n [-m] -- python sandbox_exec.py --parent PID [--writable DIR] -- COMMAND ARG...

``unshare`` has already given this process a user namespace (root inside, mapped to the
caller), an empty network namespace and, with ``-m``, a private mount namespace. This
script then:

1. asks the kernel to SIGKILL it when its parent (cbk, process PID) dies, like
   ``bwrap --die-with-parent``, and stops at once if PID is no longer its parent (cbk
   died before that); sets no_new_privs (setuid programs gain nothing);
2. with ``--writable DIR``: bind-mounts DIR onto itself, remounts every other mount point
   read-only (keeping its nosuid/nodev/noexec flags), and puts a private tmpfs on
   ``/dev/shm``; then empties its capability bounding set, so model code, though uid 0 in
   the namespace, starts without capabilities and cannot remount anything writable;
3. execs COMMAND, which keeps this process id (cbk's timeout kill still reaches it).

Any failure before the exec prints one line starting ``cbk sandbox:`` and exits 125.
"""

import ctypes
import errno
import os
import signal
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
FAILED = 125

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


def _mount_points():
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
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


def read_only_except(writable):
    writable = os.path.realpath(writable)
    points = _mount_points()
    _mount(writable, writable, None, MS_BIND | MS_REC, "bind %s" % writable)
    for point in points:
        _remount_read_only(point)
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "tmpfs on /dev/shm")
    _drop_capabilities()


def main(argv):
    options = {}
    while argv[:1] in (["--parent"], ["--writable"]) and len(argv) >= 2:
        options[argv[0]], argv = argv[1], argv[2:]
    if argv[:1] != ["--"] or len(argv) < 2 or not options.get("--parent", "").isdigit():
        sys.stderr.write("usage: python sandbox_exec.py --parent PID [--writable DIR] -- COMMAND ARG...\n")
        return 2
    command, writable = argv[1:], options.get("--writable")
    try:
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
        if os.getppid() != int(options["--parent"]):  # cbk died before the line above
            return FAILED
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        if writable is not None:
            read_only_except(writable)
    except (SandboxFailed, OSError) as exc:
        sys.stderr.write("cbk sandbox: %s\n" % exc)
        return FAILED
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        sys.stderr.write("cbk sandbox: cannot run %s: %s\n" % (command[0], exc.strerror))
    return FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
