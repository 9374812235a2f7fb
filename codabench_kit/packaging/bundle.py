"""Writing the submission zip: deterministic entries, atomic publication, no overwrite."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

from codabench_kit.errors import OutputExistsError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = stat.S_IFREG | 0o644
"""Every entry: a regular file, rw-r--r--, whatever the mode of the file it came from."""
UNIX = 3
"""The "made by" system of every entry, so the zip is the same when built on Windows."""


def write_zip(path: Path | BinaryIO, files: dict[str, Path | bytes]) -> None:
    """Write ``{archive name: file path or bytes}`` with sorted names, a fixed date, mode
    and system, and no folder entries, so equal inputs give byte-identical zips
    (with the same zlib). ``path`` may be a binary file object (an ``.npz`` in memory)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            content = files[name]
            data = content if isinstance(content, bytes) else Path(content).read_bytes()
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = UNIX
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, data)


def tree_entries(root: Path, prefix: str) -> dict[str, Path]:
    """Every file under ``root`` as ``{prefix/relative/path: path}``."""
    return {f"{prefix}/{p.relative_to(root).as_posix()}": p
            for p in sorted(root.rglob("*")) if p.is_file()}


def ensure_absent(path: Path) -> None:
    if path.exists():
        raise OutputExistsError(
            f"{path} already exists; cbk never overwrites outputs. Choose another path "
            f"or remove it"
        )


def publish(temporary: Path, final: Path) -> None:
    """Move a finished file into place atomically, refusing to replace an existing one."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise OutputExistsError(
            f"{final} appeared while cbk was building; it was left as it is and the new "
            f"result discarded"
        ) from None
    except OSError:  # a file system without hard links
        ensure_absent(final)
        os.replace(temporary, final)
        return
    temporary.unlink()


def write_new_file(path: Path, write: Callable[[Path], None]) -> Path:
    """Create ``path`` by calling ``write`` on a temporary file beside it, then publish it.

    Refuses an existing ``path`` before writing anything and leaves no partial file,
    whatever ``write`` does. The temporary name keeps the suffix, so writers that infer
    the format from it (PIL, numpy) work."""
    path = Path(path)
    ensure_absent(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(partial)
        publish(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_npz_atomically(path: Path, arrays: dict) -> None:
    """Write ``arrays`` to ``path`` (a compressed .npz) via a temporary file; never
    replaces an existing file."""
    import numpy as np

    write_new_file(path, lambda partial: np.savez_compressed(partial, **arrays))
