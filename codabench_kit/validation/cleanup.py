"""Remove validate's temporary folders, whatever model code (or the zip) left in them.

:func:`remove_tree` removes a folder without recursion and without long paths: it walks
down with directory file descriptors (``openat``), so a chain of thousands of nested
folders neither overflows the stack (``shutil.rmtree`` raised RecursionError) nor the
path length limit, and it restores the owner's permissions on each folder as it goes
(model code may ``chmod 000`` a folder or make its files read-only). Symbolic links are
removed, never followed. It never raises.

:func:`make_workdir` names each folder ``cbk-validate-<pid>-<random>`` and
:func:`sweep_stale` removes those whose process is gone (a cbk killed by SIGKILL cannot
clean up after itself), on the next run.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

PREFIX = "cbk-validate-"
_STALE = re.compile(re.escape(PREFIX) + r"(\d+)-")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def make_workdir() -> Path:
    """A fresh private folder in tempfile's folder, named with this process's id."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def sweep_stale(parent: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the ``cbk-validate-<pid>-*`` folders of ``parent`` (tempfile's folder) that
    belong to this user and whose pid is no longer running; returns those removed."""
    parent = Path(parent if parent is not None else tempfile.gettempdir())
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        match = _STALE.match(name)
        path = parent / name
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            remove_tree(path)
            removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:  # a zombie is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_tree(path: str | os.PathLike[str]) -> bool:
    """Remove ``path`` and everything under it; True when it is gone. Never raises."""
    path = os.fspath(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(path)
            return True
        _chmod_dir(path)
        _empty(path)
        os.rmdir(path)
    except OSError:
        pass
    return not os.path.lexists(path)


def _chmod_dir(path: str, dir_fd: int | None = None) -> None:
    try:
        os.chmod(path, 0o700, dir_fd=dir_fd)
    except OSError:
        pass


def _clear(fd: int) -> list[str]:
    """Unlink every non-folder in the folder ``fd``; returns its sub-folders (made 0o700)."""
    folders = []
    with os.scandir(fd) as entries:
        items = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
    for name, is_dir in items:
        if is_dir:
            _chmod_dir(name, fd)
            folders.append(name)
        else:
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass
    return folders


def _empty(path: str) -> None:
    """Empty the folder ``path`` depth first, holding one descriptor at a time."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        stack: list[tuple[str, list[str]]] = []  # (name in parent, parent's folders still to visit)
        pending = _clear(fd)
        while True:
            if pending:
                name = pending.pop()
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                stack.append((name, pending))
                os.close(fd)
                fd = child
                pending = _clear(fd)
            elif stack:
                name, pending = stack.pop()
                parent = os.open("..", _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = parent
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError:
                    pass
            else:
                return
    finally:
        os.close(fd)
