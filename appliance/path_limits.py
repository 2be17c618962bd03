"""How long a name and a path may be on the machine: what Linux's file systems hold."""

from __future__ import annotations

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
