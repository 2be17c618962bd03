"""Download archives in yt-dlp's own format: one ``<extractor> <id>`` per line.

The engine keeps them itself (yt-dlp never gets ``--download-archive``) so that many downloads
finishing at once cannot lose or duplicate a line: every change happens under a per-file lock
(a thread lock and ``flock`` for other processes). An add appends its new lines, as yt-dlp
does, and keeps what was read with them; a removal writes the file whole to a temporary file
that replaces the old one. Reads are cached and re-read when the file changes on disk.

Owner: ``Archives``, one per engine; each file's lock owns that file.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import dataclasses
import fcntl
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..atomic import fsync_path, write_all, write_atomic


def entry_line(entry: str) -> str:
    """An entry as the file holds it: its words joined by single spaces. An id may have a
    line break or a run of spaces (the generic extractor's is a file's name from the URL);
    it is stored, and so looked up, as this line."""
    return " ".join(entry.split())


def archive_id(extractor: str, video_id: str, url: str) -> str | None:
    """The line for an item at ``url``: yt-dlp's (``_make_archive_id``), and for its generic
    extractor the address as well. That one's id is only a file's name from the URL, the
    same for every HLS stream's ``index.m3u8`` and every episode of a podcast whose files
    are all ``media.mp3``: each after the first was skipped, "already downloaded". The
    address goes without its user, query and fragment: the same file asked for with
    another signature is one, and the archive holds no password."""
    if not extractor or not str(video_id or "").strip():
        return None
    if extractor.lower() == "generic" and url:
        return entry_line(f"generic {video_id} {_address(url)}")
    return entry_line(f"{extractor.lower()} {video_id}")


def video_id_of(line: str) -> str:
    """The id an archive line holds: after the extractor, before a generic line's address."""
    rest = line.split(" ", 1)[-1]
    if line.startswith("generic ") and "://" in rest.rsplit(" ", 1)[-1]:
        return rest.rsplit(" ", 1)[0]
    return rest


