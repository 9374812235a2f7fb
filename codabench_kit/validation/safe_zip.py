"""Inspect and unpack a submission zip without trusting it.

Every check runs on the zip's central directory before a single byte is written:
paths that escape the destination (absolute, drive letters, UNC, ``..``), symlinks
and other special entries, encryption, duplicate names, entry count, declared size,
compression ratio (zip bombs) and the ``model.py``-at-the-root rule. Extraction then
streams each entry, refuses to yield more than the header declared (lying headers)
and lets :mod:`zipfile` verify each CRC. Any problem raises
:class:`~codabench_kit.errors.ZipRejectedError` with one line naming the entry.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codabench_kit.errors import ZipRejectedError

GIB = 1024**3
MIB = 1024**2
DEFAULT_MAX_TOTAL_BYTES = 2 * GIB
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_RATIO = 200
RATIO_MIN_BYTES = 1 * MIB
"""The ratio check applies to entries that unpack to more than this (small files compress well)."""

_CHUNK = 1 << 20
_SUPPORTED_COMPRESSION = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True)
class ZipSummary:
    """What a zip holds: its regular files (names normalised to ``a/b.py``) and their sizes."""

    num_files: int
    uncompressed_bytes: int
    compressed_bytes: int
    """Size of the zip file on disk."""
    names: tuple[str, ...]

    def describe(self) -> str:
        """One line, e.g. ``3 files, 12.4 KB unpacked (4.1 KB zipped)``."""
        files = "1 file" if self.num_files == 1 else f"{self.num_files} files"
        unpacked, zipped = format_bytes(self.uncompressed_bytes), format_bytes(self.compressed_bytes)
        return f"{files}, {unpacked} unpacked ({zipped} zipped)"


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool


def format_bytes(n: int | float) -> str:
    """``1536`` -> ``1.5 KB`` (powers of 1024)."""
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            break
    return f"{n:.1f} {unit}"


def inspect_zip(
    path: str | os.PathLike[str],
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ZipSummary:
    """Check a submission zip without unpacking it; raise :class:`ZipRejectedError` if unsafe."""
    path = Path(path)
    _check_file(path)
    with _open_zip(path) as zf:
        entries = _check_entries(zf, max_total_bytes=max_total_bytes, max_entries=max_entries, max_ratio=max_ratio)
    return _summary(path, entries)


def safe_extract(
    path: str | os.PathLike[str],
    dest_dir: str | os.PathLike[str],
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> ZipSummary:
    """Check a submission zip, then unpack it into ``dest_dir`` (created if missing).

    Nothing is written unless every check passes. Existing files are never overwritten.
    If extraction fails part-way (corrupt data, a lying header), the files written so far
    are removed again before :class:`ZipRejectedError` is raised.
    """
    path = Path(path)
    _check_file(path)
    with _open_zip(path) as zf:
        entries = _check_entries(zf, max_total_bytes=max_total_bytes, max_entries=max_entries, max_ratio=max_ratio)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        created: list[Path] = []
        try:
            _extract_all(zf, entries, root, created, max_total_bytes)
        except BaseException:
            _remove_created(created)
            raise
    return _summary(path, entries)


# --- checks -----------------------------------------------------------------


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ZipRejectedError(f"no such file: {path}")
    if not path.is_file():
        raise ZipRejectedError(f"expected a zip file, received a directory or special file: {path}")
    if path.stat().st_size == 0:
        raise ZipRejectedError(f"{path.name} is empty (0 bytes), not a zip file")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise ZipRejectedError(
            f"{path.name} is not a readable zip file ({exc}) — is it truncated, or a different format?"
        ) from exc
    except OSError as exc:
        raise ZipRejectedError(f"cannot read {path}: {exc}") from exc


def _check_entries(
    zf: zipfile.ZipFile, *, max_total_bytes: int, max_entries: int, max_ratio: float
) -> list[_Entry]:
    infos = zf.infolist()
    if not infos:
        raise ZipRejectedError("the zip holds no entries — expected model.py at its root")
    if len(infos) > max_entries:
        raise ZipRejectedError(f"the zip holds {len(infos)} entries, more than the limit of {max_entries}")

    entries: list[_Entry] = []
    seen: dict[tuple[str, ...], str] = {}
    total = 0
    for info in infos:
        entry = _check_entry(info, max_ratio)
        if entry.parts in seen:
            first = seen[entry.parts]
            also = "the zip stores that name twice" if first == info.filename else f"it clashes with {first!r}"
            raise ZipRejectedError(f"duplicate entry {info.filename!r} — {also}")
        seen[entry.parts] = info.filename
        total += info.file_size
        if total > max_total_bytes:
            raise ZipRejectedError(
                f"the zip declares more than {format_bytes(max_total_bytes)} of unpacked data "
                f"(limit reached at entry {info.filename!r})"
            )
        entries.append(entry)

    files = [e for e in entries if not e.is_dir]
    file_paths = {e.parts for e in files}
    for e in files:
        for i in range(1, len(e.parts)):
            if e.parts[:i] in file_paths:
                raise ZipRejectedError(
                    f"entry {e.info.filename!r} needs {'/'.join(e.parts[:i])!r} to be a folder, "
                    "but the zip also stores it as a file"
                )
    _check_model_py(files)
    return entries


def _check_entry(info: zipfile.ZipInfo, max_ratio: float) -> _Entry:
    name = info.filename
    if not name or not name.strip("/\\"):
        raise ZipRejectedError(f"entry with an empty name ({name!r})")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise ZipRejectedError(f"entry {name!r} has an absolute path — entries must be relative to the zip root")
    raw_parts = [p for p in _SEPARATORS.split(name) if p not in ("", ".")]
    if ".." in raw_parts:
        raise ZipRejectedError(f"entry {name!r} contains '..' (path traversal) — it would unpack outside the folder")
    if any(":" in p or "\x00" in p for p in raw_parts):
        raise ZipRejectedError(f"entry {name!r} has a ':' or NUL character in its path")
    if not raw_parts:
        raise ZipRejectedError(f"entry with an empty name ({name!r})")

    is_dir = name.endswith(("/", "\\"))
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        what = "a symlink" if kind == stat.S_IFLNK else f"a special file (mode {oct(mode)})"
        raise ZipRejectedError(f"entry {name!r} is {what} — only regular files and folders are allowed")
    if kind == stat.S_IFDIR:
        is_dir = True
    if info.flag_bits & 0x1:
        raise ZipRejectedError(f"entry {name!r} is encrypted — submit an unencrypted zip")
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise ZipRejectedError(
            f"entry {name!r} uses compression method {info.compress_type}, which Python's zipfile cannot read"
        )
    if is_dir:
        return _Entry(info, tuple(raw_parts), True)
    if info.file_size > RATIO_MIN_BYTES:
        ratio = info.file_size / info.compress_size if info.compress_size else float("inf")
        if ratio > max_ratio:
            raise ZipRejectedError(
                f"entry {name!r} expands from {format_bytes(info.compress_size)} to "
                f"{format_bytes(info.file_size)} (ratio {ratio:.0f}:1, limit {max_ratio:g}:1) — looks like a zip bomb"
            )
    return _Entry(info, tuple(raw_parts), False)


def _check_model_py(files: list[_Entry]) -> None:
    if any(e.parts == ("model.py",) for e in files):
        return
    nested = ["/".join(e.parts) for e in files if e.parts[-1] == "model.py"]
    if nested:
        found = ", ".join(nested[:3]) + (f" and {len(nested) - 3} more" if len(nested) > 3 else "")
        raise ZipRejectedError(
            f"model.py must be at the zip root; found {found} — zip the folder's contents, not the folder"
        )
    wrong_case = [e.parts[0] for e in files if len(e.parts) == 1 and e.parts[0].lower() == "model.py"]
    if wrong_case:
        raise ZipRejectedError(
            f"expected model.py at the zip root, found {wrong_case[0]} — the name is case-sensitive"
        )
    names = ", ".join("/".join(e.parts) for e in files[:5]) + (" ..." if len(files) > 5 else "")
    raise ZipRejectedError(f"no model.py at the zip root (the zip holds: {names or 'only folders'})")


# --- extraction ---------------------------------------------------------------


def _extract_all(
    zf: zipfile.ZipFile, entries: list[_Entry], root: Path, created: list[Path], max_total_bytes: int
) -> None:
    written = 0
    for entry in entries:
        target = root.joinpath(*entry.parts)
        # Belt and braces: the name checks above already exclude escapes.
        if not _is_within(target, root):
            raise ZipRejectedError(f"entry {entry.info.filename!r} would unpack outside the destination folder")
        _make_dirs(target if entry.is_dir else target.parent, root, created)
        if entry.is_dir:
            continue
        written += _extract_file(zf, entry, target, created, max_total_bytes - written)


_CORRUPT = (zipfile.BadZipFile, EOFError, zlib.error, ValueError, NotImplementedError, RuntimeError, OSError)
"""What reading a damaged entry raises (a truncated zip's bad offsets give OSError from seek)."""


def _extract_file(zf: zipfile.ZipFile, entry: _Entry, target: Path, created: list[Path], budget: int) -> int:
    name = entry.info.filename
    declared = entry.info.file_size

    def corrupt(exc: BaseException) -> ZipRejectedError:
        return ZipRejectedError(f"entry {name!r} is corrupt: {exc} — is the zip truncated or damaged?")

    count = 0
    try:
        src = zf.open(entry.info)
    except _CORRUPT as exc:
        raise corrupt(exc) from exc
    with src:
        try:
            dst = open(target, "xb")
        except FileExistsError:
            raise ZipRejectedError(f"entry {name!r}: {target} already exists; not overwriting it") from None
        except OSError as exc:
            raise ZipRejectedError(f"entry {name!r} could not be written to {target}: {exc}") from exc
        created.append(target)
        with dst:
            while True:
                try:
                    chunk = src.read(_CHUNK)
                except _CORRUPT as exc:
                    raise corrupt(exc) from exc
                if not chunk:
                    break
                count += len(chunk)
                if count > declared or count > budget:
                    raise ZipRejectedError(
                        f"entry {name!r} holds more data than its header declares ({declared} bytes) "
                        "— the zip is corrupt or crafted"
                    )
                try:
                    dst.write(chunk)
                except OSError as exc:
                    raise ZipRejectedError(f"entry {name!r} could not be written to {target}: {exc}") from exc
    if count != declared:
        raise ZipRejectedError(f"entry {name!r} holds {count} bytes but its header declares {declared}")
    return count


def _make_dirs(directory: Path, root: Path, created: list[Path]) -> None:
    missing = []
    d = directory
    while d != root and not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except OSError as exc:
            raise ZipRejectedError(f"cannot create folder {d}: {exc}") from exc
        created.append(d)
    if not directory.is_dir():
        raise ZipRejectedError(f"{directory} exists and is not a folder")


def _is_within(target: Path, root: Path) -> bool:
    try:
        target.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _remove_created(created: list[Path]) -> None:
    for p in reversed(created):
        try:
            if p.is_dir() and not p.is_symlink():
                p.rmdir()
            else:
                p.unlink()
        except OSError:
            pass


def _summary(path: Path, entries: list[_Entry]) -> ZipSummary:
    files = [e for e in entries if not e.is_dir]
    return ZipSummary(
        num_files=len(files),
        uncompressed_bytes=sum(e.info.file_size for e in files),
        compressed_bytes=path.stat().st_size,
        names=tuple(str(PurePosixPath(*e.parts)) for e in files),
    )
