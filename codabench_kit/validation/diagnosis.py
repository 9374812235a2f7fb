"""Why a submission failed, said from what actually failed: the model files' Keras
versions against the target's, the frame a ``TypeError`` came from, and paths that only
resolve inside the submission folder.

:func:`diagnose` reads the unpacked submission before any model code runs: every
``.keras`` archive names the Keras that saved it in ``metadata.json``, every ``.h5`` in its
``keras_version`` attribute (read with h5py when it is installed here). After the run,
the child (``ingest.py``) has recorded the target's Keras version (``versions``) and the
relative paths model code opened inside the submission (``relative_opens``), and the
runner's failure line asks :func:`error_hint` for the one hint that fits.
"""

from __future__ import annotations

import os

import json
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
SAVEDMODEL_FILE = "saved_model.pb"
FIX_PATH = "os.path.join(os.path.dirname(__file__), {name!r})"
CAUSE_CHARS = 300


@dataclass(frozen=True)
class ModelFile:
    """A saved model inside the submission."""

    path: str
    """Relative to the submission folder, with ``/``."""
    kind: str
    """``keras`` (a ``.keras`` archive), ``h5`` or ``savedmodel`` (a folder)."""
    keras_version: str | None = None
    """The Keras that saved it, when the file says."""


@dataclass(frozen=True)
class Diagnosis:
    """What was read from the submission before it ran, and from the child after."""

    model_files: tuple[ModelFile, ...] = ()
    names: frozenset[str] = frozenset()
    """The submission's file and folder names, relative, with ``/`` (up to a few hundred)."""
    cwd: str = "submission"
    """The conditions' working directory: ``submission`` or ``elsewhere``."""
    target_keras: str | None = None
    relative_opens: tuple[str, ...] = field(default=())
    zip_name: str = "ZIP"
    """The zip's file name, for the command lines the hints give."""
    named_without_file: tuple[str, ...] = ()
    """Names of submission files that model.py writes as string literals while never
    using ``__file__``: it can only reach them relative to the working directory."""

    def after_run(self, result: dict[str, Any] | None) -> "Diagnosis":
        """With what the child recorded: the target's Keras version and the relative opens."""
        result = result or {}
        versions = result.get("versions") if isinstance(result.get("versions"), dict) else {}
        keras = versions.get("keras") if isinstance(versions.get("keras"), str) else None
        opens = result.get("relative_opens")
        opens = tuple(str(p) for p in opens) if isinstance(opens, list) else ()
        return replace(self, target_keras=keras or self.target_keras, relative_opens=opens)

    def newer_files(self) -> list[ModelFile]:
        """Model files saved by a newer Keras (major.minor) than the target's."""
        target = _version(self.target_keras)
        if target is None:
            return []
        return [f for f in self.model_files
                if (_version(f.keras_version) or (0, 0))[:2] > target[:2]]


def diagnose(submission: Path, cwd: str = "submission", zip_name: str = "ZIP") -> Diagnosis:
    """Read the submission's model files and names; runs no model code."""
    submission = Path(submission)
    files, names = [], set()
    for relative in _entries(submission):
        path = submission / relative
        if len(names) < 500:
            names.add(relative)
        if path.is_file() and path.suffix.lower() in MODEL_SUFFIXES:
            kind = "keras" if path.suffix.lower() == ".keras" else "h5"
            files.append(ModelFile(relative, kind, keras_version_of(path)))
        elif path.is_dir() and (path / SAVEDMODEL_FILE).is_file():
            files.append(ModelFile(relative, "savedmodel"))
    model_py = submission / "model.py"
    named = ()
    if model_py.is_file():
        named = tuple(names_without_file(model_py.read_text(encoding="utf-8", errors="replace"),
                                         frozenset(names)))
    return Diagnosis(tuple(files), frozenset(names), cwd, zip_name=zip_name,
                     named_without_file=named)


def _entries(root: Path, max_depth: int = 32, max_entries: int = 10_000) -> list[str]:
    """Relative POSIX paths under ``root``, sorted, without recursion (a zip may ship a
    tree thousands of folders deep): at most ``max_depth`` levels and ``max_entries``
    entries, symlinks not followed."""
    found: list[str] = []
    stack = [("", 0)]
    while stack and len(found) < max_entries:
        folder, depth = stack.pop()
        try:
            with os.scandir(os.path.join(root, folder) if folder else root) as entries:
                for entry in entries:
                    relative = f"{folder}/{entry.name}" if folder else entry.name
                    found.append(relative)
                    if depth + 1 < max_depth and entry.is_dir(follow_symlinks=False):
                        stack.append((relative, depth + 1))
        except OSError:
            continue
    return sorted(found[:max_entries])


def names_without_file(source: str, names: frozenset[str]) -> list[str]:
    """String (or bytes) literals of ``source`` that name one of ``names`` (``./`` allowed), when
    ``source`` never uses ``__file__``; empty when it does or does not parse.

    Complements the child's audit hook, which does not see files opened by C code (h5py,
    TensorFlow's file system)."""
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    literals = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "__file__":
            return []
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            literals.append(node.value if isinstance(node.value, str)
                            else node.value.decode("utf-8", "replace"))
    found = []
    for literal in literals:
        name = literal[2:] if literal.startswith("./") else literal
        if name.rstrip("/") in names and literal not in found:
            found.append(literal)
    return found


