"""Target environments: where a submission is validated (``cbk validate --target NAME``).

A target is a set of pinned packages and the conditions the ingestion program runs the
submission under (:class:`Conditions`). ``codabench`` (the default) is the image students
reported on the AN2DL competition's Codabench server, TensorFlow 2.17.0 + Keras 3.4.1,
run as that competition's ingestion did (``an2dl``: inside the submission folder, first
on ``sys.path``); ``codabench-example`` is the same image run as Codabench's example
ingestion program does (``codabench-example``: working directory elsewhere, submission
appended to the end of ``sys.path``); ``current`` is the interpreter cbk runs in, with
the ``an2dl`` conditions. ``cbk validate --conditions`` picks the conditions apart from
the interpreter. A pinned target runs in a virtual
environment made once with ``pip`` and cached (``$CBK_CACHE_DIR``, else
``~/.cache/codabench-kit``, under ``targets/NAME-HASH``, HASH naming the pins). It is
made in a scratch folder beside its final place and renamed when complete, so an
interrupted or failed install leaves nothing that looks usable.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from codabench_kit.errors import OptionError, TargetError


@dataclass(frozen=True)
class Conditions:
    """How an ingestion program runs a submission, beyond the packages it has.

    ``cwd`` is ``submission`` (the working directory is the unpacked submission) or
    ``elsewhere`` (an empty folder of its own, as ``/app/program`` is in Codabench's compute
    worker); ``sys_path`` is ``first`` (the submission folder put first on ``sys.path``) or
    ``last`` (appended to its end, after the ingestion program's folder and site-packages);
    ``feed`` is how X reaches ``predict``: ``whole`` (one call on the whole uint8 array)."""

    name: str
    description: str
    cwd: str = "submission"
    sys_path: str = "first"
    feed: str = "whole"

    def ingest_args(self) -> list[str]:
        """The options that tell ``ingest.py`` these conditions."""
        return [f"--cwd={self.cwd}", f"--sys-path={self.sys_path}"]


CONDITIONS = {
    "an2dl": Conditions(
        "an2dl", "as the AN2DL competition's ingestion: working directory = the submission, "
        "submission first on sys.path"),
    "codabench-example": Conditions(
        "codabench-example", "as Codabench's example ingestion program: working directory "
        "elsewhere, submission appended to the end of sys.path", cwd="elsewhere", sys_path="last"),
}


def _lookup(table: dict, what: str, name: str):
    """``table[name]``, or a :class:`TargetError` naming what was expected."""
    try:
        return table[name]
    except KeyError:
        raise TargetError(f"unknown {what} {name!r}; expected one of: "
                          + ", ".join(table)) from None


def get_conditions(name: str) -> Conditions:
    return _lookup(CONDITIONS, "conditions", name)


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    pins: tuple[str, ...] = ()
    """pip requirement strings; empty for ``current`` (this interpreter)."""
    conditions: str = "an2dl"
    """The name of its :class:`Conditions`."""
    venv: str = ""
    """The name its venv is cached under (default: its own), so targets that differ only in
    conditions share one venv."""

    @property
    def key(self) -> str:
        digest = hashlib.sha256("\n".join(self.pins).encode()).hexdigest()[:10]
        return f"{self.venv or self.name}-{digest}"

    @property
    def keras_version(self) -> str | None:
        """The Keras version it pins (``keras==X``), else None."""
        for pin in self.pins:
            if pin.replace(" ", "").lower().startswith("keras=="):
                return pin.split("==", 1)[1].strip()
        return None


_CODABENCH_PINS = ("tensorflow-cpu==2.17.0", "keras==3.4.1", "numpy<2")
TARGETS = {
    "codabench": Target(
        "codabench", "the Codabench image reported for AN2DL: TensorFlow 2.17.0 + Keras 3.4.1",
        _CODABENCH_PINS),
    "codabench-example": Target(
        "codabench-example", "TensorFlow 2.17.0 + Keras 3.4.1, run as Codabench's example "
        "ingestion program does (working directory elsewhere, submission last on sys.path)",
        _CODABENCH_PINS, conditions="codabench-example", venv="codabench"),
    "current": Target("current", f"this interpreter ({sys.executable})"),
}
DEFAULT_TARGET = "codabench"
MARKER = "cbk-target.json"


def get_target(name: str) -> Target:
    return _lookup(TARGETS, "target", name)


def cache_dir() -> Path:
    root = os.environ.get("CBK_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "codabench-kit"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


Installer = Callable[[Path, tuple[str, ...]], None]


def pip_install(python: Path, pins: tuple[str, ...]) -> None:
    """Install ``pins`` with the venv's pip; a :class:`TargetError` with pip's last
    lines when it fails (offline, say)."""
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off", *pins]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise TargetError("pip could not install " + " ".join(pins) + ": "
                          + (" | ".join(tail[-2:]) or f"exit status {result.returncode}"))


def target_python(name: str, *, progress: Callable[[str], None] = print,
                  install: Installer = pip_install) -> Path:
    """The interpreter of target ``name``, making (once) and caching its venv."""
    target = get_target(name)
    if not target.pins:
        return Path(sys.executable)
    venv = cache_dir() / "targets" / target.key
    if (venv / MARKER).is_file():
        return venv_python(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    progress(f"target {name}: making its environment once ({', '.join(target.pins)}) "
             f"in {venv}")
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.key}.", dir=venv.parent))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(scratch)], check=True,
                       capture_output=True)
        install(venv_python(scratch), target.pins)
        (scratch / MARKER).write_text(json.dumps({"target": name, "pins": target.pins}))
        try:
            scratch.rename(venv)
        except OSError:  # made meanwhile by another cbk: use that one
            if not (venv / MARKER).is_file():
                raise
    except (TargetError, subprocess.CalledProcessError, OSError) as error:
        reason = error if isinstance(error, TargetError) else f"{type(error).__name__}: {error}"
        raise TargetError(
            f"cannot make the {name!r} target ({target.description}): {reason}. It needs "
            f"the package index once (then it is cached in {venv.parent}); offline, "
            f"validate with --target current, or --python PATH to an interpreter that "
            f"has {', '.join(target.pins)}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return venv_python(venv)


TARGET_ENV = "CBK_TARGET"
"""Names the default target when ``--target`` is not given."""


def target_name(target: str | None) -> str:
    """``target``, else ``$CBK_TARGET``, else :data:`DEFAULT_TARGET`."""
    return target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


def conditions_for(target: str | None, python: str | None,
                   conditions: str | None = None) -> Conditions:
    """The conditions to run under: ``conditions`` if given, else the target's (``an2dl``
    with ``--python``)."""
    if conditions:
        return get_conditions(conditions)
    if python:
        return CONDITIONS["an2dl"]
    return get_conditions(get_target(target_name(target)).conditions)


def interpreter_for(target: str | None, python: str | None, *,
                    progress: Callable[[str], None] = print) -> Callable[[], str]:
    """A function giving the interpreter a submission runs with: ``python``, else the
    ``target``'s (``$CBK_TARGET``, else :data:`DEFAULT_TARGET`), its venv made once if
    need be. The names are checked now; the venv is made when the function is called,
    after the other inputs are checked."""
    if python and target:
        raise OptionError(f"expected --target or --python, not both; received "
                          f"--target {target} and --python {python}")
    if python:
        return lambda: str(python)
    name = target_name(target)
    get_target(name)
    return lambda: str(target_python(name, progress=progress))
