"""What cbk itself sees of a validation run: the answer, the clock and the memory.

Model code runs in the same process as ``ingest.py``: whatever that process writes or
reports (RESULT.json, its own timers, ``getrusage``) model code can rewrite, so none of it
decides the verdict. :class:`Channel` holds what the parent measures from outside:

* two pipes the parent owns: the child asks for X (frame ``R``) once ``Model()`` is
  ready, the parent sends X only then, and the child sends back predict's answer
  (``A``) and predict_proba's probe output (``P``) as .npy bytes, which the parent loads
  with ``allow_pickle=False`` and checks itself;
* the parent's clock on those frames: load = start to ``R``, predict = ``R`` to ``A``
  (predictions cannot come before X does, whatever model code does to its timers);
* the resident memory of every process of the run, polled from ``/proc`` (the child,
  its descendants, anything left in its session and, in a sandbox, every process in its
  network namespace), summed: a forked helper counts, even one that called setsid.
  Each process counts with its high-water mark (VmHWM), so a spike between two polls of
  a process still alive counts; a helper that lives less than a poll may be missed.
"""

from __future__ import annotations

import io
import os
import select
import threading
import time
from dataclasses import dataclass

import numpy as np

POLL_S = 0.02
"""How often the memory of the run's processes is sampled."""
MAX_FRAME_BYTES = 512 * 2**20
"""A frame larger than this ends the conversation (a model flooding the pipe)."""
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Measured:
    """The parent's own measurements of one run."""

    load_s: float | None = None
    """From the start of the child to its request for X."""
    predict_s: float | None = None
    """From the request for X to the answer."""
    held_mb: float | None = None
    """Memory the run's processes held (resident) when the child asked for X: after ``Model()``."""
    predict_peak_mb: float | None = None
    """Peak memory of the run's processes once X was sent (None when no reading came in time)."""
    peak_mb: float | None = None
    """Peak memory of the run's processes over the whole run."""
    answer: bytes | None = None
    probe: bytes | None = None
    problem: str | None = None
    """Why the conversation broke off (a malformed or oversized frame), if it did."""


