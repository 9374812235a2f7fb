"""Run a submission the way Codabench's ingestion program does, and record what happened.

STANDALONE: stdlib + numpy only. ``cbk validate`` runs this file with whatever Python
the user targets (for example a venv pinned to the server's TensorFlow), where
codabench_kit may not be installed. Do not import codabench_kit here.

Usage::

    python ingest.py [--cwd=submission|elsewhere] [--sys-path=first|last]
                     SUBMISSION_DIR X_FD ANSWER_FD RESULT.json [PROBE.npy]

It changes into SUBMISSION_DIR (``--cwd=submission``, the default) or into an empty
folder ``program`` beside it (``--cwd=elsewhere``, as Codabench's example ingestion runs
in ``/app/program``), puts SUBMISSION_DIR first on ``sys.path`` (``--sys-path=first``,
the default) or appends it to the end (``--sys-path=last``, as the example ingestion
does), imports ``model.py`` as module ``model``, calls ``Model()`` and then
``predict(X)``.

The parent (cbk) talks with it over two pipes it owns, X_FD (read here) and ANSWER_FD
(written here), in frames of a tag byte, an 8-byte big-endian length and the payload:
once ``Model()`` is ready this script sends ``R`` and reads X (an .npy stream, to its
end) from X_FD; predict's numeric output goes back as ``A`` (.npy bytes, no pickles),
predict_proba's on the probe as ``P``. The parent timestamps the frames as they arrive,
measures memory itself and checks the answer itself: this script's RESULT.json, which
model code in the same process could rewrite, only explains failures.
RESULT.json is rewritten (atomically) at every phase, so a parent that has to kill this
process still knows how far it got. It holds:

``phase``
    the phase reached: ``setup``, ``import``, ``init``, ``predict``, ``output``, ``done``.
``ok``
    true once the output was sent (cbk does not trust it: it checks what it received).
``import_s``, ``init_s``, ``load_s``, ``predict_s``, ``peak_mb``, ``n_images``
    timings in seconds (load = import + ``Model()``) and peak resident memory in MB, as
    this process sees them (the parent reports its own measurements, not these).
``output``
    ``type``, ``dtype``, ``kind`` (numpy dtype kind), ``shape``, ``saved`` and, for
    unsaved outputs, ``reason`` and a short ``sample``.
``versions``
    the installed versions of ``keras`` and ``tensorflow`` (from package metadata, without
    importing them), None when absent.
``relative_opens``
    (a list, empty when none) relative paths that model code opened (or listed) during import, ``Model()`` and
    ``predict`` and that name something inside SUBMISSION_DIR: they resolve against the
    working directory, so they work only when it is the submission folder. Seen through
    an audit hook on Python's ``open``/``os.listdir``/``os.scandir`` events; files opened
    by C code (h5py, TensorFlow's file system) are not seen.
``error``
    on an exception: ``phase``, ``type``, ``message``, ``where`` (the last line of
    submission code involved) and ``traceback`` (its tail).

With PROBE.npy (images of the build's parity probe), a last phase, ``probe``, calls
``Model().predict_proba`` on them and sends the probabilities (frame ``P``);
``probe`` in RESULT.json then holds ``saved``, or the ``reason`` it was not (no
``predict_proba``, a non-numeric answer).

Numeric output is sent with ``allow_pickle=False``; object or string output is
described in RESULT.json and not sent. If model code ends the process with
``os._exit`` the last RESULT.json written shows the phase it was in, without ``ok``.
"""

import io
import json
import os
import sys
import time
import traceback

TRACEBACK_CHARS = 20000
SAMPLE_CHARS = 200


def _peak_mb():
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0, 1)


def _text(value):
    try:
        return str(value)
    except BaseException:
        try:
            return repr(value)
        except BaseException:
            return "<unprintable>"


def _where(exc, submission_dir):
    """The deepest traceback frame inside the submission, as ``model.py:12 in predict``."""
    where = None
    prefix = os.path.join(submission_dir, "")
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename or frame.filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>
            continue
        filename = os.path.abspath(frame.filename)
        if filename.startswith(prefix):
            where = "%s:%s in %s" % (os.path.relpath(filename, submission_dir), frame.lineno, frame.name)
    return where  # a SyntaxError names its file and line in its message already


def _write(path, result):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=_text)
    os.replace(tmp, path)


def _describe_output(y, np):
    arr = np.asarray(y)
    info = {
        "type": "%s.%s" % (type(y).__module__, type(y).__qualname__),
        "dtype": str(arr.dtype),
        "kind": arr.dtype.kind,
        "shape": [int(s) for s in arr.shape],
        "saved": False,
    }
    if y is None:
        info["reason"] = "predict returned None"
    elif arr.dtype.kind in "biufc" and arr.dtype.names is None:
        return arr, info
    elif arr.dtype.kind in "USa":
        info["reason"] = "strings"
    elif arr.dtype.kind == "O":
        info["reason"] = "object array"
    else:
        info["reason"] = "non-numeric dtype %s" % arr.dtype
    try:
        info["sample"] = repr(arr.ravel()[:3].tolist())[:SAMPLE_CHARS]
    except BaseException:
        pass
    return None, info


