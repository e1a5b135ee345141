"""Writing a file atomically: a temporary file of its own beside it, fsynced, renamed over it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

TMP_SUFFIX = ".tmp"


def is_temporary_of(path: Path, name: str) -> bool:
    """Whether `path` is named as atomic_write names a temporary file for a file called `name`:
    `<name>.<random>.tmp` (or `<name>.tmp`, as earlier versions did)."""
    if not (path.name.startswith(name) and path.name.endswith(TMP_SUFFIX)):
        return False
    middle = path.name[len(name):len(path.name) - len(TMP_SUFFIX)]
    return middle == "" or (len(middle) > 1 and middle[0] == "." and "." not in middle[1:])


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` for a new temporary file beside `path`, fsync it, rename it over `path`.

    Each call has its own temporary file (`<name>.<random>.tmp`), so two writers of one path
    never share one; it is removed on any error. `path` is always either the old file or the
    new one, complete; a kill leaves at worst a stale `.tmp` file. An OSError names `path`.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=TMP_SUFFIX)
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename != str(path):
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc  # `path`, not the temporary
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
