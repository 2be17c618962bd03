"""Zip downloads: ``POST /api/file/download`` checks the files and hands out a token; ``GET
/api/file/download/{token}`` streams them (and their sidecars) as one zip.

zipstream-ng writes the archive as it is read, file by file in small pieces (constant memory
whatever the size), stored rather than deflated (media does not compress, and a stored zip's
size is known before the first byte: ``Content-Length``, so browsers show progress).

A zip's files are in use (``in_use``) from the moment they are checked to its last byte: a
task's retention or a delete took the files still to come from under it (the zip cut short).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import errors, in_use
from ..http_pacing import ResponseAborted
from . import paths
from .index import FileIndex
from .names import api_form, readable
from .reading import open_regular

if TYPE_CHECKING:
    from zipstream import ZipStream

TOKEN_TTL = 600.0
MAX_TOKENS = 256
# Files of one zip, sidecars included; and of all the zips prepared at once: what the tokens
# hold in memory (a path each) stays bounded whatever is asked (256 zips of 10,000 videos,
# each with its subtitles, NFO and pictures, held near a million paths).
MAX_FILES = 10_000
MAX_HELD = 5 * MAX_FILES
READ_PIECE = 1 << 20
# What the zip is sent in: zipstream-ng yields small pieces (a header, a file's chunk).
SENT_PIECE = 1 << 20


class ZipTokens:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, str, list[str]]] = {}

    def prepare(self, index: FileIndex, body: Any, owner: str) -> dict[str, Any]:
        if not isinstance(body, list) or not body:
            raise errors.invalid("The body must be a JSON array of the files' paths (as the "
                                 "file browser names them), at least one.")
        if len(body) > MAX_FILES:
            raise errors.invalid(f"At most {MAX_FILES} files at once.")
        root = index.root
        asked = [paths.relative(root, path) for path in (
            paths.resolve(root, requested) for requested in body if isinstance(requested, str))
            if path.is_file()]
        # Every file's sidecars in one lookup: one per file sorted its whole folder each
        # time (5,000 paths in a folder of 100,000 names: minutes of CPU).
        sidecars = index.sidecars_of(asked)
        chosen: dict[str, None] = {}
        for rel in asked:
            chosen[rel] = None
            for group in sidecars[rel].values():
                for sidecar in group:
                    chosen[sidecar["file"]] = None
        if not chosen:
            raise errors.invalid("No valid files.")
        if len(chosen) > MAX_FILES:
            raise errors.invalid(f"At most {MAX_FILES} files at once, sidecars included "
                                 f"(these are {len(chosen)}).")
        shown = [api_form(rel) for rel in chosen]
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] > now}
            held = sum(len(v[2]) for v in self._tokens.values())
            if len(self._tokens) >= MAX_TOKENS or held + len(chosen) > MAX_HELD:
                raise errors.AppError("Too many zip downloads prepared; try again in a few "
                                      "minutes.", errors.TOO_MANY_REQUESTS)
            self._tokens[token] = (now + TOKEN_TTL, owner, shown)
        return {"token": token, "files": shown}

    def files(self, token: str, owner: str) -> list[str]:
        with self._lock:
            found = self._tokens.get(token)
        if found is None or found[0] <= time.monotonic() or found[1] != owner:
            raise errors.invalid("Invalid or expired download token.")
        return found[2]


class Zip:
    """A zip being sent (a WSGI body): its files held in use until it ends or is closed."""

    def __init__(self, stream: ZipStream, holding: in_use.Holding) -> None:
        self._stream = stream
        self._holding = holding

    def __len__(self) -> int:
        return len(self._stream)

    def __iter__(self) -> Iterator[bytes]:
        """The archive in pieces of at most SENT_PIECE bytes."""
        buffer = bytearray()
        try:
            for chunk in self._stream:
                buffer += chunk
                if len(buffer) >= SENT_PIECE:
                    yield bytes(buffer)
                    buffer.clear()
            if buffer:
                yield bytes(buffer)
        finally:
            self.close()

    def close(self) -> None:
        self._holding.let_go()


def build(root: Path, files: list[str]) -> tuple[Zip, str]:
    """The archive of ``files`` (relative, as the API names them), each checked again now: a
    file that went away or whose path now leads outside (a symlink put in its place) is left
    out. With it, what its bytes depend on (names, sizes, modification times) for a
    validator. A name that is not UTF-8 is written in the archive as people read it
    (``names.readable``), or as the API names it if another file of the zip has that name."""
    # imported here: only a zip download needs it, and the idle service stays smaller
    from zipstream import ZIP_STORED, ZipStream

    stream = ZipStream(compress_type=ZIP_STORED, sized=True)
    real_root = os.path.realpath(root)
    made_of = []
    keys = []
    entries: set[str] = set()
    for rel in files:
        try:
            path = paths.resolve(root, rel)
        except errors.AppError:
            continue
        if path.is_file() and str(path).startswith(real_root + os.sep):
            info = path.stat()
            # Not add_path: zipstream would open the path again when its turn comes, minutes
            # later behind big files, and read whatever is there by then (a symlink to a
            # secret, a FIFO that blocks the thread for good).
            entry = readable(paths.disk_relative(Path(real_root), rel))
            entry = rel if entry in entries else entry
            entries.add(entry)
            stream.add(_contents(path, root, info), entry, size=info.st_size)
            made_of.append(f"{rel}:{info.st_size}:{info.st_mtime_ns}")
            keys.append(in_use.key_of(info))
    if not made_of:
        raise errors.invalid("No valid files.")
    return Zip(stream, in_use.FILES.holding(keys)), "/".join(made_of)


def _contents(path: Path, root: Path, checked: os.stat_result) -> Iterator[bytes]:
    """The file's bytes when its turn comes, if it is still the file that was checked (the
    zip's sizes are written already): else the download stops, a truncated zip."""
    try:
        opened = open_regular(path, root)
    except errors.AppError as exc:
        raise FileChanged(f"{path}: {exc.message}") from None
    with opened as handle:
        now = os.fstat(handle.fileno())
        if (now.st_dev, now.st_ino, now.st_size) != (
                checked.st_dev, checked.st_ino, checked.st_size):
            raise FileChanged(f"{path} changed while its zip was being sent")
        left = checked.st_size
        while left > 0:
            piece = handle.read(min(READ_PIECE, left))
            if not piece:
                raise FileChanged(f"{path} shrank while its zip was being sent")
            left -= len(piece)
            yield piece


class FileChanged(ResponseAborted):
    """A file of a zip being sent is no longer the one whose size the zip announced."""
