"""Choose the sandbox that model code runs in: bubblewrap, ``unshare``, or none.

``cbk validate`` treats every zip as untrusted and confines the child process (``ingest.py``
and the model code it imports) the way judges confine untrusted code:

* new PID, IPC, network, UTS and mount namespaces: model code sees and can signal only its
  own processes, its SysV/POSIX IPC objects are its own, it has only a loopback of its own;
  when the run ends the namespace's init dies and takes every process in it along
  (``setsid()`` daemons included);
* a file system of its own: read-only binds of the system (``/usr``, ``/lib*``, ``/bin``, a
  few files of ``/etc``, ``/sys``), of the Python installation that runs it (its prefixes
  and ``sys.path``, see :func:`python_paths`), the submission (read-only) and validate's
  temporary folder (writable, holding ``HOME`` and ``TMPDIR``); a minimal ``/dev`` (null,
  zero, full, random, urandom, tty, a private ``shm``, and NVIDIA device nodes when present),
  ``/proc`` of the new PID namespace, read-only (no sysctl writes); the caller's home, ``/tmp`` and ``/run`` are absent;
* a new session, no capabilities, no_new_privs, and resource limits (processes, file size,
  open files, no core dumps) set by ``sandbox_exec.py`` before anything else starts.

``bwrap``
    bubblewrap builds all of that (``--unshare-all``, ``--dev``, ``--proc``,
    ``--new-session``, ``--die-with-parent``, ``--cap-drop ALL``).
``unshare``
    util-linux ``unshare -r -n -m -p -i -u --fork --mount-proc --kill-child``;
    ``sandbox_exec.py`` then builds the same file system with ``pivot_root``, drops every
    capability and stays the namespace's init. Where the mount namespace does not work,
    it falls back to ``unshare -r -n``, and :meth:`Sandbox.describe` lists what is missing.
``none``
    run as is, saying why.

:func:`choose_sandbox` probes once per process (a ``true`` run under each candidate) and
picks the first that works, in that order. ``CBK_SANDBOX`` (or the ``sandbox`` argument of
:func:`~codabench_kit.validation.validate_zip`) forces one: ``auto`` (default), ``bwrap``,
``unshare`` or ``none``; forcing one that does not work here is an error.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from codabench_kit.errors import CbkError

SANDBOX_ENV = "CBK_SANDBOX"
MODES = ("auto", "bwrap", "unshare", "none")
SANDBOX_EXEC = Path(__file__).with_name("sandbox_exec.py")
PROBE_TIMEOUT_S = 20.0

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/sys")
"""Bound read-only when present (symlinks, as on merged-/usr systems, are copied as symlinks)."""
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf",
             "passwd", "group", "hosts", "host.conf", "gai.conf", "os-release", "mime.types")  # fmt: skip
"""The bits of ``/etc`` that the dynamic loader, Python and TensorFlow read."""
DEVICE_GLOBS = ("/dev/nvidia*", "/dev/dxg")
"""Host device nodes bound into the minimal ``/dev`` when present (GPUs)."""

FULL = ("no network", "read-only fs", "own pid/ipc/uts/mount namespaces", "minimal /dev",
        "no home, /tmp or /run", "limits")  # fmt: skip
"""Every protection, as :meth:`Sandbox.describe` names them."""
ROOT_NPROC = "process limit (run as root)"
"""Missing whenever cbk runs as root: RLIMIT_NPROC does not apply to the root user."""
ALL_UNSHARE = ["-r", "-n", "-m", "-p", "-i", "-u", "--fork", "--mount-proc", "--kill-child"]
NO_MOUNT_UNSHARE = ["-r", "-n", "-p", "-i", "-u", "--fork", "--kill-child"]
NETWORK_ONLY_UNSHARE = ["-r", "-n"]


@dataclass(frozen=True)
class Sandbox:
    """How the child process is confined. ``wrap`` turns its command line into the confined one."""

    kind: str
    """``bwrap``, ``unshare`` or ``none``."""
    read_only: bool = False
    """True when everything but the temporary folder is read-only."""
    no_network: bool = False
    note: str = ""
    """Why it is not more: the reason for ``none``, or why ``unshare`` lacks protections."""
    program: str = ""
    """The absolute path of ``bwrap`` or ``unshare``."""
    unshare_args: tuple[str, ...] = ()
    """``unshare``'s namespace options."""

    @property
    def protections(self) -> tuple[str, ...]:
        if self.kind == "bwrap" or (self.kind == "unshare" and "-m" in self.unshare_args):
            return FULL
        if self.kind == "unshare":
            return ("no network", *(("own pid/ipc/uts namespaces",) if "-p" in self.unshare_args else ()), "limits")
        return ()

    @property
    def missing(self) -> tuple[str, ...]:
        have = self.protections
        missing = [p for p in FULL if p not in have]
        if "own pid/ipc/uts namespaces" in have:
            missing = ["own mount namespace" if p.startswith("own ") else p for p in missing]
        if self.kind != "none" and os.geteuid() == 0:
            missing.append(ROOT_NPROC)  # the kernel does not count root's processes against RLIMIT_NPROC
        return tuple(missing)

    def describe(self) -> str:
        """One line, e.g. ``sandbox: bwrap (no network, read-only fs, ...)``; names what is missing and why."""
        if self.kind == "none":
            return f"sandbox: none ({self.note}) — model code runs with your permissions and network access"
        missing = f"; missing: {', '.join(self.missing)}" if self.missing else ""
        why = f" — {self.note}" if self.note and missing else ""
        return f"sandbox: {self.kind} ({', '.join(self.protections)}{missing}{why})"

    def wrap(self, command: list[str], writable: Path, *, visible: Iterable[str | os.PathLike[str]] = (),
             read_only: Iterable[str | os.PathLike[str]] = ()) -> list[str]:
        """``command`` confined: it sees the system, ``visible`` (read-only) and ``writable``, inside
        which each ``read_only`` path is read-only again."""
        if self.kind == "none":
            return list(command)
        writable = Path(os.path.abspath(writable))
        program = [command[0]] if os.sep in command[0] else []
        shown = _minimal([*_expand(visible), *_expand(program)])
        protect = [os.path.abspath(p) for p in read_only]
        outer = [sys.executable, str(SANDBOX_EXEC), "--parent", str(os.getpid()), "--limits", "--"]
        if self.kind == "bwrap":
            return [*outer, self.program, *_bwrap_args(writable, shown, protect), "--", *command]
        inner = [sys.executable, str(SANDBOX_EXEC), "--inside"]
        if "-m" in self.unshare_args:
            inner += ["--writable", str(writable)]
            for path in shown:
                inner += ["--visible", path]
            for path in protect:
                inner += ["--read-only", path]
        if "--fork" not in self.unshare_args:
            inner.append("--no-init")
        return [*outer, self.program, *self.unshare_args, "--", *inner, "--", *command]


