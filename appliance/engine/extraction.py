"""The engine's info extraction: what a waiting item is (title, site, id), whether its archive
or a condition skips it, and a playlist turned into its entries.

Part of ``DownloadEngine`` (engine.py), under its owners and rules: extraction runs on the
``extract`` threads and works on a copy of a waiting item, which changes in one step under the
engine's lock once the result is known.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from concurrent.futures import Future
from typing import Any

from .. import events
from ..errors import AppError
from ..store import Item
from ..store.records import QUEUE, SKIP, new_id
from .archive import archive_id
from .requests import check_url
from .workers import WorkerDied

log = logging.getLogger(__name__)

# Info dicts kept between an item's extraction and its download (a YouTube one can be
# hundreds of KB, so only a few, and only briefly: the media URLs in them expire).
INFO_CACHE_SIZE = 20
INFO_CACHE_TTL = 300.0


def _log_crash(future: Future[None]) -> None:
    """An extraction that raised would otherwise leave its item waiting without a word."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("info extraction failed", exc_info=exc)


def _unexpected(exc: BaseException) -> str:
    """What an item's error says when reading or applying its info raised."""
    return f"Could not read the URL's info: {type(exc).__name__}: {exc}"


def _acceptable_entries(item: Item, entries: list[dict[str, Any]]
                        ) -> tuple[list[dict[str, Any]], str]:
    """The entries whose URL a person could have added (a feed can list file:, data: or
    javascript: URLs, which yt-dlp would read or write as files), and why the others were
    refused, said for the person ("" when none was)."""
    kept: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        try:
            # the index it has in the playlist, which the refused ones do not shift
            entry = {**entry, "url": check_url(entry.get("url")), "index": index}
        except AppError as exc:
            reason = _reason(exc.message)
            reasons[reason] = reasons.get(reason, 0) + 1
            log.warning("playlist item=%s url=%s: entry %d refused: %s", item.id, item.url,
                        index, exc.message)
            continue
        kept.append(entry)
    return kept, "; ".join(f"{reason}: {count}" for reason, count in reasons.items())


def _reason(message: str) -> str:
    """check_url's message without the URL it quotes, so refusals group by their cause."""
    if "must be an http(s) URL" in message:
        return "not an http(s) URL"
    if "is not a valid URL" in message:
        return "not a valid URL"
    return message.removeprefix("url ").rstrip(".")


