"""Prove that a submission zip runs: unpack it safely, run it like Codabench, check its answer.

:func:`validate_zip` unpacks the zip with :func:`~.safe_zip.safe_extract` into a fresh
temporary folder, runs the standalone ``ingest.py`` next to this file in a child process
(any Python: the one cbk runs under, or a venv that matches the server), and turns what
the child recorded into a list of :class:`Check` results, one per stage:

``zip`` -> ``load`` (import + ``Model()``) -> ``predict`` -> ``answer`` -> ``accuracy``
-> ``parity`` (a cbk zip's probe, see :mod:`.fidelity`) -> ``budget`` (when given)

Checking stops at the first failing stage. Nothing is unpickled from the child: its
result is JSON and its predictions are loaded with ``allow_pickle=False``. The child runs
in the sandbox :func:`~.sandbox.choose_sandbox` picks (bubblewrap or ``unshare``: no
network, nothing writable outside the temporary folder), with ``HOME`` and ``TMPDIR``
inside that folder, which is removed on every path out, timeouts included.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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
from codabench_kit.validation.check import Check
from codabench_kit.validation.diagnosis import (Diagnosis, cause, cwd_line, diagnose, error_hint,
                                                preview_lines)
from codabench_kit.validation.fidelity import Budget, Probe, check_parity, read_probe
from codabench_kit.validation.sandbox import Sandbox, choose_sandbox
from codabench_kit.validation.targets import CONDITIONS, Conditions, get_conditions

INGEST_SCRIPT = Path(__file__).with_name("ingest.py")
IMAGE_SHAPE = (96, 96, 3)
DEFAULT_NUM_IMAGES = 32
TIMEOUT_S = 600.0
"""Seconds allowed for ``Model()`` plus ``predict`` (default)."""
TAIL_CHARS = 2000

_STAGE_OF_PHASE = {
    "setup": "load", "import": "load", "init": "load", "predict": "predict", "output": "answer", "done": "answer",
    "probe": "parity",
}  # fmt: skip
_PHASE_WORDS = {
    "setup": "start-up",
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
    num_classes: int = 8,
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
    workdir = Path(tempfile.mkdtemp(prefix="cbk-validate-"))
    try:
        return _validate_in(job, workdir)
    finally:
        _remove_tree(workdir)


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
    job.say(f"checking {job.zip_path.name}")
    try:
        summary = safe_extract(job.zip_path, submission, **job.limits)
    except ZipRejectedError as exc:
        return ValidationReport(checks=(Check("zip", False, str(exc)),))
    checks = [Check("zip", True, summary.describe())]
    diagnosis = diagnose(submission, job.conditions.cwd, job.zip_path.name)  # before model code runs
    for line in preview_lines(diagnosis):
        job.say(line)
    probe = _write_inputs(io_dir, job.images, submission, job.say)
    n, timeout, interpreter = len(job.images), job.timeout, job.interpreter
    job.say(job.confinement.describe())
    job.say(f"running Model() and predict() on {n} images with {interpreter} (timeout {timeout:g} s)")
    run = _run_ingest(interpreter, submission, workdir, job.confinement, timeout, probe is not None,
                      job.conditions.ingest_args())
    run.diagnosis = diagnosis.after_run(run.result)
    report = _report(run, checks, io_dir / "output.npy", job.labels, n, job.num_classes, timeout,
                     interpreter, job.say)
    report = _fidelity(report, run, probe, io_dir, job.budget, job.zip_path, timeout, interpreter)
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


def _write_inputs(io_dir: Path, images: np.ndarray, submission: Path,
                  say: Callable[[str], None]) -> Probe | None:
    """Save the images for the child, and the zip's parity probe if it has a valid one."""
    np.save(io_dir / "input.npy", images, allow_pickle=False)
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


