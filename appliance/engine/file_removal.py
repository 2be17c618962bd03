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
"""

from __future__ import annotations

import bisect
import logging
import os
from pathlib import Path

from .. import errors, in_use, kinds
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

    def starting_with(self, folder: Path, prefix: str) -> list[str]:
        names = self._names.get(folder)
        if names is None:
            names = self._names[folder] = sorted(os.listdir(folder))
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
        target = Path(real_path(path))
    except OSError:  # through a chain of links the system does not follow
        target = path
    if path.is_symlink() or not target.is_relative_to(root) or not target.is_file():
        log.warning("not removing %s of item %s: not a file inside %s", path, item.id,
                    item.download_folder)
        return
    if (changed := _changed_since(item, target)) is not None:
        log.warning("not removing %s of item %s: it is not the file this download wrote (%s: "
                    "renamed, replaced or edited since); it was left as it is", target,
                    item.id, changed)
        return
    try:
        sidecars = own_sidecars(target, listings)
        # being sent (a zip) or played: removed once that ends, else the zip was cut short
        if in_use.FILES.when_let_go([target, *sidecars],
                                    lambda: remove_files_of(item, folders)):
            log.info("file %s of item %s is being sent or played: it is removed when that "
                     "ends", target, item.id)
            return
        target.unlink()
    except OSError as exc:
        log.warning("could not remove %s: %s", target, exc)
        return
    listings.removed(target)
    log.info("removed file %s of item %s", target, item.id)
    for sidecar in sidecars:
        try:
            sidecar.unlink()
            listings.removed(sidecar)
            log.info("removed %s with it", sidecar.name)
        except OSError as exc:
            log.warning("could not remove %s: %s", sidecar, exc)


def _changed_since(item: Item, path: Path) -> str | None:
    """How the file at ``path`` differs from the one ``item`` recorded (its size, its
    modification time), or None. The name alone says nothing: the file browser, a person
    over SSH or another download may have put another file under it."""
    stat = path.stat()
    if item.file_size is not None and stat.st_size != item.file_size:
        return f"{stat.st_size} bytes, not the {item.file_size} it recorded"
    if item.file_mtime_ns is not None and stat.st_mtime_ns != item.file_mtime_ns:
        return "modified at another time than it recorded"
    return None


def own_sidecars(media: Path, listings: Listings | None = None) -> list[Path]:
    """The regular files (not links) beside ``media`` that are its own sidecars; none while
    another media file of its name is there. Only names that begin with its stem and a dot
    can be either, and only of a sidecar's kinds (subtitles, pictures, NFO and JSON, text):
    a name of no known kind is no sidecar (``Show.f137.mp4.part``, which a person's own
    yt-dlp was writing beside it, went with it; ``Show.mka``)."""
    stem = kinds.stem(media.name)
    names = (listings or Listings()).starting_with(media.parent, stem + ".")
    if any(n != media.name and kinds.stem(n) == stem and kinds.content_type(n) in kinds.MEDIA
           for n in names):
        return []
    return [path for name in kinds.own_sidecars(media.name, names)
            if kinds.content_type(name) in SIDECAR_KINDS
            and not (path := media.parent / name).is_symlink() and path.is_file()]