def _probe(model, images, answer_fd, np):
    """``predict_proba`` on the parity probe, sent to the parent (frame ``P``) when numeric."""
    predict_proba = getattr(model, "predict_proba", None)
    if not callable(predict_proba):
        return {"saved": False, "reason": "Model has no predict_proba method"}
    arr, info = _describe_output(predict_proba(images), np)
    _save_numeric(arr, info, answer_fd, b"P", np)
    return info


def _send(fd, tag, payload=b""):
    """One frame to the parent: ``tag``, the payload's length (8 bytes, big-endian), the payload."""
    view = memoryview(tag + len(payload).to_bytes(8, "big") + payload)
    while view:
        view = view[os.write(fd, view):]


def _save_numeric(arr, info, answer_fd, tag, np):
    """Send ``arr`` (numeric output, or None for output that is not) as .npy bytes and mark ``info`` saved."""
    if arr is not None:
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=False)
        _send(answer_fd, tag, buffer.getvalue())
        info["saved"] = True


def _receive_images(x_fd, answer_fd, np):
    """Ask the parent for X (frame ``R``) and read it (an .npy stream) from ``x_fd``,
    straight into one array: X is held once, as when it is loaded from a file."""
    _send(answer_fd, b"R")
    fmt = np.lib.format
    with os.fdopen(x_fd, "rb") as f:
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError("X holds Python objects")
        X = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        view = memoryview(X.reshape(-1, order="A").view(np.uint8)) if X.size else memoryview(b"")
        done = 0
        while done < len(view):
            n = f.readinto(view[done:])
            if not n:
                raise EOFError("X ended after %d of %d bytes" % (done, len(view)))
            done += n
    return X


def run(submission_dir, x_fd, answer_fd, result_path, probe_path=None, conditions=None):
    """Run the submission; always leave a RESULT.json behind unless the process is killed.
    ``conditions``: ``{"cwd": "submission"|"elsewhere", "sys_path": "first"|"last"}``."""
    probe_path = os.path.abspath(probe_path) if probe_path else None
    submission_dir = os.path.abspath(submission_dir)
    x_fd, answer_fd = int(x_fd), int(answer_fd)
    result_path = os.path.abspath(result_path)
    result = {"phase": "setup", "ok": False, "python": sys.version.split()[0], "executable": sys.executable}

    def enter(phase):
        result["phase"] = phase
        _write(result_path, result)

    try:
        np = _setup(enter, result, submission_dir, conditions or {})
        model = _init_model(enter, result, _import_model(enter, result))
        y = _predict(enter, result, model, x_fd, answer_fd, np)
        _save_output(enter, result, y, answer_fd, np)
        if probe_path:
            enter("probe")
            result["probe"] = _probe(model, np.load(probe_path, allow_pickle=False), answer_fd, np)
        result["phase"] = "done"
        result["ok"] = True
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: record them too
        result["error"] = _error(exc, result["phase"], submission_dir)
    finally:
        result["peak_mb"] = _peak_mb()  # a peak only grows: the last reading is the run's peak
        _write(result_path, result)
    return 0 if result["ok"] else 1


def _setup(enter, result, submission_dir, conditions):
    """Phase ``setup``: import numpy, enter the working folder the conditions name and put
    the submission on ``sys.path``; returns numpy. (X arrives later, through a pipe.)"""
    enter("setup")
    import numpy as np

    result["numpy"] = np.__version__
    result["versions"] = _versions(("keras",), ("tensorflow", "tensorflow-cpu"))

    cwd, where = conditions.get("cwd", "submission"), conditions.get("sys_path", "first")
    result["conditions"] = {"cwd": cwd, "sys_path": where}
    if cwd == "elsewhere":  # an empty folder of its own, as /app/program in Codabench's worker
        workdir = os.path.join(os.path.dirname(submission_dir), "program")
        if not os.path.isdir(workdir):
            os.mkdir(workdir)
        os.chdir(workdir)
    else:
        os.chdir(submission_dir)
    # This script's own folder is not importable; the submission goes first (the AN2DL
    # ingestion) or last (Codabench's example ingestion: sys.path.append(submission_dir)).
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.path[:] = rest + [submission_dir] if where == "last" else [submission_dir] + rest
    sys.modules.pop("model", None)
    _watch_relative_opens(result, submission_dir)
    return np


