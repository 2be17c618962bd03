"""Opening a file of the download folder for reading: what was checked is what is read.

A route checks a path (inside the folder, a regular file) and then opens it; between the two,
whoever can write in the folder can put something else under that name. A FIFO blocks the
opening thread for good (a few such requests take every request thread), a directory or a
vanished file raised a 500, a symlink to /etc/shadow was served. So the file is opened once,
without following a symlink in its last component and without blocking, and judged on what
was opened: ``fstat`` says a regular file, and the kernel's own name for the open file
(``/proc/self/fd``) lies inside the folder -- whatever was swapped along the path.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from pathlib import Path

from .. import errors, in_use

log = logging.getLogger(__name__)

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


def open_regular(path: Path, root: Path) -> io.FileIO:
    """``path`` opened for reading (unbuffered), if it is a regular file inside ``root`` as
    opened; 404 when it is gone or is something else, 403 when it now leads outside."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        # ELOOP: a symlink put in its place; ENXIO: a socket; the rest: gone, or never was.
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENOENT, errno.ENOTDIR,
                         errno.ENAMETOOLONG, errno.EACCES, errno.EPERM):
            raise _not_a_file(path) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_a_file(path)
        opened = os.readlink(f"/proc/self/fd/{fd}")
        real_root = os.path.realpath(root)
        if not opened.startswith(real_root + os.sep):
            log.warning("refusing %s: once opened it is %s, outside %s", path, opened,
                        real_root)
            raise errors.AppError("The path leads outside the download folder.",
                                  errors.FORBIDDEN)
        handle = _Held(fd, "rb", closefd=True)
        handle.name = str(path)  # for messages, and what open() would have given
        return handle
    except BaseException:
        os.close(fd)
        raise


class _Held(io.FileIO):
    """A file opened for a person: in use (``in_use.FILES``) until it is closed, and a
    while after, so that a task's retention does not delete it from under them."""

    def __init__(self, fd: int, mode: str, closefd: bool) -> None:
        super().__init__(fd, mode, closefd=closefd)
        self._key: in_use.Key | None = in_use.key_of(os.fstat(fd))
        in_use.FILES.opened(self._key)

    def close(self) -> None:
        key, self._key = self._key, None
        try:
            super().close()
        finally:
            if key is not None:
                in_use.FILES.closed(key)


def _not_a_file(path: Path) -> errors.AppError:
    return errors.not_found(f"'{path.name}' is not a file (any more).")
