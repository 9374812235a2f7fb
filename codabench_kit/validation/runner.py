"""Prove that a submission zip runs: unpack it safely, run it like Codabench, check its answer.

:func:`validate_zip` unpacks the zip with :func:`~.safe_zip.safe_extract` into a fresh
temporary folder, runs the standalone ``ingest.py`` next to this file in a child process
(any Python: the one cbk runs under, or a venv that matches the server), and turns what
it saw of the child into a list of :class:`Check` results, one per stage:

``zip`` -> ``load`` (import + ``Model()``) -> ``predict`` -> ``answer`` -> ``accuracy``
-> ``parity`` (a cbk zip's probe, see :mod:`.fidelity`) -> ``budget`` (when given)

Checking stops at the first failing stage. Model code shares the child process, so
nothing the child writes decides the verdict: cbk sends X over a pipe it owns only when
the child asks for it, reads the answer's bytes back (``allow_pickle=False``) and checks
them itself, times the run on its own clock and polls the memory of all the run's
processes (:mod:`.channel`); the child's RESULT.json only words failures. The child runs
in the sandbox :func:`~.sandbox.choose_sandbox` picks (bubblewrap or ``unshare``: no
network, nothing writable outside the temporary folder), with ``HOME`` and ``TMPDIR``
inside that folder, which is removed on every path out, timeouts included.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from codabench_kit.errors import CbkError, DataError, ZipRejectedError
from codabench_kit.validation.safe_zip import (
    DEFAULT_MAX_ENTRIES,
    DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES,
    safe_extract,
)
from codabench_kit.validation.channel import Channel, Measured
from codabench_kit.validation.check import Check, printable, printable_lines
from codabench_kit.validation.diagnosis import (Diagnosis, cause, cwd_line, diagnose, error_hint,
                                                preview_lines)
from codabench_kit.validation.cleanup import make_workdir, remove_tree, sweep_stale
from codabench_kit.validation.fidelity import Budget, Probe, check_parity, read_probe
from codabench_kit.validation.sandbox import Sandbox, choose_sandbox, python_paths
from codabench_kit.validation.targets import CONDITIONS, Conditions, get_conditions

INGEST_SCRIPT = Path(__file__).with_name("ingest.py")
IMAGE_SHAPE = (96, 96, 3)
DEFAULT_NUM_IMAGES = 32
TIMEOUT_S = 600.0
"""Seconds allowed for ``Model()`` plus ``predict`` (default)."""
NUM_CLASSES = 8
"""Classes of the AN2DL blood-cell challenge, the default everywhere a count is asked."""
TAIL_CHARS = 2000

_STAGE_OF_PHASE = {
    "setup": "load", "import": "load", "init": "load", "predict": "predict", "output": "answer", "done": "answer",
    "probe": "parity",
}  # fmt: skip
_PHASE_WORDS = {
    "setup": "start-up",
    "load": "the import of model.py or Model()",
    "import": "the import of model.py",
    "init": "Model()",
    "predict": "predict(X)",
    "output": "the conversion of predict's output",
    "probe": "predict_proba on the parity probe",
    "done": "shutdown, after predict returned",
}


_NETWORK_WORDS = ("Network is unreachable", "Connection refused", "Name or service not known",
                  "Temporary failure in name resolution")  # fmt: skip


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """Everything :func:`validate_zip` found out. Metrics are None when the run never got there."""

    checks: tuple[Check, ...]
    load_s: float | None = None
    predict_s: float | None = None
    ms_per_image: float | None = None
    peak_mb: float | None = None
    accuracy: float | None = None
    predictions: np.ndarray | None = field(default=None, repr=False)
    log_tail: str = field(default="", repr=False)
    """The last ~2,000 characters the child printed (stdout and stderr together)."""
    traceback: str | None = field(default=None, repr=False)
    """The tail of the traceback when model code raised."""
    sandbox: str | None = None
    """How model code was confined, e.g. ``sandbox: bwrap (read-only fs, no network)``; None if it never ran."""
    warnings: tuple[str, ...] = ()
    """Findings that do not fail here but would under other conditions, as ``name: line``."""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        """One line per check, e.g. ``ok    load: Model() ready in 2.31 s``."""
        return ([f"{'ok' if c.ok else 'FAIL':<6}{c.name}: {c.detail}" for c in self.checks]
                + [f"{'warn':<6}{line}" for line in self.warnings])


def validate_zip(
    zip_path: str | os.PathLike[str],
    *,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    num_classes: int = NUM_CLASSES,
    timeout: float = TIMEOUT_S,
    python: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    sandbox: str | None = None,
    budget: Budget | None = None,
    conditions: str | None = None,
) -> ValidationReport:
    """Unpack ``zip_path`` safely, run ``Model().predict(images)`` in a child process, check the answer.

    ``images`` is a uint8 array (n, 96, 96, 3); None feeds 32 seeded random images.
    ``labels`` (n integer labels), if given, adds an informational ``accuracy`` check.
    ``python`` is the interpreter to run the submission under (default: this one);
    ``timeout`` bounds the child's whole run in seconds. ``sandbox`` is ``auto``, ``bwrap``,
    ``unshare`` or ``none`` (default: ``$CBK_SANDBOX``, else ``auto``; see :mod:`.sandbox`);
    the choice is said through ``progress`` and kept in the report. A bad submission gives
    a report with ``ok`` False; bad arguments, or a forced sandbox that does not work here,
    raise :class:`~codabench_kit.errors.CbkError`. A zip with a parity probe (cbk's) adds
    the ``parity`` check; ``budget`` adds the ``budget`` check (:mod:`.fidelity`).
    ``conditions`` names how the ingestion runs it (:data:`~.targets.CONDITIONS`; default
    ``an2dl``: inside the submission folder, first on ``sys.path``).
    """
    job = _job(zip_path, images, labels, num_classes, timeout, python, progress, sandbox, budget,
               limits=dict(max_total_bytes=max_total_bytes, max_entries=max_entries,
                           max_ratio=max_ratio), conditions=conditions)
    sweep_stale()  # folders of a cbk killed before it could clean up
    workdir = make_workdir()
    try:
        return _validate_in(job, workdir)
    finally:
        if not remove_tree(workdir):
            job.say(f"could not remove the temporary folder {workdir}")


@dataclass(frozen=True)
class _Job:
    """The checked arguments of one :func:`validate_zip` call."""

    zip_path: Path
    images: np.ndarray
    labels: np.ndarray | None
    num_classes: int
    timeout: float
    interpreter: str
    confinement: Sandbox
    budget: Budget | None
    limits: dict[str, Any]
    """``safe_extract``'s limits: max_total_bytes, max_entries, max_ratio."""
    say: Callable[[str], None]
    conditions: Conditions = CONDITIONS["an2dl"]


def _validate_in(job: _Job, workdir: Path) -> ValidationReport:
    """Unpack, run and check the submission inside ``workdir``, which the caller removes."""
    # Two levels down, so a naive "../../file" from model code still lands in workdir.
    submission = workdir / "run" / "submission"
    io_dir = workdir / "io"
    for folder in (io_dir, workdir / "tmp", workdir / "home"):
        folder.mkdir()
    job.say(f"checking {printable(job.zip_path.name)}")
    try:
        summary = safe_extract(job.zip_path, submission, **job.limits)
    except ZipRejectedError as exc:
        return ValidationReport(checks=(Check("zip", False, str(exc)),))
    checks = [Check("zip", True, summary.describe())]
    diagnosis = diagnose(submission, job.conditions.cwd, job.zip_path.name)  # before model code runs
    for line in preview_lines(diagnosis):
        job.say(line)
    probe = _write_inputs(io_dir, submission, job.say)
    n, timeout, interpreter = len(job.images), job.timeout, job.interpreter
    job.say(job.confinement.describe())
    job.say(f"running Model() and predict() on {n} images with {interpreter} (timeout {timeout:g} s)")
    channel = Channel(job.images)
    run = _run_ingest(interpreter, submission, workdir, job.confinement, timeout, probe is not None, channel,
                      job.conditions.ingest_args())
    run.diagnosis = diagnosis.after_run(run.result)
    report = _report(run, checks, job.labels, n, job.num_classes, timeout, interpreter, job.say,
                     probing=probe is not None)
    report = _fidelity(report, run, probe, job.budget, job.zip_path, n, timeout, interpreter)
    report = _working_directory(report, run.diagnosis)
    return dataclasses.replace(report, sandbox=job.confinement.describe())


def _working_directory(report: ValidationReport, diagnosis: Diagnosis) -> ValidationReport:
    """Model code that opened submission files by relative paths: a warning where the
    conditions run it inside its folder, a failing ``cwd`` check where they do not (unless
    the run failed already, its failure line saying so). Where the child saw no such open
    (C code opens files unseen), names of submission files in a model.py that never uses
    ``__file__`` give the warning too, not a failure (the code may find them otherwise)."""
    if not diagnosis.relative_opens:
        if diagnosis.named_without_file and diagnosis.cwd != "elsewhere":
            line = cwd_line(diagnosis.named_without_file, diagnosis.cwd, seen=False)
            return dataclasses.replace(report, warnings=report.warnings + (f"cwd: {line}",))
        return report
    line = cwd_line(diagnosis.relative_opens, diagnosis.cwd)
    if diagnosis.cwd != "elsewhere":
        return dataclasses.replace(report, warnings=report.warnings + (f"cwd: {line}",))
    if not report.ok:
        return report
    return dataclasses.replace(report, checks=report.checks + (Check("cwd", False, line),))


def _write_inputs(io_dir: Path, submission: Path, say: Callable[[str], None]) -> Probe | None:
    """Save the zip's parity probe for the child if it has a valid one (X goes through a pipe)."""
    probe = read_probe(submission)  # read before model code runs (it may write there)
    if probe is not None:
        np.save(io_dir / "probe.npy", probe.images, allow_pickle=False)
    else:
        say("parity: not checked (the zip has no valid probe.npz: not made by cbk build)")
    return probe


# --- arguments -------------------------------------------------------------------


def _job(zip_path, images, labels, num_classes, timeout, python, progress, sandbox, budget, *,
         limits: dict[str, Any], conditions: str | None = None) -> _Job:
    """Check :func:`validate_zip`'s arguments (raising on the first bad one) and gather them;
    finds the interpreter and picks the sandbox."""
    say = progress or (lambda _line: None)
    images = _check_images(images)
    labels = _check_labels(labels, len(images))
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise DataError(f"num_classes: expected a positive integer, received {num_classes!r}")
    if not timeout > 0:
        raise CbkError(f"timeout: expected a positive number of seconds, received {timeout!r}")
    zip_path = Path(zip_path)
    interpreter = _find_interpreter(python)
    confinement = choose_sandbox(sandbox)
    chosen = get_conditions(conditions) if conditions else CONDITIONS["an2dl"]
    return _Job(zip_path, images, labels, num_classes, timeout, interpreter, confinement, budget,
                limits, say, chosen)


def _find_interpreter(python: str | os.PathLike[str] | None) -> str:
    """The absolute path of ``python`` (a path, or a name on PATH); default: this interpreter."""
    if not python:
        return sys.executable
    found = shutil.which(str(python))
    if found is None:
        raise CbkError(f"cannot start the Python interpreter {str(python)!r}: not found, or not executable")
    return os.path.abspath(found)  # not resolved: a venv's python is a symlink that must stay one


def _describe_array(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {a.shape}"
    return type(a).__name__


def _check_images(images: np.ndarray | None) -> np.ndarray:
    if images is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, size=(DEFAULT_NUM_IMAGES, *IMAGE_SHAPE), dtype=np.uint8)
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or images.shape[1:] != IMAGE_SHAPE
        or len(images) == 0
    ):
        raise DataError(
            f"images: expected a uint8 array of shape (n, 96, 96, 3) with n >= 1, "
            f"received {_describe_array(images)}"
        )
    return np.ascontiguousarray(images)


