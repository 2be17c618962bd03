"""Whole-file writes that a crash or power cut cannot leave half done: a temporary file in
the same folder, flushed to disk, renamed over the old one, and the folder flushed too."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FOLDER = 0o700


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_folder(path: Path) -> None:
    """``path`` made (with its parents) when missing, and open to its owner only: the config
    folder holds the database (cookies, notification credentials), its backups and the auth
    file. The unit's ``UMask=0027`` is for the media that Jellyfin's or Samba's group reads,
    and a folder made under it was the group's to read too (and, run by hand under umask
    022, everyone's on the box)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    mode = path.stat().st_mode & 0o777
    if not mode & ~PRIVATE_FOLDER:
        return
    try:
        path.chmod(PRIVATE_FOLDER)
        reason = "its file system keeps its modes"  # (FAT, a share: chmod says nothing)
        closed = not path.stat().st_mode & 0o777 & ~PRIVATE_FOLDER
    except OSError as exc:  # another user's folder: said, not fatal
        reason, closed = exc.strerror, False
    if closed:
        log.info("%s could be read by others (mode %o): now %o, its owner's only", path,
                 mode, PRIVATE_FOLDER)
    else:
        log.warning("%s can be read by others (mode %o) and cannot be closed: %s", path,
                    mode, reason)


def _temp_name(name: str) -> str:
    return f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view):]


def replace_with(path: Path, fill: Callable[[Path], None]) -> None:
    """Replace ``path`` with the file that ``fill`` writes at the temporary path it is given.
    Readers see the old file or the new one, never a mix; if ``fill`` fails, nothing changes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(_temp_name(path.name))
    try:
        fill(temp)
        fsync_path(temp)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_path(path.parent)


def write_atomic(
    path: Path, data: str | bytes, *, mode: int = 0o644,
    before_rename: Callable[[Path], None] | None = None,
) -> None:
    """Replace ``path`` with ``data``. Readers see the old file or the new one, never a mix.

    ``before_rename`` gets the finished temporary file (e.g. to adjust its mtime).
    """
    body = data.encode() if isinstance(data, str) else data

    def fill(temp: Path) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            write_all(fd, body)
        finally:
            os.close(fd)
        if before_rename is not None:
            before_rename(temp)

    replace_with(path, fill)


def write_in(folder: int, name: str, data: str | bytes, *, mode: int = 0o644) -> None:
    """``write_atomic`` of the file ``name`` in the open ``folder``: in the folder a check
    found, whatever its path has become since (a folder of it swapped for a link)."""
    body = data.encode() if isinstance(data, str) else data
    temp = _temp_name(name)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode,
                 dir_fd=folder)
    try:
        try:
            write_all(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=folder)
        raise
    os.fsync(folder)