def _address(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
    except ValueError:  # (a port out of range, a bracket unclosed: the URL as it is)
        return url.split("#")[0].split("?")[0]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _IdPlaces:
    """The places of an archive's lines by their id, for look-ups by id: the ids' hashes
    sorted, each with its line's place (16 bytes a line: a dict of the ids took 15 MiB at
    80,000 lines, kept as long as the file is)."""

    def __init__(self, lines: list[str], hashes: array.array[int] | None = None,
                 places: array.array[int] | None = None) -> None:
        if hashes is None or places is None:
            found = [hash(video_id_of(line)) for line in lines]
            order = sorted(range(len(lines)), key=found.__getitem__)
            hashes = array.array("q", (found[place] for place in order))
            places = array.array("q", order)
        self._hashes, self._places, self._lines = hashes, places, lines

    def with_lines(self, lines: list[str]) -> _IdPlaces:
        """The places in ``lines``: these lines, then more (an add). A copy, the new lines'
        places put in (a look-up may be reading these)."""
        hashes, places = array.array("q", self._hashes), array.array("q", self._places)
        for place in range(len(self._lines), len(lines)):
            value = hash(video_id_of(lines[place]))
            at = bisect.bisect_right(hashes, value)
            hashes.insert(at, value)
            places.insert(at, place)
        return _IdPlaces(lines, hashes, places)

    def of(self, video_id: str) -> Iterator[int]:
        """The places of the lines whose id is ``video_id``."""
        wanted = hash(video_id)
        at = bisect.bisect_left(self._hashes, wanted)
        while at < len(self._hashes) and self._hashes[at] == wanted:
            place = self._places[at]
            if video_id_of(self._lines[place]) == video_id:  # (not another id's hash)
                yield place
            at += 1


# Lines added since the archive's set was made, kept beside it: a set of 80,000 lines made
# again for each add took 5-25 ms. Past this many they go into it.
RECENT = 1024


@dataclasses.dataclass
class _Read:
    """An archive as read: its stat key, its lines, the same as a set (``members``, and the
    lines added since, ``recent``), and, from the first look-up by id, the places of its
    lines by their id."""

    key: tuple[int, int, int]
    lines: list[str]
    members: frozenset[str]
    recent: frozenset[str] = frozenset()
    by_id: _IdPlaces | None = None

    def has(self, line: str) -> bool:
        return line in self.members or line in self.recent


class Archives:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, threading.Lock] = {}
        self._cache: dict[Path, _Read] = {}

    def _lock(self, path: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())

    @contextlib.contextmanager
    def _exclusive(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(path), open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _key(path: Path) -> tuple[int, int, int] | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _cached(self, path: Path) -> _Read:
        key = self._key(path)
        if key is None:
            return _Read((0, 0, 0), [], frozenset())
        cached = self._cache.get(path)
        if cached is not None and cached.key == key:
            return cached
        # yt-dlp writes UTF-8; a byte that is not (an archive brought from elsewhere) made
        # every read fail, and with it each download the archive decides on. Such a line
        # matches no id either way.
        text = path.read_text(encoding="utf-8", errors="replace")
        # Read as entries are looked up: a line yt-dlp wrote keeps an id's run of spaces.
        lines = [line for line in map(entry_line, text.splitlines()) if line]
        read = self._cache[path] = _Read(key, lines, frozenset(lines))
        return read

    def read(self, path: Path) -> list[str]:
        """The archive's lines, in file order (cached until the file changes)."""
        return self._cached(path).lines

    def find(self, path: Path, wanted: Iterable[str]) -> list[str]:
        """The archive's lines that are one of ``wanted`` or whose id is, in file order.
        Found by id: each look-up read every line's id (0.1 s at 80,000 lines); the places
        by id are made once, kept with the lines (an add puts its own in)."""
        read = self._cached(path)
        if read.by_id is None:
            read.by_id = _IdPlaces(read.lines)
        places: set[int] = set()
        for entry in wanted:
            places.update(read.by_id.of(entry))
            places.update(p for p in read.by_id.of(video_id_of(entry)) if read.lines[p] == entry)
        return [read.lines[p] for p in sorted(places)]

    def members(self, path: Path) -> frozenset[str]:
        """The archive's lines as a set, cached with them: an archive shared by 500 tasks
        holds tens of thousands, and a set built per lookup (each extraction, each task
        run) was most of a run's time in the service (bench/tasks_scale.py). The lines added
        since it was made go into it now (a task run asks; an extraction, ``contains``,
        need not)."""
        read = self._cached(path)
        if not read.recent:
            return read.members
        merged = read.members | read.recent
        if self._cache.get(path) is read:  # (not replaced by an add meanwhile)
            self._cache[path] = dataclasses.replace(read, members=merged, recent=frozenset())
        return merged

    def contains(self, path: Path, entry: str) -> bool:
        return self._cached(path).has(entry_line(entry))

    def _write(self, path: Path, lines: list[str]) -> None:
        write_atomic(path, "".join(f"{line}\n" for line in lines))

    def add(self, path: Path, entries: Iterable[str]) -> list[str]:
        """Append the entries not yet present; returns those added. Only the new lines are
        written, and what was read is kept with them: each finished download rewrote the
        whole file (3 MB at 80,000 lines, flushed to the disk) and the next lookup read it
        all again."""
        with self._exclusive(path):
            read = self._cached(path)
            added = list(dict.fromkeys(entry for entry in map(entry_line, entries)
                                       if entry and not read.has(entry)))
            if added:
                self._append(path, added)
                key = self._key(path)
                if key is not None:
                    lines, members, recent = read.lines + added, read.members, read.recent
                    recent = recent.union(added)
                    if len(recent) > RECENT:
                        members, recent = members | recent, frozenset()
                    self._cache[path] = _Read(
                        key, lines, members, recent,
                        None if read.by_id is None else read.by_id.with_lines(lines))
            return added

    @staticmethod
    def _append(path: Path, lines: list[str]) -> None:
        """``lines`` at the end of the file, flushed to the disk. A last line cut short (a
        power cut during an append, a file another program wrote) gets its line break
        first: the new entry glued to it would match neither."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        size = 0
        try:
            size = os.fstat(fd).st_size
            open_end = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            body = ("\n" if open_end else "") + "".join(f"{line}\n" for line in lines)
            write_all(fd, body.encode())
            os.fsync(fd)
        except OSError:
            # A disk that took part of the lines (full): a line cut short would be an entry
            # no one added. The file goes back to what it was (an empty one: to none).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                if size == 0:
                    path.unlink()
            raise
        finally:
            os.close(fd)
        if size == 0:  # (a new file: its name too)
            fsync_path(path.parent)

    def remove(self, path: Path, entries: Iterable[str]) -> list[str]:
        """Drop the entries; returns those that were present."""
        with self._exclusive(path):
            lines = self.read(path)
            gone = set(map(entry_line, entries)) & set(lines)
            if gone:
                self._write(path, [line for line in lines if line not in gone])
            return sorted(gone)