class Extraction:
    """Info extraction for ``DownloadEngine``."""

    def _submit_extraction(self, item: Item) -> None:
        with contextlib.suppress(RuntimeError):  # executor already shut down: we are stopping
            self._extract.submit(self._extract_info, item.id).add_done_callback(_log_crash)

    def _extract_info(self, item_id: str) -> None:
        with self._state_writes.patiently():  # an extraction's writes wait for the disk
            self._extract_one(item_id)

    def _extract_one(self, item_id: str) -> None:
        with self._lock:
            item = self._items.get(item_id)
            if item is None or self._stopping:
                return
            self._extracting[item_id] = None
            snapshot = item.snapshot()
        try:
            skip = self._archived(snapshot, before_extraction=True)
            # The line it is skipped for stays with it (``extras``): the history's "remove
            # from archive" and a task's run know it by that alone, with no info read.
            result = {"type": "skip", "message": skip, "extras": snapshot.extras} if skip \
                else self.run_job("extract", snapshot, register=item_id, full=True)
        except WorkerDied as exc:
            result = {"type": "error", "message": str(exc)}
        except AppError as exc:  # its folder no longer resolves (settings changed)
            result = {"type": "error", "message": exc.message}
        except Exception as exc:  # e.g. an archive that cannot be read
            # Else the item would wait for its info for good, without a word to anyone.
            log.exception("info extraction of %s failed", item_id)
            result = {"type": "error", "message": _unexpected(exc)}
        finally:
            with self._lock:
                self._extracting.pop(item_id, None)
        try:
            self._extracted(item, result)
        except Exception as exc:  # the same: a condition, an archive, a playlist's entries
            log.exception("applying the info of %s failed", item_id)
            self._fail(item, _unexpected(exc))
        self._wake_dispatcher()

    def _waiting(self, item: Item) -> bool:
        """``item`` is still in the queue, not running, and the engine runs (under the lock)."""
        return (self._items.get(item.id) is item and item.id not in self._runs
                and not self._stopping)

    def _extracted(self, item: Item, result: dict[str, Any]) -> None:
        """Apply an extraction's result to a waiting item. The work is done on a copy, and the
        item changes in one step: the dispatcher never sees it half done (an extractor set
        before the conditions have picked its preset)."""
        with self._lock:
            if not self._waiting(item):
                return
            work = item.snapshot()
        if result.get("type") == "skip":
            self._skip(item, result["message"], extras=result.get("extras") or item.extras)
            return
        if result.get("type") == "error":
            self._fail(item, result.get("message") or "could not read the URL's info")
            return
        summary = result.get("summary") or {}
        if summary.get("_type") == "playlist":
            self._expand_playlist(item, summary)
            return
        work.title = summary.get("title") or work.title
        work.extractor = summary.get("extractor_key") or summary.get("extractor") or "generic"
        work.video_id = str(summary.get("id") or "")
        work.info = summary
        if work.msg == "Waiting for info":
            work.msg = self._disk_wait() if work.auto_start else ""
        skip = self._archived(work, before_extraction=False) or self._apply_conditions(work)
        found = {name: getattr(work, name) for name in (
            "title", "extractor", "video_id", "info", "extras", "preset", "cli")}
        if skip:
            self._skip(item, skip, **found)
            return
        found["msg"] = work.msg
        with self._lock:
            if not self._waiting(item):
                return
            for name, value in found.items():
                setattr(item, name, value)
            self._keep_info(item.id, result.get("info"))
        self._commit(item, durable=False)

    def _keep_info(self, item_id: str, info: dict[str, Any] | None) -> None:
        """Keep a fresh info dict for the item's download, so the site is asked once (under
        the lock)."""
        if not info:
            return
        self._infos[item_id] = (time.monotonic(), info)
        while len(self._infos) > INFO_CACHE_SIZE:
            self._infos.pop(next(iter(self._infos)))

    def _fresh_info(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            kept = self._infos.pop(item_id, None)
        if kept is None or time.monotonic() - kept[0] > INFO_CACHE_TTL:
            return None  # media URLs in an old info may have expired: read it again
        return kept[1]

    def _archived(self, item: Item, *, before_extraction: bool) -> str | None:
        """Why the item (a copy this thread owns) is skipped because its archive holds it, or
        None.

        Before extraction the id comes from the URL alone (no network, a warm process); after,
        from the extracted info.
        """
        archive = self.planner.plan(item).archive
        if archive is None or item.extras.get("force"):
            return None
        if before_extraction:
            ids = self.run_job("archive_ids", item, urls=[item.url]).get("ids") or [{}]
            entry = ids[0].get("archive_id")
        else:
            entry = archive_id(item.extractor, item.video_id, item.url)
        if entry and self.archives.contains(archive, entry):
            item.extras = {**item.extras, "archive_id": entry}
            return f"Already downloaded: '{entry}' is in the archive {archive.name}."
        return None

    def _apply_conditions(self, item: Item) -> str | None:
        """Apply the first matching condition to ``item`` (a copy this thread owns); returns
        a skip reason when it says skip."""
        if item.extras.get("ignore_conditions"):
            return None
        condition = self.conditions.match(item.info)
        if condition is None:
            return None
        extras = condition.get("extras") or {}
        item.extras = {**item.extras, "condition": condition["name"]}
        if extras.get("skip"):
            return f"Skipped by condition '{condition['name']}'."
        if extras.get("preset"):
            item.preset = extras["preset"]
        if condition.get("cli"):
            item.cli = " ".join(filter(None, [item.cli, condition["cli"]]))
        item.msg = f"Condition '{condition['name']}' applied."
        return None

    def _skip(self, item: Item, reason: str, **fields: Any) -> None:
        if self._to_history(item, SKIP, durable=False, msg=reason, **fields):
            self._said_skipped(item)

    def _said_skipped(self, item: Item) -> None:
        log.info("skipping item=%s url=%s: %s", item.id, item.url, item.msg)
        self.bus.message("info", "Skipped", f"{item.title or item.url}: {item.msg}", id=item.id)

    def _expand_playlist(self, item: Item, summary: dict[str, Any]) -> None:
        entries = summary.get("entries") or []
        if not entries:
            self._fail(item, "The playlist has no entries.")
            return
        kept, why = _acceptable_entries(item, entries)
        if not kept:
            # (``why`` names each cause: a URL too long was told "only http(s) URLs")
            self._fail(item, f"All {len(entries)} of the playlist's entries were refused "
                             f"({why}).")
            return
        if len(kept) < len(entries):
            refused = len(entries) - len(kept)
            # (its entries are two or more: one refused of one fails the playlist, above)
            verb = "was" if refused == 1 else "were"
            self.bus.message(
                "warning", "Playlist entries refused",
                f"{summary.get('title') or item.url}: {refused} of the playlist's "
                f"{len(entries)} entries {verb} refused ({why}); the others are queued.",
                id=item.id)
        entries = kept
        batch_id = item.batch_id or item.id
        batch_name = item.batch_name or summary.get("title") or item.url
        # Entries carry enough to download; conditions need each entry's full info.
        extract_each = self.conditions.enabled() and not item.extras.get("ignore_conditions")
        with self._lock:
            parent = item.snapshot()
        children = [
            dataclasses.replace(
                parent,
                id=new_id(),
                url=entry["url"],
                title=entry.get("title") or entry["url"],
                extractor="" if extract_each else entry.get("ie_key") or "generic",
                video_id=entry.get("id") or "",
                batch_id=batch_id,
                batch_name=batch_name,
                created_at=self.store.stamp(),
                info={"playlist": summary.get("title"), "playlist_index": entry["index"]},
                msg="",
            )
            for entry in entries
        ]
        added = [child.to_dict() for child in children]  # as added, before any is skipped
        # An entry the archive holds is stored as skipped at once: it never waits where the
        # dispatcher could start it.
        skipped = []
        for child in [] if extract_each else children:
            reason = self._archived(child, before_extraction=False)
            if reason:
                self._mark_ended(child, SKIP, msg=reason)
                skipped.append(child)
        if not self._replace_by_entries(item, children, added, skipped):
            return
        self._remove_temp(item)
        for child in skipped:
            self._said_skipped(child)
        if extract_each:
            for child in children:
                self._submit_extraction(child)

    def _replace_by_entries(self, item: Item, children: list[Item],
                            added: list[dict[str, Any]], skipped: list[Item]) -> bool:
        """Put the playlist's entries (``skipped``: those stored as ended) in its place, in
        the store, then in memory, and say so; False when it is not in the queue to replace,
        or the engine stopped while the disk refused the write."""
        with self._lock:
            if not self._waiting(item):
                return False
            del self._items[item.id]

        def replace() -> None:
            with self._order:
                self.store.replace([item.id], children)
                self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})
                with self._lock:
                    for child in children:
                        if child.kind == QUEUE:
                            self._items[child.id] = child
                    self._wake.notify_all()
                for data in added:
                    self.bus.publish(events.ITEM_ADDED, data)
                for child in skipped:
                    self._announce_end(child)

        # Waited on like every state write of the engine's own (storing): a refused write
        # raised here, after the item had left the queue, and the playlist waited for its
        # info without a word until a restart, the disk long freed.
        stored = False
        try:
            stored = self._state_writes.store(replace)
        finally:
            if not stored:  # refused, or the engine stops first: the store still holds it
                with self._lock:
                    self._items.setdefault(item.id, item)
        return stored