def _versions(*names):
    """``{first name: installed version or None}`` for each tuple of distribution names."""
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return {}
    found = {}
    for candidates in names:
        found[candidates[0]] = None
        for name in candidates:
            try:
                found[candidates[0]] = metadata.version(name)
                break
            except Exception:
                continue
    return found


WATCHED_PHASES = ("import", "init", "predict")
MAX_RELATIVE_OPENS = 10


def _watch_relative_opens(result, submission_dir):
    """Record in ``result["relative_opens"]`` the relative paths model code opens or lists
    during :data:`WATCHED_PHASES` that name something inside ``submission_dir``."""
    addaudithook = getattr(sys, "addaudithook", None)
    if addaudithook is None:
        return
    prefix = os.path.join(submission_dir, "")
    # One list, made now and only appended to: the hook may run in a thread of model code
    # while the main thread writes RESULT.json, which must not see the dict change size.
    found = result["relative_opens"] = []
    busy = []

    def hook(event, args):
        if event not in ("open", "os.listdir", "os.scandir") or busy:
            return
        if result.get("phase") not in WATCHED_PHASES or len(found) >= MAX_RELATIVE_OPENS:
            return
        busy.append(True)
        try:  # an exception here would abort model code's open: swallow everything
            path = args[0] if args else None
            if path is None or isinstance(path, int):
                return
            path = os.fsdecode(os.fspath(path))
            if not path or os.path.isabs(path):
                return
            inside = os.path.normpath(os.path.join(submission_dir, path))
            if (inside == submission_dir or inside.startswith(prefix)) and os.path.exists(inside) \
                    and path not in found:
                found.append(path)
        except BaseException:
            pass
        finally:
            busy.pop()

    addaudithook(hook)


def _import_model(enter, result):
    """Phase ``import``: import ``model`` (timed) and return its ``Model`` class."""
    enter("import")
    t0 = time.perf_counter()
    import importlib

    module = importlib.import_module("model")
    result["import_s"] = time.perf_counter() - t0
    model_cls = getattr(module, "Model", None)
    if model_cls is None:
        public = sorted(n for n in vars(module) if not n.startswith("_"))
        raise AttributeError(
            "model.py defines no Model (it defines: %s)" % (", ".join(public[:10]) or "nothing public")
        )
    return model_cls


def _init_model(enter, result, model_cls):
    """Phase ``init``: call ``Model()`` (timed) and check that it has a ``predict`` method."""
    enter("init")
    t1 = time.perf_counter()
    model = model_cls()
    result["init_s"] = time.perf_counter() - t1
    result["load_s"] = result["import_s"] + result["init_s"]
    result["peak_mb"] = _peak_mb()
    if not callable(getattr(model, "predict", None)):
        raise AttributeError("Model() has no predict method")
    return model


def _predict(enter, result, model, x_fd, answer_fd, np):
    """Phase ``predict``: receive X, then ``model.predict(X)``, timed, with the peak memory after it."""
    enter("predict")
    X = _receive_images(x_fd, answer_fd, np)
    result["n_images"] = int(X.shape[0]) if X.ndim else 0
    t2 = time.perf_counter()
    y = model.predict(X)
    result["predict_s"] = time.perf_counter() - t2
    result["peak_mb"] = _peak_mb()
    return y


def _save_output(enter, result, y, answer_fd, np):
    """Phase ``output``: describe predict's output in ``result`` and send it when it is numeric."""
    enter("output")
    arr, info = _describe_output(y, np)
    result["output"] = info
    _save_numeric(arr, info, answer_fd, b"A", np)


def _error(exc, phase, submission_dir):
    """The ``error`` record of ``exc``, raised during ``phase``."""
    error = {
        "phase": phase,
        "type": type(exc).__name__,
        "message": _text(exc),
        "where": _where(exc, submission_dir),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-TRACEBACK_CHARS:],
    }
    if isinstance(exc, SystemExit):
        error["exit_code"] = _text(exc.code)
    return error


USAGE = ("usage: python ingest.py [--cwd=submission|elsewhere] [--sys-path=first|last] "
         "SUBMISSION_DIR X_FD ANSWER_FD RESULT.json [PROBE.npy]\n")
OPTIONS = {"--cwd": ("cwd", ("submission", "elsewhere")), "--sys-path": ("sys_path", ("first", "last"))}


def main(argv):
    conditions, positional = {}, []
    for arg in argv:
        name, _, value = arg.partition("=")
        if name in OPTIONS and value in OPTIONS[name][1]:
            conditions[OPTIONS[name][0]] = value
        elif arg.startswith("--"):
            sys.stderr.write(USAGE)
            return 2
        else:
            positional.append(arg)
    if len(positional) not in (4, 5):
        sys.stderr.write(USAGE)
        return 2
    return run(*positional, conditions=conditions)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # Skip interpreter shutdown: threads left running by model code (TensorFlow's, say)
        # must not keep this process alive or crash it after the result is written.
        os._exit(code)
