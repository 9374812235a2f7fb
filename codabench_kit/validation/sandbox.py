"""Choose the sandbox that model code runs in: bubblewrap, ``unshare``, or none.

``cbk validate`` treats every zip as untrusted. Where it can, it runs the child process
(``ingest.py`` and the model code it imports) so that it cannot reach the network or
write outside its temporary folder:

``bwrap``
    bubblewrap: the root file system bound read-only, ``/dev`` bound as it is (GPUs stay
    usable) with a private ``/dev/shm``, the temporary folder bound writable,
    ``--unshare-net`` (only a loopback of its own), ``--die-with-parent``, and when cbk runs
    as root ``--cap-drop ALL`` (else root in the sandbox could remount ``/`` writable).
``unshare``
    util-linux ``unshare -r -n``: a user namespace and an empty network namespace. When a
    mount namespace works too (``-m``), ``sandbox_exec.py`` remounts every mount point
    read-only except the temporary folder and drops all capabilities before the exec.
``none``
    run as is, saying why.

:func:`choose_sandbox` probes once per process (a ``true`` run under each candidate) and
picks the first that works, in that order. ``CBK_SANDBOX`` (or the ``sandbox`` argument of
:func:`~codabench_kit.validation.validate_zip`) forces one: ``auto`` (default), ``bwrap``,
``unshare`` or ``none``; forcing one that does not work here is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codabench_kit.errors import CbkError

SANDBOX_ENV = "CBK_SANDBOX"
MODES = ("auto", "bwrap", "unshare", "none")
SANDBOX_EXEC = Path(__file__).with_name("sandbox_exec.py")
PROBE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Sandbox:
    """How the child process is confined. ``wrap`` turns its command line into the confined one."""

    kind: str
    """``bwrap``, ``unshare`` or ``none``."""
    read_only: bool = False
    """True when everything but the temporary folder is read-only."""
    no_network: bool = False
    note: str = ""
    """Why it is not more: the reason for ``none``, or why ``unshare`` left the file system writable."""
    program: str = ""
    """The absolute path of ``bwrap`` or ``unshare``."""

    def describe(self) -> str:
        """One line, e.g. ``sandbox: unshare (read-only fs, no network)``."""
        if self.kind == "none":
            return f"sandbox: none ({self.note}) — model code runs with your permissions and network access"
        limits = ", ".join(w for w, on in (("read-only fs", self.read_only), ("no network", self.no_network)) if on)
        writable = f"; file system writable: {self.note}" if self.note else ""
        return f"sandbox: {self.kind} ({limits}{writable})"

    def wrap(self, command: list[str], writable: Path) -> list[str]:
        """``command`` confined: it may write only under ``writable`` (when ``read_only``)."""
        if self.kind == "bwrap":
            shm = ["--tmpfs", "/dev/shm"] if os.path.isdir("/dev/shm") else []
            # Run by root, bwrap keeps every capability (mount included) unless told; for anyone
            # else it keeps none, and a setuid bwrap refuses --cap-drop.
            caps = ["--cap-drop", "ALL"] if os.geteuid() == 0 else []
            return [self.program, "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", *shm,
                    "--bind", str(writable), str(writable), "--unshare-net", "--die-with-parent", *caps,
                    "--", *command]  # fmt: skip
        if self.kind == "unshare":
            mounts = ["-m"] if self.read_only else []
            keep_writable = ["--writable", str(writable)] if self.read_only else []
            return [self.program, "-r", "-n", *mounts, "--", sys.executable, str(SANDBOX_EXEC),
                    "--parent", str(os.getpid()), *keep_writable, "--", *command]  # fmt: skip
        return list(command)


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
        network_only = Sandbox("unshare", no_network=True, program=unshare)
        failure = _probe(network_only)
        if failure is None:
            mount_failure = _probe(Sandbox("unshare", read_only=True, no_network=True, program=unshare))
            if mount_failure is None:
                return Sandbox("unshare", read_only=True, no_network=True, program=unshare)
            return Sandbox("unshare", no_network=True, note=mount_failure, program=unshare)
        reasons.append(f"unshare -r -n failed: {failure}")
    if mode == "unshare":
        return f"expected working user namespaces, received: {reasons[-1]}"
    return Sandbox("none", note="neither bwrap nor user namespaces available: " + "; ".join(reasons))


def _probe(candidate: Sandbox) -> str | None:
    """None when ``true`` runs under ``candidate``, else the reason in a few words."""
    with tempfile.TemporaryDirectory(prefix="cbk-sandbox-probe-") as writable:
        try:
            proc = subprocess.run(
                candidate.wrap(["true"], Path(writable)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=PROBE_TIMEOUT_S, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else f"exit code {proc.returncode}"