def _bwrap_args(writable: Path, shown: list[str], protect: list[str]) -> list[str]:
    # Run by root, bwrap keeps every capability (mount included) unless told; for anyone
    # else it keeps none, and a setuid bwrap refuses --cap-drop.
    caps = ["--cap-drop", "ALL"] if os.geteuid() == 0 else []
    args = ["--unshare-all", "--die-with-parent", "--new-session", *caps]
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # /proc read-only: uid 0 mapped to the caller's root could otherwise write global sysctls
    # (kernel.core_pattern runs a program as root on the host) even without capabilities.
    args += ["--proc", "/proc", "--remount-ro", "/proc", "--dev", "/dev"]
    for device in devices():
        args += ["--dev-bind", device, device]
    for path in shown:
        if not _under(path, SYSTEM_PATHS):
            args += ["--ro-bind", path, path]
    args += ["--bind", str(writable), str(writable)]
    for path in protect:
        args += ["--ro-bind", path, path]
    return [*args, "--remount-ro", "/"]


def devices() -> list[str]:
    """The host's GPU device nodes, bound into the sandbox's ``/dev``."""
    return sorted(p for pattern in DEVICE_GLOBS for p in glob.glob(pattern) if not os.path.isdir(p))


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Each existing path, absolute, and its real path when a symlink leads elsewhere."""
    out = []
    for path in paths:
        absolute = os.path.abspath(path)
        if not os.path.lexists(absolute):
            continue
        out.append(absolute)
        real = os.path.realpath(absolute)
        if real != absolute and os.path.exists(real):
            out.append(real)
    return out


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _minimal(paths: Iterable[str]) -> list[str]:
    """``paths`` without duplicates and without those inside another one (kept in order)."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if p != "/" and not _under(p, [q for q in unique if q != p])]


_PATHS_SCRIPT = (
    "import json, os, sys; e = sys.executable; v = os.path.dirname(os.path.dirname(e)); "
    "print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, e, os.path.realpath(e), "
    "*([v] if os.path.isfile(os.path.join(v, 'pyvenv.cfg')) else []), *[p for p in sys.path if os.path.isabs(p)]]))"
)
_PYTHON_PATHS: dict[tuple[str, str], list[str]] = {}


