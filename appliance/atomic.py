"""Whole-file writes that a crash or power cut cannot leave half done: a temporary file in
the same folder, flushed to disk, renamed over the old one, and the folder flushed too."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_atomic(
    path: Path, data: str | bytes, *, mode: int = 0o644,
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    """Replace ``path`` with ``data``. Readers see the old file or the new one, never a mix.

    ``before_rename`` gets the finished temporary file (e.g. to adjust its mtime).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    body = data.encode() if isinstance(data, str) else data
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_rename is not None:
            before_rename(temp)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
