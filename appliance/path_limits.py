"""How long a name and a path may be on the machine: what Linux's file systems hold, and how
many symlinks the system follows in one path."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

NAME_MAX = 255  # bytes in one name
PATH_MAX = 4096  # bytes in a whole path, its terminating NUL included (Linux's limits.h)


def byte_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def cut_to_bytes(text: str, limit: int) -> str:
    """``text``, or its longest start of at most ``limit`` bytes in UTF-8 (the file system
    counts bytes); a character is never cut in half."""
    encoded = text.encode("utf-8", "surrogatepass")
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", "ignore")


def too_long(path: str, names: Iterable[str]) -> str | None:
    """Why ``path`` (made of ``names``) could never be a file here, or None. Asked of the
    disk, such a path is an error (ENAMETOOLONG), not "no such file"."""
    if byte_length(path) >= PATH_MAX:  # the kernel counts the NUL after it
        return f"is longer than {PATH_MAX - 1} bytes"
    if any(byte_length(name) > NAME_MAX for name in names):
        return f"has a name longer than {NAME_MAX} bytes"
    return None


def real_path(path: str | os.PathLike[str]) -> str:
    """``os.path.realpath``, refusing (OSError, ELOOP) what the system refuses to follow: a
    chain of more than 40 symlinks, or a loop. Python 3.11 follows a chain by recursion: one
    of a thousand links, which anyone who can write in the download folder can make, raised
    RecursionError out of the file index (its thread ended) and out of every route that met
    it (a 500). The system's answer comes first: past it, Python follows no more links than
    the system did."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise
    try:
        return os.path.realpath(path)
    except RecursionError:  # made longer since, or behind what the system stopped at (x/../)
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), os.fspath(path)) from None