def keras_version_of(path: Path) -> str | None:
    """The Keras version a ``.keras`` archive (``metadata.json``) or an ``.h5`` file
    (``keras_version`` attribute, needs h5py here) names; None when it does not say."""
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                metadata = json.loads(archive.read("metadata.json"))
            version = metadata.get("keras_version") if isinstance(metadata, dict) else None
            return str(version) if version else None
        import h5py  # noqa: PLC0415  (optional: present wherever TensorFlow is)

        with h5py.File(path, "r") as h5:
            version = h5.attrs.get("keras_version")
        if isinstance(version, bytes):
            version = version.decode("utf-8", "replace")
        return str(version) if version else None
    except Exception:  # not a zip, no metadata, no h5py, not HDF5: it does not say
        return None


def preview_lines(diagnosis: Diagnosis) -> list[str]:
    """Progress lines, before running: each model file and the Keras that saved it."""
    return [f"model file {f.path}: saved by Keras {f.keras_version}"
            for f in diagnosis.model_files if f.keras_version]


def _version(text: str | None) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(g or 0) for g in match.groups()) if match else None


def escape(text: str) -> str:
    """``text`` with control characters written as escapes (``\\t``, ``\\x1b``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cause(message: Any, limit: int = CAUSE_CHARS) -> str:
    """The last non-empty line of an exception's message, escaped, cut in its middle when
    longer than ``limit`` (a Keras message ends with its cause)."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    line = escape(lines[-1]) if lines else ""
    if len(line) <= limit:
        return line
    half = (limit - 5) // 2
    return f"{line[:half]} ... {line[-half:]}"


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def deepest_frame(traceback_text: str | None) -> tuple[str, int, str] | None:
    """``(filename, line, function)`` of the frame the exception was raised in."""
    frames = _FRAME.findall(traceback_text or "")
    if not frames:
        return None
    filename, line, name = frames[-1]
    return filename, int(line), name


def _package(filename: str) -> str | None:
    """The installed package a file belongs to (``keras``, ``tensorflow``), else None."""
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            return parts[parts.index(marker) + 1].split(".")[0]
    return None


def version_line(diagnosis: Diagnosis) -> str | None:
    """When a model file was saved by a newer Keras than the target's: which, and the fix."""
    newer = diagnosis.newer_files()
    if not newer:
        return None
    files = ", ".join(f"{f.path} was saved by Keras {f.keras_version}" for f in newer)
    return (f"{files} and the target has Keras {diagnosis.target_keras}: re-save it with "
            f"keras=={diagnosis.target_keras}, or export a SavedModel "
            f"(`cbk repack {diagnosis.zip_name} --out NEW.zip`)")


def cwd_line(paths: tuple[str, ...] | list[str], cwd: str, seen: bool = True) -> str:
    """model code opened ``paths`` relative to the working directory (``seen``; else
    model.py names them and never uses ``__file__``): the fix."""
    shown = ", ".join(repr(p) for p in list(paths)[:3]) + (" ..." if len(paths) > 3 else "")
    fix = FIX_PATH.format(name=list(paths)[0])
    what = (f"model code opens {shown} by a relative path" if seen else
            f"model.py names {shown} and never uses __file__, so it opens it by a relative path")
    if cwd == "elsewhere":
        return (f"{what}; it is in the zip, but this target runs with the working directory "
                f"elsewhere (as Codabench's example ingestion) — open it as {fix}")
    return (f"{what}: it works only when the working directory is the submission folder "
            f"(true here, not under Codabench's example ingestion) — open it as {fix}")


def _named_in(message: str, names: frozenset[str]) -> list[str]:
    """Names of submission files the message quotes, longest first."""
    found = [n for n in names if re.search(r"(?<![\w/.])" + re.escape(n) + r"(?![\w/])", message)]
    return sorted(found, key=len, reverse=True)


def error_hint(error: dict[str, Any], diagnosis: Diagnosis | None) -> str | None:
    """The hint that fits what failed, or None to let the runner's generic hints speak.

    In order: a working directory that the target does not set to the submission folder
    while model code opened a submission file by a relative path; a model file saved by a
    newer Keras than the target's (the load raised in import, ``Model()`` or predict); a
    ``TypeError`` in ``Model()``: raised by the call itself (``__init__`` takes arguments)
    or deeper, in a package (a layer that cannot be rebuilt, say)."""
    diagnosis = diagnosis or Diagnosis()
    phase, kind = str(error.get("phase")), str(error.get("type"))
    message = str(error.get("message", ""))
    if phase not in ("import", "init", "predict", "probe"):
        return None
    if diagnosis.cwd == "elsewhere":
        paths = list(diagnosis.relative_opens) or (
            _named_in(message, diagnosis.names) if kind in (
                "FileNotFoundError", "OSError", "ValueError", "NotFoundError") else [])
        if paths:
            return cwd_line(paths, "elsewhere")
        if diagnosis.named_without_file:
            return cwd_line(diagnosis.named_without_file, "elsewhere", seen=False)
    line = version_line(diagnosis)
    if line:
        return line
    if kind == "TypeError" and phase == "init":
        frame = deepest_frame(error.get("traceback"))
        if frame is None:
            return None
        filename, lineno, function = frame
        if Path(filename).name == "ingest.py":
            return "Codabench calls Model() with no arguments; make __init__ take only self"
        package = _package(filename)
        at = f"{Path(filename).name}:{lineno} in {function}"
        if package:
            return (f"raised inside {package} ({at}), not by the call Model(): something "
                    f"model code builds or loads cannot be made by this {package}")
        return f"raised at {at}, not by the call Model() itself"
    return None
