"""What the API does with download archives: read, add and remove entries by preset or by
item, and find the archive id of URLs."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import CONFLICT, INSUFFICIENT_STORAGE, NOT_FOUND, UNAVAILABLE, AppError, invalid
from ..store import Item
from .archive import Archives, archive_id, entry_line
from .plans import Planner

MAX_URLS = 500
_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def said_plainly(path: Path) -> Iterator[None]:
    """An archive file the service cannot read or write (its folder a file, a full or failing
    disk) as an answer that names it: it was a 500 that said nothing. 507 when the disk is
    full, 503 otherwise: the request was fine, the file is not."""
    try:
        yield
    except OSError as exc:
        code = INSUFFICIENT_STORAGE if exc.errno in _FULL else UNAVAILABLE
        # the folder, a lock or temporary file beside it: where it failed
        where = f" ({exc.filename})" if exc.filename not in (None, str(path)) else ""
        raise AppError(f"The archive file {path} could not be used: "
                       f"{exc.strerror or exc}{where}. Nothing was changed.", code) from None


class ArchiveService:
    def __init__(self, planner: Planner, archives: Archives,
                 get_item: Callable[[str], Item | None],
                 archive_ids: Callable[[list[str]], list[dict[str, Any]]]) -> None:
        self.planner = planner
        self.archives = archives
        self._get_item = get_item
        self._archive_ids = archive_ids

    def _preset_archive(self, preset: Any) -> Path:
        if not isinstance(preset, str) or not preset:
            raise invalid("preset is required.")
        self.planner.presets.check(preset, "INVALID_REQUEST")
        path = self.planner.archive_path(self.planner.presets.resolve(preset))
        if path is None:
            raise invalid(f"Preset '{preset}' does not provide a download_archive.")
        return path

    @staticmethod
    def _entries(items: Any) -> list[str]:
        if not isinstance(items, list) or not items:
            raise invalid("items is required and must be a non-empty array.")
        entries = []
        for entry in items:
            # An id may have spaces (a file's name): one word is all an entry cannot be.
            if not isinstance(entry, str) or len(entry.split()) < 2:
                raise invalid(f"'{entry}' is not an archive id ('<extractor> <id>').")
            entries.append(entry_line(entry))
        return entries

    def read(self, preset: Any, ids: str | None) -> dict[str, Any]:
        path = self._preset_archive(preset)
        with said_plainly(path):
            lines = (self.archives.find(path, {i.strip() for i in ids.split(",") if i.strip()})
                     if ids else self.archives.read(path))
        return {"file": str(path), "items": lines, "count": len(lines)}

    def add(self, preset: Any, items: Any) -> tuple[bool, dict[str, Any]]:
        path = self._preset_archive(preset)
        entries = self._entries(items)
        with said_plainly(path):
            added = self.archives.add(path, entries)
        return bool(added), {"file": str(path), "status": bool(added), "items": added}

    def remove(self, preset: Any, items: Any) -> tuple[bool, dict[str, Any]]:
        path = self._preset_archive(preset)
        entries = self._entries(items)
        with said_plainly(path):
            gone = self.archives.remove(path, entries)
        return bool(gone), {"file": str(path), "status": bool(gone), "items": gone}

    def _item_entry(self, item_id: str) -> tuple[Item, Path | None, str | None]:
        item = self._get_item(item_id)
        if item is None:
            raise AppError("Item not found.", NOT_FOUND)
        path = self.planner.plan(item).archive
        # An item skipped before its info was read has only the line it was skipped for.
        return item, path, archive_id(item.extractor, item.video_id, item.url) or (
            item.extras.get("archive_id") or None)

    def archive_item(self, item_id: str) -> dict[str, Any]:
        _item, path, entry = self._item_entry(item_id)
        if path is None:
            raise AppError("No archive file is configured for this item's preset.", NOT_FOUND)
        if entry is None:
            raise invalid("The item has no archive id yet (its info was never read).")
        with said_plainly(path):
            added = self.archives.add(path, [entry])
        if not added:
            raise AppError(f"item '{entry}' is already archived in '{path.name}'.", CONFLICT)
        return {"message": f"item '{entry}' archived in file '{path}'."}

    def unarchive_item(self, item_id: str) -> dict[str, Any]:
        item, path, entry = self._item_entry(item_id)
        if path is None:
            raise invalid("No archive file is configured for this item's preset.")
        gone: list[str] = []
        if entry is not None:
            with said_plainly(path):
                gone = self.archives.remove(path, [entry])
        if not gone:
            raise AppError(f"item '{item.title}' is not in the '{path.name}' archive.",
                           NOT_FOUND)
        return {"message": f"item '{item.title}' removed from '{path}' archive."}

    def archive_ids(self, urls: Any) -> list[dict[str, Any]]:
        if not isinstance(urls, list) or not urls:
            raise invalid("The body must be a JSON array of URLs.")
        if len(urls) > MAX_URLS:
            raise invalid(f"At most {MAX_URLS} URLs at once.")
        valid = [u for u in urls if isinstance(u, str) and u.startswith(("http://", "https://"))]
        found = iter(self._archive_ids(valid)) if valid else iter(())
        results = []
        for index, url in enumerate(urls):
            if url in valid:
                results.append({"index": index, **next(found)})
            else:
                results.append({"index": index, "url": url, "id": None, "ie_key": None,
                                "archive_id": None, "error": "not an http(s) URL"})
        return results
