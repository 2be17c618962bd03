"""The file index: every entry of the download folder, in memory, by folder.

Memory rather than a SQLite table (bench/files_scale.py measures both): a listing is a dict
lookup and a slice of a sorted view cached per folder and order, so page 1 and the last page
cost the same; an entry costs ~200 bytes (20 MB at 100,000 files), and the index is rebuilt
from the disk at each start anyway (the disk is the truth; a table would be a second copy to
keep in step across restarts).

Hidden entries (a leading dot) and partial-download artefacts (``.part``, ``.ytdl``,
``.temp``) are not indexed. Symlinks are indexed with what they point to when that lies
inside the folder, and left out when it does not (or is broken); the walk never descends
through a symlink (the real folder is indexed where it is).

A name that is not valid UTF-8 (Latin-1 bytes an old tool wrote; Python reads its undecodable
bytes as surrogate escapes) is indexed as it is on the disk and named in every answer by its
bytes, percent-encoded (files.names: ``caf%E9.mp4``). One the API cannot name at all (a control
character or a backslash, which no request path can hold; bytes that are UTF-8's overlong
forms) is not indexed, nor is anything below a folder so named, nor a symlink leading to one.
Each such name is logged once, bytes escaped, with the folder it lies in: it must be renamed
on the disk to be seen.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import os
import re
import stat
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .. import errors, kinds
from ..engine.file_moves import MOVING_PREFIX, left_over
from ..path_limits import real_path
from .names import api_form, is_text, reachable_bytes, readable
from .trees import open_folder

log = logging.getLogger(__name__)

SKIPPED_SUFFIXES = (".part", ".ytdl", ".temp")
SORTS = ("name", "size", "date", "type")


@dataclasses.dataclass(slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float
    ctime: float
    is_symlink: bool

    def to_dict(self, folder: str) -> dict[str, Any]:
        kind = kinds.content_type(self.name, self.is_dir)
        return {
            "type": "dir" if self.is_dir else "file",
            "content_type": kind,
            "name": api_form(self.name),
            "path": api_form(f"{folder}/{self.name}" if folder else self.name),
            "size": self.size,
            "mime": kinds.mime_type(self.name, self.is_dir),
            "mtime": _iso(self.mtime),
            "ctime": _iso(self.ctime),
            "is_dir": self.is_dir,
            "is_file": not self.is_dir,
            "is_symlink": self.is_symlink,
        }


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def indexed_name(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(SKIPPED_SUFFIXES)


# What a request path cannot hold as part of a name: control characters are refused, a
# backslash is a separator (files.paths). Listed, such a name led nowhere (400, or 302 to
# another path and 404).
_UNREACHABLE = re.compile(r"[\x00-\x1f\x7f\\]")


def nameable(name: str) -> bool:
    """Whether JSON and URLs carry a name (or path) read from the disk as it is: valid UTF-8,
    without a control character or a backslash (so a request can)."""
    return _UNREACHABLE.search(name) is None and is_text(name)


def reachable(name: str) -> bool:
    """Whether the API can name a name (or path) read from the disk: as it is (``nameable``),
    or, not UTF-8, by its bytes percent-encoded (files.names)."""
    return all(nameable(part) or (not is_text(part) and reachable_bytes(os.fsencode(part)))
               for part in name.split("/"))


def shown(name: str) -> str:
    """A name for the log: its bytes escaped when it is not UTF-8."""
    return name if nameable(name) else repr(os.fsencode(name))


def _remove_if_left_over(folder: str, name: str, real_root: str) -> None:
    """Remove what a crash left of a move into ``folder`` (engine.file_moves); the walks of
    start-up and of each rescan come by every one. Judged and removed in the folder as
    opened: a part of its path swapped for a link meanwhile must not take a file of that
    name wherever the link leads."""
    path = os.path.join(folder, name)
    try:
        fd = open_folder(Path(folder), Path(real_root))
    except (OSError, errors.AppError) as exc:
        log.debug("cannot open %s: %s", shown(folder), exc)
        return
    try:
        status = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not left_over(name, status, time.time()):
            return
        os.unlink(name, dir_fd=fd)
    except OSError as exc:
        log.debug("cannot remove %s: %s", shown(path), exc)
        return
    finally:
        os.close(fd)
    log.warning("removed %s (%d bytes): the copy of a download into the folder that a crash "
                "or a power cut stopped part way; that download was retried or deleted since",
                shown(path), status.st_size)


def make_entry(path: str, name: str, real_root: str) -> Entry | None:
    """The entry for ``path`` (absolute), or None when it is gone or must not be listed."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    link = stat.S_ISLNK(info.st_mode)
    if link:
        try:
            target = real_path(path)
        except OSError:  # a chain of links the system does not follow: it leads nowhere
            return None
        if not (target == real_root or target.startswith(real_root + os.sep)):
            return None
        if not reachable(target):
            return None  # the routes would answer with the target's name, which none can carry
        try:
            info = os.stat(path)
        except OSError:
            return None
    is_dir = stat.S_ISDIR(info.st_mode)
    if not is_dir and not stat.S_ISREG(info.st_mode):
        return None  # sockets, fifos, devices: nothing to list or serve
    return Entry(name, is_dir, 0 if is_dir else info.st_size, info.st_mtime, info.st_ctime, link)