def python_paths(interpreter: str, env: dict[str, str] | None = None) -> list[str]:
    """What ``interpreter`` needs to see to run: its prefixes, ``sys.path`` and itself (asked once)."""
    relevant = {k: v for k, v in (env or {}).items() if k.startswith("PYTHON") or k == "PATH"}
    key = (interpreter, json.dumps(sorted(relevant.items())))
    if key not in _PYTHON_PATHS:
        try:
            proc = subprocess.run([interpreter, "-c", _PATHS_SCRIPT], env=env, cwd="/", stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=60, check=True)  # fmt: skip
            found = [p for p in json.loads(proc.stdout.decode().strip().splitlines()[-1]) if isinstance(p, str)]
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            found = []  # the run itself will say what is wrong with the interpreter
        _PYTHON_PATHS[key] = [interpreter, *found]
    return list(_PYTHON_PATHS[key])


def requested_mode(mode: str | None = None) -> str:
    """``mode`` if given, else ``$CBK_SANDBOX``, else ``auto``; checked against :data:`MODES`."""
    source = "sandbox" if mode is not None else SANDBOX_ENV
    value = mode if mode is not None else os.environ.get(SANDBOX_ENV, "").strip() or "auto"
    if value not in MODES:
        raise CbkError(f"{source}: expected one of {', '.join(MODES)}, received {value!r}")
    return value


def choose_sandbox(mode: str | None = None) -> Sandbox:
    """The sandbox to use under ``mode`` (see :func:`requested_mode`); raise CbkError if a forced one fails."""
    forced_by_caller = mode is not None
    mode = requested_mode(mode)
    setting = f"sandbox={mode!r}" if forced_by_caller else f"{SANDBOX_ENV}={mode}"
    if mode == "none":
        return Sandbox("none", note=f"disabled with {setting}")
    chosen = _choose(mode, shutil.which("bwrap"), shutil.which("unshare"))
    if isinstance(chosen, str):
        raise CbkError(f"{setting}: {chosen}")
    return chosen


_CHOSEN: dict[tuple[str, str | None, str | None], Sandbox | str] = {}


def _choose(mode: str, bwrap: str | None, unshare: str | None) -> Sandbox | str:
    """The sandbox, or why the one ``mode`` forces does not work; probed once per set of programs."""
    key = (mode, bwrap, unshare)
    if key not in _CHOSEN:
        _CHOSEN[key] = _probe_all(mode, bwrap, unshare)
    return _CHOSEN[key]


def _probe_all(mode: str, bwrap: str | None, unshare: str | None) -> Sandbox | str:
    reasons = []
    if mode in ("auto", "bwrap"):
        if bwrap is None:
            reasons.append("bwrap not found")
        else:
            candidate = Sandbox("bwrap", read_only=True, no_network=True, program=bwrap)
            failure = _probe(candidate)
            if failure is None:
                return candidate
            reasons.append(f"bwrap failed: {failure}")
        if mode == "bwrap":
            return f"expected a working bubblewrap, received: {reasons[-1]}"
    if unshare is None:
        reasons.append("unshare not found")
    else:
        full_failure = None
        for args in (ALL_UNSHARE, NO_MOUNT_UNSHARE, NETWORK_ONLY_UNSHARE):
            candidate = Sandbox("unshare", read_only="-m" in args, no_network=True, program=unshare,
                                unshare_args=tuple(args))  # fmt: skip
            failure = _probe(candidate)
            if failure is None:
                return Sandbox("unshare", read_only=candidate.read_only, no_network=True, program=unshare,
                               unshare_args=tuple(args), note=full_failure or "")  # fmt: skip
            full_failure = full_failure or failure
            if args is NETWORK_ONLY_UNSHARE:
                reasons.append(f"unshare -r -n failed: {failure}")
    if mode == "unshare":
        return f"expected working user namespaces, received: {reasons[-1]}"
    return Sandbox("none", note="neither bwrap nor user namespaces available: " + "; ".join(reasons))


def _probe(candidate: Sandbox) -> str | None:
    """None when ``true`` runs under ``candidate``, else the reason in a few words."""
    with tempfile.TemporaryDirectory(prefix="cbk-sandbox-probe-") as writable:
        try:
            proc = subprocess.run(
                candidate.wrap(["true"], Path(writable), visible=[shutil.which("true") or "/bin/true"]),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=PROBE_TIMEOUT_S,
                check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else f"exit code {proc.returncode}"