def _check_labels(labels: np.ndarray | None, n: int) -> np.ndarray | None:
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise DataError(f"labels: expected {n} integer labels (shape ({n},)), received {_describe_array(arr)}")
    return arr


# --- the child process -----------------------------------------------------------


@dataclass
class _Run:
    returncode: int
    timed_out: bool
    result: dict[str, Any] | None
    tail: str
    wall_s: float
    sandbox: Sandbox
    measured: Measured
    """What cbk measured and received itself; ``result`` (the child's own record) only explains failures."""
    diagnosis: Diagnosis = field(default_factory=Diagnosis)


class _Tail(threading.Thread):
    """Drains a pipe and keeps only its last bytes, so a chatty model cannot fill memory."""

    def __init__(self, fd: int, keep: int = 4 * TAIL_CHARS) -> None:
        super().__init__(daemon=True)
        self.fd, self.keep, self.data = fd, keep, b""

    def run(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                self.data = (self.data + chunk)[-self.keep :]
        except OSError:
            pass

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")[-TAIL_CHARS:]


CHILD_ENV_KEEP = (
    "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TF_CPP_MIN_LOG_LEVEL", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_ENABLE_ONEDNN_OPTS",
    "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH", "XLA_FLAGS",
)  # fmt: skip
"""The caller's variables that model code sees (Python's locale, TensorFlow, threads, GPUs); no others."""


def _child_env(workdir: Path, interpreter: str = sys.executable) -> dict[str, str]:
    """A fresh environment: PATH, HOME and TMPDIR in ``workdir``, and only :data:`CHILD_ENV_KEEP` of the caller's."""
    env = {name: os.environ[name] for name in CHILD_ENV_KEEP if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    bin_dir = os.path.dirname(os.path.abspath(interpreter))
    env["PATH"] = os.pathsep.join(dict.fromkeys([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    # The model's scratch files and dot-folders (~/.keras, ~/.cache) go where they get cleaned up.
    env.update(TMPDIR=str(workdir / "tmp"), HOME=str(workdir / "home"))
    return env


def _run_ingest(
    interpreter: str, submission: Path, workdir: Path, sandbox: Sandbox, timeout: float, probe: bool,
    channel: Channel, options: list[str] | None = None,
) -> _Run:
    io_dir = workdir / "io"
    result_path = io_dir / "result.json"
    cmd = [interpreter, str(INGEST_SCRIPT), *(options or []), str(submission), *channel.argv,
           str(result_path)]
    if probe:
        cmd.append(str(io_dir / "probe.npy"))
    env = _child_env(workdir, interpreter)
    visible = [*python_paths(interpreter, env), str(INGEST_SCRIPT)] if sandbox.kind != "none" else []
    command = sandbox.wrap(cmd, workdir, visible=visible, read_only=[submission])
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command, cwd=submission, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            pass_fds=channel.child_fds,
        )  # fmt: skip
    except OSError as exc:
        channel.abandon()
        what = f"the Python interpreter {interpreter!r}" if sandbox.kind == "none" else f"{sandbox.program!r}"
        raise CbkError(f"cannot start {what}: {exc}") from exc
    assert proc.stdout is not None
    channel.start(proc.pid)
    tail = _Tail(proc.stdout.fileno())
    tail.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # The child leads its own session; killing the group also ends anything model code
        # started and left behind. On timeout (or Ctrl-C here) it ends the child itself.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        measured = channel.finish()
        tail.join(timeout=5)
        if not tail.is_alive():
            proc.stdout.close()
    returncode = proc.returncode
    if sandbox.kind != "none" and 128 < returncode <= 128 + 64:
        # bwrap, and sandbox_exec.py as the namespace's init, exit 128 + N when the child dies of
        # signal N (a model's os._exit(129..192) reads the same)
        returncode = 128 - returncode
    wall_s = time.perf_counter() - start
    _drop_planted(io_dir)
    return _Run(returncode, timed_out, _read_result(result_path), tail.text(), wall_s, sandbox, measured)


def _drop_planted(io_dir: Path) -> None:
    """Remove what model code may have planted where cbk reads its results: a symlink (cbk would
    read a file of the caller's through it) or a FIFO or device (cbk would block on it).
    Only regular files in a real folder are read after the run."""
    if io_dir.is_symlink() or not io_dir.is_dir():
        try:
            io_dir.unlink()
        except IsADirectoryError:
            pass
        io_dir.mkdir(exist_ok=True)
        return
    for entry in os.scandir(io_dir):
        if not entry.is_file(follow_symlinks=False):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


# --- turning the child's record into checks ----------------------------------------------


_FALLBACK_PHASE = {"load": "load", "predict": "predict", "answer": "output", "parity": "probe"}
"""The phase named when the child's own record contradicts what cbk saw (model code may rewrite it)."""


def _report(
    run: _Run,
    checks: list[Check],
    labels: np.ndarray | None,
    n: int,
    num_classes: int,
    timeout: float,
    interpreter: str,
    say: Callable[[str], None],
    *,
    probing: bool = False,
) -> ValidationReport:
    """Add the ``load``, ``predict``, ``answer`` and ``accuracy`` checks to ``checks``, up to the first failure.

    The verdict rests on what cbk saw itself (:class:`~.channel.Measured`: the request for
    X, the answer's bytes, the exit status, its own clock); the child's RESULT.json, which
    model code could forge, only words the failure."""
    result = run.result or {}
    error = result.get("error") if isinstance(result.get("error"), dict) else None
    phase = str(error.get("phase") if error else result.get("phase", "setup"))
    metrics = _metrics(run, error, n)
    failed_stage = _failed_stage(run, phase, probing)
    if failed_stage is not None and _STAGE_OF_PHASE.get(phase, "load") != failed_stage:
        phase, error = _FALLBACK_PHASE[failed_stage], None
    why = "" if failed_stage is None else _stage_failure_line(run, result, error, phase, timeout,
                                                              interpreter, n, num_classes)
    checks.extend(_stage_checks(failed_stage, why, metrics, n))
    if not checks[-1].ok:
        return ValidationReport(checks=tuple(checks), **metrics)
    say(f"checking the answer ({run.wall_s:.1f} s in the child process)")
    answer_checks, extra = _answer_checks(run.measured.answer, labels, n, num_classes)
    checks.extend(answer_checks)
    return ValidationReport(checks=tuple(checks), **{**metrics, **extra})


def _failed_stage(run: _Run, phase: str, probing: bool) -> str | None:
    """The stage that failed by what cbk saw: no request for X (load), no answer (predict
    or answer, as the child says), a run that did not end cleanly after answering; None
    when the answer arrived (checked next) and, without a probe to come, the run ended well."""
    m = run.measured
    if m.load_s is None:
        return "load"
    if m.answer is None:
        stage = _STAGE_OF_PHASE.get(phase, "load")
        return stage if stage in ("predict", "answer") else "predict"
    if not probing and (run.timed_out or run.returncode != 0):
        return "answer"
    return None


def _stage_failure_line(run: _Run, result: dict[str, Any], error: dict[str, Any] | None, phase: str,
                        timeout: float, interpreter: str, n: int, num_classes: int) -> str:
    """Why a stage failed; for output that never came back, what the child said it was."""
    info = result.get("output") if isinstance(result.get("output"), dict) else {}
    if (phase in ("done", "probe") and error is None and not run.timed_out and info.get("reason")
            and not info.get("saved")):
        top = num_classes - 1
        return _unsaved_answer_line(info, f"an array of shape ({n},) with integer labels 0..{top}", top)
    if run.measured.problem and not run.timed_out:
        return f"{run.measured.problem} during {_PHASE_WORDS.get(phase, phase)}"
    if phase in ("done", "probe") and error is None and not run.timed_out and run.measured.answer is None:
        return (f"predict's answer never reached cbk: the process {_exit_words(run.returncode)} "
                "(its own record says it finished; model code can write that record, cbk does not trust it)")
    return _failure_line(run, result, error, phase, timeout, interpreter)


def _read_answer(payload: bytes) -> np.ndarray:
    """An .npy payload from the child, as an array: no pickles, no other container."""
    return np.lib.format.read_array(io.BytesIO(payload), allow_pickle=False)


def _metrics(run: _Run, error: dict[str, Any] | None, n: int) -> dict[str, Any]:
    """The report's timings and peak memory, measured by cbk; the log tail and the traceback."""
    m = run.measured
    # Not the child's own getrusage peak: model code can patch it, and after a fork + exec
    # it counts the forked copy of cbk (the kernel keeps the pre-exec peak in ru_maxrss).
    peak_mb = m.peak_mb
    ms_per_image = m.predict_s * 1000 / n if m.predict_s is not None else None
    return dict(
        load_s=m.load_s, predict_s=m.predict_s, ms_per_image=ms_per_image, peak_mb=peak_mb,
        log_tail=printable_lines(run.tail),
        traceback=printable_lines(error.get("traceback")) if error else None,
    )  # fmt: skip


def _stage_checks(failed_stage: str | None, why: str, metrics: dict[str, Any], n: int) -> list[Check]:
    """The ``load`` and ``predict`` checks passed, up to ``failed_stage``: its check fails with ``why``."""
    if failed_stage == "load":
        return [Check("load", False, why)]
    checks = [Check("load", True, f"Model() ready in {metrics['load_s'] or 0:.2f} s")]
    if failed_stage == "predict":
        return [*checks, Check("predict", False, why)]
    peak = f", peak memory {metrics['peak_mb']:.0f} MB" if metrics["peak_mb"] is not None else ""
    speed = f"{metrics['predict_s'] or 0:.2f} s ({metrics['ms_per_image'] or 0:.1f} ms/image)"
    checks.append(Check("predict", True, f"{n} images in {speed}{peak}"))
    if failed_stage == "answer":
        checks.append(Check("answer", False, why))
    return checks


def _answer_checks(
    payload: bytes | None, labels: np.ndarray | None, n: int, num_classes: int
) -> tuple[list[Check], dict[str, Any]]:
    """The ``answer`` check of the bytes cbk received, then ``accuracy`` if it holds and labels are given."""
    if payload is None:
        return [Check("answer", False, "predict's answer never reached cbk")], {}
    try:
        predictions = _read_answer(payload)
    except (OSError, ValueError, EOFError) as exc:
        return [Check("answer", False, f"could not read predict's answer: {_squash(exc)}")], {}
    verdict = _check_answer({}, predictions, n, num_classes)
    if not verdict.ok or labels is None:
        return [verdict], dict(predictions=predictions)
    accuracy = float(np.mean(predictions == labels))
    return ([verdict, Check("accuracy", True, f"accuracy {accuracy:.3f} on {n} labelled images")],
            dict(predictions=predictions, accuracy=accuracy))


def _fidelity(
    report: ValidationReport, run: _Run, probe: Probe | None, budget: Budget | None,
    zip_path: Path, n: int, timeout: float, interpreter: str,
) -> ValidationReport:
    """Add the ``parity`` and ``budget`` checks once the answer holds."""
    if not report.ok:
        return report
    checks = list(report.checks)
    if probe is not None:
        checks.append(_parity(run, probe, zip_path, timeout, interpreter))
    if budget is not None and checks[-1].ok:
        checks.append(budget.check(load_s=report.load_s, ms_per_image=report.ms_per_image,
                                   peak_mb=report.peak_mb, zip_bytes=zip_path.stat().st_size,
                                   held_mb=run.measured.held_mb,
                                   predict_peak_mb=run.measured.predict_peak_mb, n_images=n))
    return dataclasses.replace(report, checks=tuple(checks))


def _parity(run: _Run, probe: Probe, zip_path: Path, timeout: float, interpreter: str) -> Check:
    """The ``parity`` check of the probe output cbk received (the run must also have ended well)."""
    result = run.result or {}
    heldout = zip_path.with_name(zip_path.name[: -len(".zip")] + ".heldout.npz") if zip_path.name.endswith(".zip") else None
    external = heldout.name if heldout is not None and heldout.is_file() else None
    m = run.measured
    if m.probe is not None and not run.timed_out and run.returncode == 0:
        try:
            got = _read_answer(m.probe)
        except (OSError, ValueError, EOFError) as exc:
            return Check("parity", False, f"could not read predict_proba's output: {_squash(exc)}")
        return check_parity(probe, got, external=external)
    info = result.get("probe") if isinstance(result.get("probe"), dict) else {}
    error = result.get("error") if isinstance(result.get("error"), dict) else None
    if not run.timed_out and run.returncode == 0 and error is None and info.get("reason"):
        return check_parity(probe, None, reason=str(info["reason"]))
    phase = str(error.get("phase") if error else result.get("phase", "probe"))
    if phase != "probe":
        phase, error = "probe", None
    return Check("parity", False, _failure_line(run, result, error, phase, timeout, interpreter))


def _failure_line(
    run: _Run, result: dict[str, Any], error: dict[str, Any] | None, phase: str, timeout: float, interpreter: str
) -> str:
    during = _PHASE_WORDS.get(phase, phase)
    if run.timed_out:
        return f"timed out after {timeout:g} s during {during}"
    if error is not None:
        return _error_line(error, interpreter, run.sandbox, run.diagnosis)
    if not result:
        last = _last_line(run.tail)
        return (
            f"the validation harness did not start under {interpreter} ({_exit_words(run.returncode)})"
            + (f": {last}" if last else "")
        )
    last = _last_line(run.tail)
    hint = " — out of memory?" if run.returncode == -signal.SIGKILL else " — does model code call os._exit()?"
    return (
        f"the process {_exit_words(run.returncode)} during {during} without reporting back{hint}"
        + (f" Last output: {last}" if last else "")
    )


def _exit_words(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _last_line(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _squash(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_line(error: dict[str, Any], interpreter: str, sandbox: Sandbox,
                diagnosis: Diagnosis | None = None) -> str:
    """One line for an exception recorded by ingest.py: its type and the last line of its
    message (where a long message, Keras's, says its cause), and a hint from what failed
    (:func:`~.diagnosis.error_hint`), else for the usual mistakes."""
    phase, kind = str(error.get("phase")), str(error.get("type"))
    message = cause(error.get("message", ""))
    where = f" (at {error['where']})" if error.get("where") else ""
    during = _PHASE_WORDS.get(phase, phase)
    if kind == "SystemExit":
        return (
            f"model code called sys.exit({error.get('exit_code', message)}) during {during}{where} "
            "— Codabench's ingestion would stop there"
        )
    head = {
        "setup": f"the validation harness failed under {interpreter}",
        "import": "importing model.py failed",
        "init": "Model() failed",
        "predict": "predict(X) raised",
        "output": "predict's output could not be turned into an array",
        "probe": "predict_proba on the parity probe raised",
    }.get(phase, f"{phase} failed")
    found = error_hint(error, diagnosis)
    hint = f" — {found}" if found else ""
    if hint:
        pass
    elif kind in ("ModuleNotFoundError", "ImportError") and phase != "setup":
        hint = " — bundle your own modules in the zip; the server provides numpy and tensorflow"
    elif kind == "ModuleNotFoundError" and phase == "setup":
        hint = " — install numpy in that interpreter"
    elif kind == "FileNotFoundError" and phase in ("import", "init"):
        hint = " — model code runs with the unpacked zip as its working folder; is the file in the zip?"
    elif sandbox.read_only and "Read-only file system" in message:
        hint = " — validate lets model code write only in its temporary folder ($HOME and $TMPDIR)"
    elif sandbox.no_network and (kind == "gaierror" or any(w in message for w in _NETWORK_WORDS)):
        hint = " — validate runs model code without network access; bundle what it needs in the zip"
    return f"{head}: {kind}: {message}{where}{hint}"


def _check_answer(info: dict[str, Any], predictions: np.ndarray | None, n: int, num_classes: int) -> Check:
    """The ``answer`` check: predict must return n integer labels in 0..num_classes-1."""
    top = num_classes - 1
    expected = f"an array of shape ({n},) with integer labels 0..{top}"
    if predictions is None:
        return Check("answer", False, _unsaved_answer_line(info, expected, top))
    shape = tuple(predictions.shape)
    if shape != (n,):
        hint = _answer_shape_hint(predictions, n, expected)
        return Check("answer", False, f"expected shape ({n},), received {shape} — {hint}")
    return _check_answer_labels(predictions, n, top)


def _unsaved_answer_line(info: dict[str, Any], expected: str, top: int) -> str:
    """Why predict's output, which the child described but did not save, is no answer."""
    reason, dtype = info.get("reason"), info.get("dtype", "?")
    sample = f", e.g. {info['sample']}" if info.get("sample") else ""
    if reason == "predict returned None":
        return f"predict returned None — expected {expected}"
    if reason == "strings":
        return (f"expected integer labels 0..{top}, received strings (dtype {dtype}){sample} "
                "— return class indices, not class names")  # fmt: skip
    if reason == "object array":
        return (f"expected integer labels, received Python objects ({info.get('type')}, "
                f"dtype object){sample} — return a numeric numpy array")  # fmt: skip
    return f"expected {expected}, received {reason or 'nothing readable'}"


def _answer_shape_hint(predictions: np.ndarray, n: int, expected: str) -> str:
    """How to make predictions of another shape than (n,) one label per image."""
    shape = tuple(predictions.shape)
    if predictions.ndim == 2 and shape[0] == n and shape[1] == 1:
        return "flatten it, e.g. labels.reshape(-1)"
    if predictions.ndim == 2 and shape[0] == n:
        return "return one integer label per image, e.g. probs.argmax(axis=1)"
    if predictions.ndim == 0:
        return "received a single value; return one label per image"
    if predictions.ndim == 1:
        return f"return one label per input image ({n} images were given)"
    return f"return {expected}"


def _whole_labels(predictions: np.ndarray, top: int) -> bool:
    """Float labels that are all whole numbers in 0..top (what a float-tolerant scorer accepts)."""
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isfinite(predictions)) and np.all(predictions == np.round(predictions))
                    and predictions.min() >= 0 and predictions.max() <= top)


def _check_answer_labels(predictions: np.ndarray, n: int, top: int) -> Check:
    """The ``answer`` check on n predictions of shape (n,): integers in 0..top."""
    kind = predictions.dtype.kind
    if kind == "b":
        return Check("answer", False, f"expected integer labels, received bool — return class indices 0..{top}")
    if kind == "f" and _whole_labels(predictions, top):
        return Check("answer", False, f"expected integer labels, received {predictions.dtype} holding "
                     f"whole numbers 0..{top} — the example Codabench scorer would accept them, other "
                     "scorers may not; return labels.astype(np.int64)")  # fmt: skip
    if kind not in "iu":
        return Check("answer", False, f"expected integer labels, received {predictions.dtype} "
                     "— e.g. probs.argmax(axis=1) or labels.astype(np.int64)")  # fmt: skip
    lo, hi = int(predictions.min()), int(predictions.max())
    if lo < 0 or hi > top:
        bad = int(np.count_nonzero((predictions < 0) | (predictions > top)))
        return Check("answer", False, f"expected labels in 0..{top}, received min {lo}, max {hi} "
                     f"({bad} of {n} out of range)")  # fmt: skip
    distinct = len(np.unique(predictions))
    return Check("answer", True, f"{n} integer labels in 0..{top} ({predictions.dtype}, {distinct} distinct)")
