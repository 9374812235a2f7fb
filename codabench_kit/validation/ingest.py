"""Run a submission the way Codabench's ingestion program does, and record what happened.

STANDALONE: stdlib + numpy only. ``cbk validate`` runs this file with whatever Python
the user targets (for example a venv pinned to the server's TensorFlow), where
codabench_kit may not be installed. Do not import codabench_kit here.

Usage::

    python ingest.py [--cwd=submission|elsewhere] [--sys-path=first|last]
                     SUBMISSION_DIR INPUT.npy OUTPUT.npy RESULT.json [PROBE.npy]

It changes into SUBMISSION_DIR (``--cwd=submission``, the default) or into an empty
folder ``program`` beside it (``--cwd=elsewhere``, as Codabench's example ingestion runs
in ``/app/program``), puts SUBMISSION_DIR first on ``sys.path`` (``--sys-path=first``,
the default) or appends it to the end (``--sys-path=last``, as the example ingestion
does), imports ``model.py`` as module ``model``, calls ``Model()`` and then
``predict(X)`` with X loaded from INPUT.npy.
RESULT.json is rewritten (atomically) at every phase, so a parent that has to kill this
process still knows how far it got. It holds:

``phase``
    the phase reached: ``setup``, ``import``, ``init``, ``predict``, ``output``, ``done``.
``ok``
    true once the output was recorded.
``import_s``, ``init_s``, ``load_s``, ``predict_s``, ``peak_mb``, ``n_images``
    timings in seconds (load = import + ``Model()``) and peak resident memory in MB.
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
``Model().predict_proba`` on them and saves the probabilities to OUTPUT.probe.npy;
``probe`` in RESULT.json then holds ``saved``, or the ``reason`` it was not (no
``predict_proba``, a non-numeric answer).

Numeric output is saved to OUTPUT.npy with ``allow_pickle=False``; object or string
output is described in RESULT.json and not saved. If model code ends the process with
``os._exit`` the last RESULT.json written shows the phase it was in, without ``ok``.
"""

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


def _probe(model, images, path, np):
    """``predict_proba`` on the parity probe, saved to ``path`` when numeric."""
    predict_proba = getattr(model, "predict_proba", None)
    if not callable(predict_proba):
        return {"saved": False, "reason": "Model has no predict_proba method"}
    arr, info = _describe_output(predict_proba(images), np)
    _save_numeric(arr, info, path, np)
    return info


def _save_numeric(arr, info, path, np):
    """Save ``arr`` (numeric output, or None for output that is not) to ``path`` and mark ``info`` saved."""
    if arr is not None:
        with open(path, "wb") as f:
            np.save(f, arr, allow_pickle=False)
        info["saved"] = True


def run(submission_dir, input_path, output_path, result_path, probe_path=None, conditions=None):
    """Run the submission; always leave a RESULT.json behind unless the process is killed.
    ``conditions``: ``{"cwd": "submission"|"elsewhere", "sys_path": "first"|"last"}``."""
    probe_path = os.path.abspath(probe_path) if probe_path else None
    submission_dir = os.path.abspath(submission_dir)
    input_path = os.path.abspath(input_path)
    output_path = os.path.abspath(output_path)
    result_path = os.path.abspath(result_path)
    result = {"phase": "setup", "ok": False, "python": sys.version.split()[0], "executable": sys.executable}

    def enter(phase):
        result["phase"] = phase
        _write(result_path, result)

    try:
        np, X = _setup(enter, result, submission_dir, input_path, conditions or {})
        model = _init_model(enter, result, _import_model(enter, result))
        y = _predict(enter, result, model, X)
        _save_output(enter, result, y, output_path, np)
        if probe_path:
            enter("probe")
            result["probe"] = _probe(model, np.load(probe_path, allow_pickle=False),
                                     output_path[:-len(".npy")] + ".probe.npy", np)
        result["phase"] = "done"
        result["ok"] = True
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: record them too
        result["error"] = _error(exc, result["phase"], submission_dir)
    finally:
        result["peak_mb"] = _peak_mb()  # a peak only grows: the last reading is the run's peak
        _write(result_path, result)
    return 0 if result["ok"] else 1


def _setup(enter, result, submission_dir, input_path, conditions):
    """Phase ``setup``: import numpy, load X, enter the working folder the conditions name and
    put the submission on ``sys.path``; returns ``(numpy, X)``."""
    enter("setup")
    import numpy as np

    result["numpy"] = np.__version__
    result["versions"] = _versions(("keras",), ("tensorflow", "tensorflow-cpu"))
    X = np.load(input_path, allow_pickle=False)
    result["n_images"] = int(X.shape[0]) if X.ndim else 0

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
    return np, X


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


def _predict(enter, result, model, X):
    """Phase ``predict``: ``model.predict(X)``, timed, with the peak memory after it."""
    enter("predict")
    t2 = time.perf_counter()
    y = model.predict(X)
    result["predict_s"] = time.perf_counter() - t2
    result["peak_mb"] = _peak_mb()
    return y


def _save_output(enter, result, y, output_path, np):
    """Phase ``output``: describe predict's output in ``result`` and save it when it is numeric."""
    enter("output")
    arr, info = _describe_output(y, np)
    result["output"] = info
    _save_numeric(arr, info, output_path, np)


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
         "SUBMISSION_DIR INPUT.npy OUTPUT.npy RESULT.json [PROBE.npy]\n")
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