@dataclasses.dataclass
class Page:
    entries: list[dict[str, Any]]
    total: int


class FileIndex:
    """The entries of ``root``, kept current by ``watcher.FolderWatcher`` (or rescans)."""

    def __init__(self, root: Path, on_change: Callable[[list[str]], None] | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self._real_root = str(self.root)
        self._lock = threading.RLock()
        self._dirs: dict[str, dict[str, Entry]] = {}
        # Sorted views per folder: {folder: {(sort_by, descending): (entries, folded names)}}
        self._views: dict[str, dict[tuple[str, bool], tuple[list[Entry], list[str] | None]]] = {}
        self.ready = threading.Event()
        self.on_change = on_change
        # Names not valid UTF-8 already logged (relative paths, escaped): once each, not at
        # every rescan.
        self._unnamed: set[str] = set()

    # --- building -------------------------------------------------------------------------

    def _walk(self, folder: str) -> dict[str, dict[str, Entry]]:
        """Every folder under ``folder`` (relative), read from the disk."""
        found: dict[str, dict[str, Entry]] = {}
        pending = [folder]
        while pending:
            current = pending.pop()
            base = os.path.join(self._real_root, current) if current else self._real_root
            entries: dict[str, Entry] = {}
            try:
                with os.scandir(base) as it:
                    for item in it:
                        if item.name.startswith(MOVING_PREFIX):
                            _remove_if_left_over(base, item.name, self._real_root)
                        if not indexed_name(item.name) or not self._nameable(current, item.name):
                            continue
                        entry = make_entry(item.path, item.name, self._real_root)
                        if entry is None:
                            continue
                        entries[item.name] = entry
                        if entry.is_dir and not entry.is_symlink:
                            pending.append(f"{current}/{item.name}" if current else item.name)
            except OSError as exc:
                log.debug("cannot read %s: %s", base, exc)
                continue
            found[current] = entries
        return found

    def rescan(self) -> None:
        """Read the whole folder again and swap it in at once; the folders that differ from
        what was indexed are announced (a rescan finds what lost events did not tell)."""
        fresh = self._walk("")
        with self._lock:
            old, self._dirs = self._dirs, fresh
            self._views.clear()
        first = not self.ready.is_set()
        self.ready.set()
        if first or self.on_change is None:
            return
        changed = sorted(f for f in old.keys() | fresh.keys() if old.get(f) != fresh.get(f))
        if changed:
            self.on_change(changed)

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._dirs.values())

    # --- keeping current ------------------------------------------------------------------

    def refresh(self, paths: Iterable[str]) -> list[str]:
        """Bring the entries of ``paths`` (absolute; changed, created or gone) up to date, in
        one go; returns the folders whose listing changed."""
        changed: set[str] = set()
        with self._lock:
            for path in sorted(set(paths), key=len):
                rel = self._relative(path)
                if rel is not None and rel:
                    self._refresh_one(rel, changed)
            for folder in changed:
                self._views.pop(folder, None)
        if changed and self.on_change is not None:
            self.on_change(sorted(changed))
        return sorted(changed)

    def _relative(self, path: str) -> str | None:
        path = os.path.normpath(path)
        if path == self._real_root:
            return ""
        if not path.startswith(self._real_root + os.sep):
            return None
        rel = path[len(self._real_root) + 1:]
        parts = rel.split(os.sep)
        if not all(indexed_name(p) for p in parts):
            return None
        for depth, part in enumerate(parts):
            if not self._nameable("/".join(parts[:depth]), part):
                return None  # a watcher's event for a name the index leaves out
        return rel

    def _nameable(self, folder: str, name: str) -> bool:
        """Whether ``name`` in ``folder`` (relative) can be indexed; a name the API cannot name
        is logged the first time it is met."""
        if reachable(name):
            return True
        key = f"{folder}/{shown(name)}"
        with self._lock:
            if key in self._unnamed:
                return False
            self._unnamed.add(key)
        log.warning("%s holds a name the API cannot name (with a control character or a "
                    "backslash, or bytes of no text: overlong UTF-8), %s: it is left out of "
                    "the file browser and the API (with all it holds, if a folder); rename it "
                    "on the disk to see it",
                    os.path.join(self._real_root, folder), shown(name))
        return False

    def _refresh_one(self, rel: str, changed: set[str]) -> None:
        folder, _, name = rel.rpartition("/")
        entry = make_entry(os.path.join(self._real_root, rel), name, self._real_root)
        if folder not in self._dirs:
            if entry is None:
                return  # its folder is gone or unknown: nothing here to drop
            if folder:
                # Its first folder the index does not know, read with all below it: not one
                # call per level up (a path a thousand folders deep overflowed the stack).
                unknown = folder
                while (parent := unknown.rpartition("/")[0]) and parent not in self._dirs:
                    unknown = parent
                self._refresh_one(unknown, changed)
            if folder not in self._dirs:
                return
        entries = self._dirs[folder]
        old = entries.get(name)
        if entry is None:
            if old is not None:
                del entries[name]
                changed.add(folder)
            if old is None or old.is_dir:
                self._drop_tree(rel, changed)
            return
        if old != entry:
            entries[name] = entry
            changed.add(folder)
        if entry.is_dir and not entry.is_symlink and rel not in self._dirs:
            # A new folder: what landed in it before its watch was set is read now.
            for sub, sub_entries in self._walk(rel).items():
                self._dirs[sub] = sub_entries
                changed.add(sub)
        elif (old is not None and old.is_dir and not old.is_symlink
              and (not entry.is_dir or entry.is_symlink)):
            self._drop_tree(rel, changed)

    def _drop_tree(self, rel: str, changed: set[str]) -> None:
        prefix = rel + "/"
        for folder in [f for f in self._dirs if f == rel or f.startswith(prefix)]:
            del self._dirs[folder]
            self._views.pop(folder, None)
            changed.add(folder)

    # --- reading --------------------------------------------------------------------------

    def has_folder(self, folder: str) -> bool:
        with self._lock:
            return folder in self._dirs

    def names(self, folder: str) -> list[str]:
        """The names in ``folder`` (relative), from the index, or the disk before it is ready."""
        if not self.ready.is_set():
            return list(self._walk_one(folder))
        with self._lock:
            return list(self._dirs.get(folder, {}))

    def _walk_one(self, folder: str) -> dict[str, Entry]:
        base = os.path.join(self._real_root, folder) if folder else self._real_root
        entries: dict[str, Entry] = {}
        try:
            with os.scandir(base) as it:
                for item in it:
                    if indexed_name(item.name) and self._nameable(folder, item.name):
                        entry = make_entry(item.path, item.name, self._real_root)
                        if entry is not None:
                            entries[item.name] = entry
        except OSError:
            pass
        return entries

    def _view(self, folder: str, sort_by: str, descending: bool, folded: bool
              ) -> tuple[list[Entry], list[str] | None]:
        views = self._views.setdefault(folder, {})
        key = (sort_by, descending)
        view = views.get(key)
        if view is None:
            view = (_sorted(list(self._dirs.get(folder, {}).values()), sort_by, descending), None)
            views[key] = view
        if folded and view[1] is None:
            view = (view[0], [_searched(e.name) for e in view[0]])
            views[key] = view
        return view

    def page(self, folder: str, *, offset: int, limit: int, sort_by: str = "name",
             descending: bool = False, search: str = "") -> Page:
        """One page of ``folder``: folders first, then files, in the order asked for; ties
        broken by name, so pages are stable."""
        needle = folded(search)
        if not self.ready.is_set():
            entries = _sorted(list(self._walk_one(folder).values()), sort_by, descending)
            if needle:
                entries = [e for e in entries if needle in _searched(e.name)]
        else:
            with self._lock:
                entries, names = self._view(folder, sort_by, descending, bool(needle))
            if needle and names is not None:
                entries = [e for e, n in zip(entries, names, strict=True) if needle in n]
        chosen = entries[offset:offset + limit]
        return Page([e.to_dict(folder) for e in chosen], len(entries))

    def sidecars(self, rel: str) -> dict[str, list[dict[str, Any]]]:
        return self.sidecars_of([rel])[rel]

    def sidecars_of(self, rels: Iterable[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The sidecars of many files at once (a page of history), by relative path, theirs
        as ``rels`` are: as on the disk (``api_sidecars`` names them as JSON does; a
        URL names them by their bytes): each folder's names are sorted once and a file's own
        (``<stem>.*``) found by bisection, not by a scan of its folder per file."""
        by_folder: dict[str, list[str]] = {}
        found: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for rel in rels:
            parts = rel.split("/")
            if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
                found[rel] = {}  # a stored name that is not a plain path inside: never looked up
                continue
            folder, _, name = rel.rpartition("/")
            by_folder.setdefault(folder, []).append(name)
        for folder, files in by_folder.items():
            names = sorted(self.names(folder))
            shared = [n for n in names if kinds.stem(n).lower() in kinds.FOLDER_IMAGES]
            for name in files:
                own = kinds.stem(name)
                # every name that starts with "<stem>." sorts between it and "<stem>/"
                start, end = bisect.bisect_left(names, own + "."), bisect.bisect_left(
                    names, own + "/")
                rel = f"{folder}/{name}" if folder else name
                candidates = dict.fromkeys([*names[start:end], *shared])
                found[rel] = kinds.sidecars(name, candidates, folder)
        return found


def api_sidecars(sidecars: dict[str, list[dict[str, Any]]]
                 ) -> dict[str, list[dict[str, Any]]]:
    """A file's sidecars (``FileIndex.sidecars``) as JSON names them (files.names)."""
    return {kind: [{**entry, "file": api_form(entry["file"])} for entry in group]
            for kind, group in sidecars.items()}


def folded(text: str) -> str:
    """``text`` as a search compares it: case folded, composed (macOS writes names
    decomposed, ``e`` and a combining accent; people type them composed)."""
    return unicodedata.normalize("NFC", text.casefold())


def _searched(name: str) -> str:
    """What a search looks in: the name, and for one that is not UTF-8 both its reading as
    people see it (``café``) and its percent-encoded form (``caf%E9``)."""
    if is_text(name):
        return folded(name)
    return folded(f"{readable(name)}\n{api_form(name)}")


def _sorted(entries: list[Entry], sort_by: str, descending: bool) -> list[Entry]:
    entries.sort(key=lambda e: e.name)
    if sort_by == "name":
        entries.sort(key=lambda e: e.name.casefold(), reverse=descending)
    elif sort_by == "size":
        entries.sort(key=lambda e: e.size, reverse=descending)
    elif sort_by == "date":
        entries.sort(key=lambda e: e.mtime, reverse=descending)
    else:
        entries.sort(key=lambda e: (kinds.content_type(e.name, e.is_dir),
                                    e.name.rpartition(".")[2].lower()), reverse=descending)
    entries.sort(key=lambda e: not e.is_dir)
    return entries
