"""Deleting a finished item's files from disk (``remove_file``, with ``YTP_REMOVE_FILES``).

Only the file the item recorded (named as the API names it: a name that is no UTF-8 by its
bytes, percent-encoded, files.names), only inside the download folder it was written in, never
through a symlink, and only while it is still that file (its size and modification time as
recorded: not another one renamed or copied over its name since), once no one is reading it
(a zip being sent, the player: ``in_use``); and with it its own
sidecars (``Show.en.srt``, ``Show.info.json``, ``Show.jpg``… — ``kinds.own_sidecars``: never
another media file named like it nor that file's sidecars, never the folder's artwork), which
retention and a delete left behind for ever, orphaned NFO files and all. While another media
file of the same name stays (``Show.mkv`` beside ``Show.mp4``), the sidecars are its too and
stay.

The file's folder is opened once it is checked (``files.trees.open_folder``: the folder the
check found, inside the download folder) and the file and its sidecars are judged and removed
by their names in that open folder: removed by their paths, a folder of the path swapped for
a link to another folder after the check (by anyone who can write in the download folder)
had the same names removed there, outside, and the download left.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import stat
from pathlib import Path

from .. import errors, in_use, kinds
from ..files import trees
from ..files.paths import stored
from ..path_limits import real_path
from ..store import Item
from ..store.records import FINISHED

log = logging.getLogger(__name__)

SIDECAR_KINDS = frozenset({kinds.SUBTITLE, kinds.IMAGE, kinds.METADATA, kinds.TEXT})


class Listings:
    """The names in the folders that files are removed from, each folder listed once for a
    whole delete: one of thousands of items from one folder (a channel's, or the download
    folder itself after years) listed the folder once per item, and searched the whole
    listing each time, for an hour's work on a Pi in the request's thread."""

    def __init__(self) -> None:
        self._names: dict[Path, list[str]] = {}  # sorted: the names of a prefix are a run

    def starting_with(self, folder: Path, prefix: str, opened: int) -> list[str]:
        """The names of ``folder`` (open as ``opened``) that begin with ``prefix``."""
        names = self._names.get(folder)
        if names is None:
            names = self._names[folder] = sorted(os.listdir(opened))
        first = end = bisect.bisect_left(names, prefix)
        while end < len(names) and names[end].startswith(prefix):
            end += 1
        return names[first:end]

    def removed(self, path: Path) -> None:
        names = self._names.get(path.parent)
        if names is not None:
            at = bisect.bisect_left(names, path.name)
            if at < len(names) and names[at] == path.name:
                del names[at]


def remove_files_of(item: Item, folders: set[str], listings: Listings | None = None) -> None:
    """Delete ``item``'s file and its own sidecars, if it finished, in a download folder that
    is one of ``folders`` (a folder an item merely names is not one). ``listings``: the
    folders' names as a delete of many items found them and removed from them."""
    listings = listings or Listings()
    if item.status != FINISHED or not item.filename or item.download_folder not in folders:
        return
    root = Path(item.download_folder).resolve()
    try:
        # as the API names it: a file the browser moved into a folder whose name is no UTF-8
        # is kept so (F%E9/x.mp4), and was never found
        path = Path(item.download_folder) / stored(root, item.filename)
    except errors.AppError as exc:
        log.warning("not removing %s of item %s: %s", item.filename, item.id, exc.message)
        return
    try:
        target: Path | None = Path(real_path(path))
    except OSError:  # through a chain of links the system does not follow
        target = None
    if target is None or path.is_symlink() or not target.is_relative_to(root):
        log.warning("not removing %s of item %s: not a file inside %s", path, item.id,
                    item.download_folder)
        return
    try:
        folder = trees.open_folder(target.parent, root)
    except errors.AppError:
        log.warning("not removing %s of item %s: its folder was replaced (by a link, or "
                    "moved) as it was checked", target, item.id)
        return
    except OSError as exc:
        log.warning("not removing %s of item %s: %s", target, item.id, exc)
        return
    try:
        _remove_in(folder, item, target, folders, listings)
    finally:
        os.close(folder)


def _remove_in(folder: int, item: Item, target: Path, folders: set[str],
               listings: Listings) -> None:
    """``remove_files_of``'s removal, once ``target``'s folder is checked and open as
    ``folder``: every name is judged and removed in that folder, whatever its path became."""
    try:
        found = os.lstat(target.name, dir_fd=folder)
    except OSError:
        found = None
    if found is None or not stat.S_ISREG(found.st_mode):
        log.warning("not removing %s of item %s: not a file inside %s", target, item.id,
                    item.download_folder)
        return
    if (changed := _changed_since(item, found)) is not None:
        log.warning("not removing %s of item %s: it is not the file this download wrote (%s: "
                    "renamed, replaced or edited since); it was left as it is", target,
                    item.id, changed)
        return
    try:
        sidecars = own_sidecars(target, folder, listings)
        # being sent (a zip) or played: removed once that ends, else the zip was cut short
        if in_use.FILES.when_let_go([target, *(target.parent / s for s in sidecars)],
                                    lambda: remove_files_of(item, folders)):
            log.info("file %s of item %s is being sent or played: it is removed when that "
                     "ends", target, item.id)
            return
        os.unlink(target.name, dir_fd=folder)
    except OSError as exc:
        log.warning("could not remove %s: %s", target, exc)
        return
    listings.removed(target)
    log.info("removed file %s of item %s", target, item.id)
    for sidecar in sidecars:
        try:
            os.unlink(sidecar, dir_fd=folder)
            listings.removed(target.parent / sidecar)
            log.info("removed %s with it", sidecar)
        except OSError as exc:
            log.warning("could not remove %s: %s", target.parent / sidecar, exc)


def _changed_since(item: Item, found: os.stat_result) -> str | None:
    """How the file ``found`` (its status) differs from the one ``item`` recorded (its size,
    its modification time), or None. The name alone says nothing: the file browser, a person
    over SSH or another download may have put another file under it."""
    if item.file_size is not None and found.st_size != item.file_size:
        return f"{found.st_size} bytes, not the {item.file_size} it recorded"
    if item.file_mtime_ns is not None and found.st_mtime_ns != item.file_mtime_ns:
        return "modified at another time than it recorded"
    return None


def own_sidecars(media: Path, folder: int, listings: Listings) -> list[str]:
    """The names of the regular files (not links) beside ``media`` in its open ``folder``
    that are its own sidecars; none while another media file of its name is there. Only
    names that begin with its stem and a dot can be either, and only of a sidecar's kinds
    (subtitles, pictures, NFO and JSON, text): a name of no known kind is no sidecar
    (``Show.f137.mp4.part``, which a person's own yt-dlp was writing beside it, went with
    it; ``Show.cue``)."""
    stem = kinds.stem(media.name)
    names = listings.starting_with(media.parent, stem + ".", folder)
    if any(n != media.name and kinds.stem(n) == stem and kinds.content_type(n) in kinds.MEDIA
           for n in names):
        return []
    return [name for name in kinds.own_sidecars(media.name, names)
            if kinds.content_type(name) in SIDECAR_KINDS and _regular(folder, name)]


def _regular(folder: int, name: str) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISREG(os.lstat(name, dir_fd=folder).st_mode)
    return False