def _child_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(PYTHONDONTWRITEBYTECODE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1")
    # The model's scratch files and dot-folders (~/.keras, ~/.cache) go where they get cleaned up.
    env.update(TMPDIR=str(workdir / "tmp"), HOME=str(workdir / "home"))
    return env


def _run_ingest(
    interpreter: str, submission: Path, workdir: Path, sandbox: Sandbox, timeout: float, probe: bool = False,
    options: list[str] | None = None,
) -> _Run:
    io_dir = workdir / "io"
    result_path = io_dir / "result.json"
    cmd = [interpreter, str(INGEST_SCRIPT), *(options or []), str(submission), str(io_dir / "input.npy"),
           str(io_dir / "output.npy"), str(result_path)]  # fmt: skip
    if probe:
        cmd.append(str(io_dir / "probe.npy"))
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            sandbox.wrap(cmd, workdir), cwd=submission, env=_child_env(workdir), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        what = f"the Python interpreter {interpreter!r}" if sandbox.kind == "none" else f"{sandbox.program!r}"
        raise CbkError(f"cannot start {what}: {exc}") from exc
    assert proc.stdout is not None
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
        tail.join(timeout=5)
        if not tail.is_alive():
            proc.stdout.close()
    returncode = proc.returncode
    if sandbox.kind == "bwrap" and 128 < returncode <= 128 + 64:
        # bwrap exits 128 + N when its child dies of signal N (a model's os._exit(129..192) reads the same)
        returncode = 128 - returncode
    wall_s = time.perf_counter() - start
    return _Run(returncode, timed_out, _read_result(result_path), tail.text(), wall_s, sandbox)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if not path.exists():
        return
    # Model code may have left folders without write or search permission: restore them, retry.
    for dirpath, dirnames, _files in os.walk(path):
        for name in [dirpath, *(os.path.join(dirpath, d) for d in dirnames)]:
            if not os.path.islink(name):
                try:
                    os.chmod(name, 0o700)
                except OSError:
                    pass
    shutil.rmtree(path, ignore_errors=True)


# --- turning the child's record into checks ----------------------------------------------


def _num(result: dict[str, Any], key: str) -> float | None:
    value = result.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _report(
    run: _Run,
    checks: list[Check],
    output_path: Path,
    labels: np.ndarray | None,
    n: int,
    num_classes: int,
    timeout: float,
    interpreter: str,
    say: Callable[[str], None],
) -> ValidationReport:
    """Add the ``load``, ``predict``, ``answer`` and ``accuracy`` checks to ``checks``, up to the first failure."""
    result = run.result or {}
    error = result.get("error") if isinstance(result.get("error"), dict) else None
    phase = str(error.get("phase") if error else result.get("phase", "setup"))
    metrics = _metrics(run, result, error, n)
    done = result.get("ok") is True and not run.timed_out
    failed_stage = None if done else _STAGE_OF_PHASE.get(phase, "load")
    why = "" if failed_stage is None else _failure_line(run, result, error, phase, timeout, interpreter)
    checks.extend(_stage_checks(failed_stage, why, metrics, n))
    if not checks[-1].ok:
        return ValidationReport(checks=tuple(checks), **metrics)
    say(f"checking the answer ({run.wall_s:.1f} s in the child process)")
    answer_checks, extra = _answer_checks(result, output_path, labels, n, num_classes)
    checks.extend(answer_checks)
    return ValidationReport(checks=tuple(checks), **{**metrics, **extra})


def _metrics(run: _Run, result: dict[str, Any], error: dict[str, Any] | None, n: int) -> dict[str, Any]:
    """The report's timings, peak memory, log tail and traceback, from the child's record."""
    load_s, predict_s, peak_mb = _num(result, "load_s"), _num(result, "predict_s"), _num(result, "peak_mb")
    ms_per_image = predict_s * 1000 / n if predict_s is not None else None
    return dict(
        load_s=load_s, predict_s=predict_s, ms_per_image=ms_per_image, peak_mb=peak_mb, log_tail=run.tail,
        traceback=str(error.get("traceback")) if error else None,
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
    result: dict[str, Any], output_path: Path, labels: np.ndarray | None, n: int, num_classes: int
) -> tuple[list[Check], dict[str, Any]]:
    """The ``answer`` check, then ``accuracy`` if it holds and labels are given; with the report's extras."""
    info = result.get("output") if isinstance(result.get("output"), dict) else {}
    predictions = None
    if info.get("saved"):
        try:
            predictions = np.load(output_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            return [Check("answer", False, f"could not read predict's saved output: {exc}")], {}
    verdict = _check_answer(info, predictions, n, num_classes)
    if not verdict.ok or labels is None:
        return [verdict], dict(predictions=predictions)
    assert predictions is not None
    accuracy = float(np.mean(predictions == labels))
    return ([verdict, Check("accuracy", True, f"accuracy {accuracy:.3f} on {n} labelled images")],
            dict(predictions=predictions, accuracy=accuracy))


def _fidelity(
    report: ValidationReport, run: _Run, probe: Probe | None, io_dir: Path, budget: Budget | None,
    zip_path: Path, timeout: float, interpreter: str,
) -> ValidationReport:
    """Add the ``parity`` and ``budget`` checks once the answer holds."""
    if not report.ok:
        return report
    checks = list(report.checks)
    result = run.result or {}
    if probe is not None:
        if result.get("ok") is True and not run.timed_out:
            info = result.get("probe") if isinstance(result.get("probe"), dict) else {}
            checks.append(check_parity(probe, info, io_dir / "output.probe.npy"))
        else:
            error = result.get("error") if isinstance(result.get("error"), dict) else None
            phase = str(error.get("phase") if error else result.get("phase", "probe"))
            checks.append(Check("parity", False, _failure_line(run, result, error, phase, timeout, interpreter)))
    if budget is not None and checks[-1].ok:
        checks.append(budget.check(load_s=report.load_s, ms_per_image=report.ms_per_image,
                                   peak_mb=report.peak_mb, zip_bytes=zip_path.stat().st_size))
    return dataclasses.replace(report, checks=tuple(checks))


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
        hint = " — validate lets model code write only in its own folder and tempfile's"
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


def _check_answer_labels(predictions: np.ndarray, n: int, top: int) -> Check:
    """The ``answer`` check on n predictions of shape (n,): integers in 0..top."""
    kind = predictions.dtype.kind
    if kind == "b":
        return Check("answer", False, f"expected integer labels, received bool — return class indices 0..{top}")
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
