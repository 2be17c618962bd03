"""Paths from requests, resolved inside the download folder or refused.

A path a client sends is relative to the download folder ("/" and "" are the folder itself; a
leading "/" is the folder's root, never the machine's). Refused before anything touches the
disk: NUL bytes and other control characters, ``..`` components, names longer than 255 bytes
and paths longer than 4096 (the system's limits), checked on the decoded
path (a slash or backslash that arrived percent-encoded, ``%2F``/``%5C``, is a separator like
any other: clients that encode a whole path with encodeURIComponent work, and ``..%2F`` is
still ``..``). Then the path is resolved (symlinks followed) and must still lie inside the folder: a
symlink that leads out is refused (403) and never followed; one that leads to a name the API
cannot write back (a control character or a backslash: ``index.reachable``) is 404, as the
listing leaves such names out (every answer that named it failed). A component that is not
UTF-8 is named by its bytes, percent-encoded (``caf%E9.mp4``), in JSON as in URLs: read
back by ``names.disk_part``, its bytes checked on their final form. A name
given for a new entry (a rename, a new folder) is checked in its final form: one component,
not ``.``/``..``, not hidden, no control characters, at most 255 bytes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import errors
from ..path_limits import NAME_MAX, byte_length, real_path, too_long
from .index import reachable
from .names import disk_part, shortest, two_entries

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def outside() -> errors.AppError:
    return errors.AppError("The path leads outside the download folder.", errors.FORBIDDEN)


def relative_parts(requested: str) -> list[str]:
    """The components of a request path, or 400 for a path that may not be asked for."""
    if _CONTROL.search(requested):
        raise errors.invalid("The path contains control characters (a NUL byte?).")
    parts = [p for p in requested.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise errors.invalid("The path may not contain '..'.")
    if problem := too_long("/".join(shortest(p) for p in parts), map(shortest, parts)):
        raise errors.invalid(f"The path {problem}.")
    return parts


def canonical(requested: str) -> str:
    """The normal form of a request path: components joined by one slash, no leading one."""
    return "/".join(relative_parts(requested))


def resolve(root: Path, requested: str) -> Path:
    """The real path that ``requested`` (as the API writes it, or with the bytes a URL sent
    as surrogate escapes) names inside ``root`` (which need not exist yet). 400 for a
    refused form, 403 when it resolves outside the folder, 409 for a name that could be
    either of two entries (files.names)."""
    real_root = Path(os.path.realpath(root))
    conflicts: list[str] = []
    try:
        target = Path(real_path(real_root / disk_relative(real_root, requested, conflicts)))
    except OSError:
        raise errors.not_found(f"'{requested}' leads through more links than the system "
                               "follows (or a loop of links).") from None
    if target != real_root and not target.is_relative_to(real_root):
        raise outside()
    if conflicts:
        raise two_entries(conflicts[0])
    if not reachable(str(target)[len(str(real_root)):]):
        raise errors.not_found(f"'{requested}' leads to a name the API cannot name (with a "
                               "control character or a backslash, or bytes of no text): "
                               "rename it on the disk to reach it.")
    return target


def disk_relative(real_root: Path, requested: str, conflicts: list[str] | None = None) -> str:
    """``requested`` (as the API writes it) as its entries are named on the disk, relative to
    ``real_root``, symlinks not followed: each component read by ``names.disk_part``."""
    on_disk = str(real_root)
    for part in relative_parts(requested):
        on_disk = os.path.join(on_disk, disk_part(on_disk, part, conflicts))
    return on_disk[len(str(real_root)) + 1:]


def stored(real_root: Path, filename: str) -> str:
    """A relative path as the API writes it and the history keeps it (an item's file the
    browser moved into a folder whose name is no UTF-8: ``F%E9/x.mp4``), as its entries are
    named on the disk; 400 for what no request could name, 409 for a component that names
    two entries (which one is the item's cannot be told: neither is taken for it)."""
    conflicts: list[str] = []
    on_disk = disk_relative(real_root, filename, conflicts)
    if conflicts:
        raise two_entries(conflicts[0])
    return on_disk


def relative(root: Path, path: Path) -> str:
    """``path`` (real, inside ``root``) as the API names it: relative, with forward slashes."""
    rel = path.relative_to(os.path.realpath(root)).as_posix()
    return "" if rel == "." else rel


def check_name(name: object, what: str = "name") -> str:
    """A name for a new entry, checked in its final form; 400 otherwise."""
    if not isinstance(name, str) or not name.strip():
        raise errors.invalid(f"{what} is required and must be a non-empty string.")
    if _CONTROL.search(name):
        raise errors.invalid(f"{what} may not contain control characters.")
    if "/" in name or "\\" in name:
        raise errors.invalid(f"{what} must be a single name, without slashes.")
    if name in (".", "..") or name.startswith("."):
        raise errors.invalid(f"{what} may not be '.', '..' or start with a dot.")
    if byte_length(name) > NAME_MAX:
        raise errors.invalid(f"{what} is longer than {NAME_MAX} bytes.")
    if name != name.strip():
        raise errors.invalid(f"{what} may not begin or end with spaces.")
    return name


def check_subpath(value: object, what: str) -> list[str]:
    """A relative folder path for a new folder: every component a valid name."""
    if not isinstance(value, str) or not value.strip("/ "):
        raise errors.invalid(f"{what} is required and must be a non-empty string.")
    return [check_name(part, what) for part in value.strip("/").split("/") if part]