class Channel:
    """The pipes to one child, with the threads that read, write and measure."""

    def __init__(self, images: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, images, allow_pickle=False)
        self._payload = buffer.getbuffer()  # no second copy of X
        self._x_read, self._x_write = os.pipe()
        self._a_read, self._a_write = os.pipe()
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._ready_at: float | None = None
        self._answer_at: float | None = None
        self._pid = 0
        self._peak_kb = 0
        self._held_kb = 0
        self._hwm_at_ready: dict[int, int] = {}
        self._predict_peak_kb = 0
        self._sample_lock = threading.Lock()
        self.measured = Measured()
        self._threads: list[threading.Thread] = []
        self._fd_lock = threading.Lock()

    @property
    def child_fds(self) -> tuple[int, int]:
        return self._x_read, self._a_write

    @property
    def argv(self) -> list[str]:
        """ingest.py's X_FD and ANSWER_FD arguments."""
        return [str(self._x_read), str(self._a_write)]

    def _close(self, name: str) -> None:
        """Close the pipe end held in attribute ``name`` once: a closed number may be reused."""
        with self._fd_lock:
            fd = getattr(self, name)
            setattr(self, name, -1)
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def start(self, pid: int) -> None:
        """The child ``pid`` runs: close its ends here, start reading and measuring."""
        self._close("_x_read")
        self._close("_a_write")
        self._t0 = time.perf_counter()
        self._pid = pid
        for target, args in ((self._read, ()), (self._watch, (pid,))):
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    def finish(self) -> Measured:
        """After the child ended: collect what arrived, stop the threads, close the pipes."""
        self._stop.set()
        joined = 0
        while joined < len(self._threads):  # the reader may start the writer meanwhile
            self._threads[joined].join(timeout=5)
            joined += 1
        self._close("_a_read")
        self._close("_x_write")
        m = self.measured
        if self._ready_at is not None:
            m.load_s = self._ready_at - self._t0
            if self._answer_at is not None:
                m.predict_s = self._answer_at - self._ready_at
        m.peak_mb = self._peak_kb / 1024 if self._peak_kb else None
        m.held_mb = self._held_kb / 1024 if self._held_kb else None
        m.predict_peak_mb = self._predict_peak_kb / 1024 if self._predict_peak_kb else None
        return m

    def abandon(self) -> None:
        """The child never started: close every end."""
        for name in ("_x_read", "_a_write", "_a_read", "_x_write"):
            self._close(name)

    # --- the answer pipe -----------------------------------------------------------

    def _read(self) -> None:
        buffer = bytearray()
        try:
            while True:
                ready, _, _ = select.select([self._a_read], [], [], 0.1)
                if not ready:
                    if self._stop.is_set():
                        return
                    continue
                chunk = os.read(self._a_read, 1 << 20)
                if not chunk:
                    return
                buffer += chunk
                if not self._frames(buffer):
                    return
        except (OSError, ValueError):
            return

    def _frames(self, buffer: bytearray) -> bool:
        """Take the complete frames off ``buffer``; False when the conversation is over."""
        while len(buffer) >= 9:
            tag, size = bytes(buffer[:1]), int.from_bytes(buffer[1:9], "big")
            if tag not in (b"R", b"A", b"P") or size > MAX_FRAME_BYTES:
                self.measured.problem = (f"the child sent a malformed frame ({tag!r}, {size} bytes)"
                                         if tag not in (b"R", b"A", b"P") else
                                         f"the child sent {size} bytes, over cbk's {MAX_FRAME_BYTES} limit")
                return False
            if len(buffer) < 9 + size:
                return True
            payload = bytes(buffer[9:9 + size])
            del buffer[:9 + size]
            now = time.perf_counter()
            if tag == b"R" and self._ready_at is None:
                self._ready_at = now
                thread = threading.Thread(target=self._send_images, daemon=True)
                thread.start()
                self._threads.append(thread)
            elif tag == b"A" and self._ready_at is not None and self.measured.answer is None:
                self._answer_at, self.measured.answer = now, payload
                self._sample()  # a predict shorter than a poll is still measured
            elif tag == b"P" and self.measured.answer is not None and self.measured.probe is None:
                self.measured.probe = payload
        return True

    def _send_images(self) -> None:
        fd = self._x_write
        view = memoryview(self._payload)
        try:
            os.set_blocking(fd, False)
            while view and not self._stop.is_set():
                _, ready, _ = select.select([], [fd], [], 0.1)
                if ready:
                    try:
                        view = view[os.write(fd, view[: 1 << 16]):]
                    except BlockingIOError:
                        pass
        except (OSError, ValueError):
            pass
        finally:
            self._close("_x_write")  # the child reads X to its end

    # --- memory -------------------------------------------------------------------

    def _watch(self, pid: int) -> None:
        while True:
            self._sample()
            if self._stop.wait(POLL_S):
                return

    def _sample(self) -> None:
        """One reading: the overall peak; before X, what is held; after, predict's peak (a
        high-water mark above the load's was reached during predict)."""
        procs = _tree_kb(self._pid)
        with self._sample_lock:
            self._peak_kb = max(self._peak_kb, sum(hwm for _rss, hwm in procs.values()))
            if self._ready_at is None:
                self._held_kb = sum(rss for rss, _hwm in procs.values())
                self._hwm_at_ready = {pid: hwm for pid, (_rss, hwm) in procs.items()}
            else:  # a process whose high-water mark rose since X was sent peaked during predict
                grown = sum(hwm if hwm > self._hwm_at_ready.get(pid, 0) else rss
                            for pid, (rss, hwm) in procs.items())
                self._predict_peak_kb = max(self._predict_peak_kb, grown)


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """``(ppid, session, rss in kB, start time)`` of ``pid``, None when it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == b"Z":
        return None
    return int(fields[1]), int(fields[3]), int(fields[21]) * _PAGE // 1024, int(fields[19])


def _tree_kb(root: int) -> dict[int, tuple[int, int]]:
    """``{pid: (resident now, high-water mark)}`` in kB of ``root``, its descendants and the processes of its session
    (``root`` leads one: a double-forked orphan keeps it)."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return {}
    stats = {pid: s for pid in pids if (s := _stat(pid)) is not None}
    if root not in stats:
        return {}
    # A session id can outlive its leader and its number be reused (pid_max may be 32768):
    # only processes started after the child count as its session's.
    born = stats[root][3]
    session = {pid for pid, (_ppid, sid, _rss, start) in stats.items() if sid == root and start >= born}
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in stats.items():
        children.setdefault(ppid, []).append(pid)
    tree, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in tree:
            continue
        tree.add(pid)
        stack.extend(children.get(pid, ()))
    tree |= session
    tree |= _same_network(tree, stats)
    return {pid: (stats[pid][2], max(_hwm_kb(pid), stats[pid][2])) for pid in tree if pid in stats}


_OWN_NET = None


def _net_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _same_network(tree: set[int], stats: dict) -> set[int]:
    """The processes in the sandbox's own network namespace (bwrap and unshare make one):
    a helper that left the session and the process tree (double fork + setsid) stays in it."""
    global _OWN_NET
    if _OWN_NET is None:
        _OWN_NET = _net_ns("self") or ""
    sandbox = {ns for pid in tree if (ns := _net_ns(pid)) and ns != _OWN_NET}
    if not sandbox:
        return set()
    return {pid for pid in stats if pid not in tree and _net_ns(pid) in sandbox}


def _hwm_kb(pid: int) -> int:
    """``pid``'s peak resident memory so far (VmHWM, kB): a spike between two polls still counts."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
