"""The Flasharr view of the queue: the same items in Flasharr's shapes and states.

States: waiting → ``queued`` (``paused`` when auto-start is off), preparing / downloading /
postprocessing → ``downloading``, finished and skip → ``completed``, error and cancelled →
``failed``. They are lower case, as the seed document has them (current Flasharr sends them
upper case; its status filters are read in any case here).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .errors import invalid
from .store.records import (
    ACTIVE_STATUSES,
    CANCELLED,
    DONE,
    ERROR,
    FINISHED,
    PENDING,
    QUEUE,
    SKIP,
)

if TYPE_CHECKING:
    from .engine.queue_tally import QueueBatch

STATES = ("queued", "downloading", "paused", "completed", "failed")
# SYNC_ALL's tasks at most: the running items, then the newest waiting (the rest: GET
# /api/downloads, paged). A queue of tens of thousands (a big channel added at once) made it a
# frame of tens of MiB for every client that connected.
SYNC_ALL_LIMIT = 1000
# ``?status=`` also takes ``cancelled`` (a part of ``failed``, as Flasharr counts it apart).
FILTERS = (*STATES, "cancelled")


def parse_filter(value: str | None) -> str | None:
    """A ``?status=`` value in any case (current Flasharr sends ``DOWNLOADING``), or None."""
    if value is None or not value.strip():
        return None
    state_name = value.strip().lower()
    if state_name not in FILTERS:
        raise invalid(f"status must be one of {', '.join(FILTERS)} (any case).")
    return state_name


def state(item: dict[str, Any]) -> str:
    return state_of(item.get("status"), item.get("auto_start", True))


def state_of(status: str | None, auto_start: bool) -> str:
    """The Flasharr state of an item in ``status`` (a waiting one: by ``auto_start``)."""
    if status in ACTIVE_STATUSES:
        return "downloading"
    if status in {FINISHED, SKIP}:
        return "completed"
    if status in {ERROR, CANCELLED}:
        return "failed"
    return "queued" if auto_start else "paused"


def _iso(stamp: float | None) -> str | None:
    if not stamp:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")


def _host(item: dict[str, Any]) -> str:
    extractor = str(item.get("extractor") or "")
    if extractor:
        return extractor.lower()
    return (urlsplit(str(item.get("url") or "")).hostname or "").lower()


def task(item: dict[str, Any]) -> dict[str, Any]:
    """A Flasharr DownloadTask from an item dict (:meth:`Item.to_dict`).

    ``filename`` is always a string: the file's name, else the title, else the URL (the row
    of a download whose name is not known yet still shows something)."""
    filename = str(item.get("filename") or "").rsplit("/", 1)[-1]
    downloaded = item.get("downloaded_bytes")
    total = item.get("total_bytes") or item.get("file_size")
    out = {
        "id": item.get("id"),
        "filename": filename or item.get("title") or item.get("url") or str(item.get("id")),
        "state": state(item),
        "progress": item.get("percent") or 0,
        "speed": item.get("speed") or 0,
        "eta": item.get("eta"),
        "downloaded_bytes": downloaded,
        "total_bytes": item.get("total_bytes"),
        # Today's Flasharr names for the same figures.
        "size": total or 0,
        "downloaded": downloaded or 0,
        "error_message": item.get("error") or None,
        "original_url": item.get("url"),
        "host": _host(item),
    }
    for key in ("url", "title", "batch_id", "batch_name", "error"):
        if key in item:
            out[key] = item[key]
    if "created_at" in item:
        out["created_at"] = _iso(item.get("created_at"))
        out["started_at"] = _iso(item.get("started_at"))
        out["completed_at"] = _iso(item.get("finished_at"))
    return out


def _per_state(live: dict[str, Any], counts: dict[tuple[str, str], int]) -> dict[str, int]:
    """Items per Flasharr state (``cancelled`` counted apart, and within ``failed``)."""
    completed = counts.get((DONE, FINISHED), 0) + counts.get((DONE, SKIP), 0)
    cancelled = counts.get((DONE, CANCELLED), 0)
    failed = counts.get((DONE, ERROR), 0) + cancelled
    queued = max(0, counts.get((QUEUE, PENDING), 0) - live["paused"])
    return {"downloading": live["active_downloads"], "queued": queued,
            "paused": live["paused"], "completed": completed, "failed": failed,
            "cancelled": cancelled,
            "all": sum(counts.values())}


def engine_stats(live: dict[str, Any], counts: dict[tuple[str, str], int]) -> dict[str, Any]:
    """``/api/engine/stats`` (and ENGINE_STATS) from the engine's live figures and the
    store's status counts."""
    per_state = _per_state(live, counts)
    return {
        "active_downloads": live["active_downloads"],
        "queued": live["queued"],
        "completed": per_state["completed"],
        "failed": per_state["failed"],
        "paused": live["paused"],
        "cancelled": per_state["cancelled"],
        "total_speed": live["total_speed"],
        "system_paused": live["system_paused"],
        "download_folder_problem": live["download_folder_problem"],
        "db_counts": per_state,
    }


def status_counts(live: dict[str, Any], counts: dict[tuple[str, str], int]) -> dict[str, int]:
    """The list answers' ``status_counts`` (Flasharr's filter menu)."""
    return _per_state(live, counts)


# ``GET /api/downloads?status=…``: the queue states are read from the engine's memory, the
# history states are paged in SQL on these statuses.
QUEUE_STATES = ("queued", "downloading", "paused")
HISTORY_STATUSES = {"completed": (FINISHED, SKIP), "failed": (ERROR, CANCELLED),
                    "cancelled": (CANCELLED,)}


# Each history batch's summary as no queue item changes it, with its time (for the order),
# by batch id: built once per store write (see ``history_batches``).
HistoryBatches = dict[str, tuple[float, dict[str, Any]]]


def _fresh(total: dict[str, Any]) -> dict[str, Any]:
    """A batch of the store's totals, ready to take the queue's items (the totals unchanged)."""
    return {**total, "statuses": dict(total["statuses"]), "live_percent": 0.0, "states": {},
            "speed": 0.0}


def history_batches(totals: list[dict[str, Any]]) -> HistoryBatches:
    """The summaries of ``totals`` (the store's, newest first) alone. Kept from one write to the
    next by the API: 2,000 batches took 25-50 ms to build at each poll of ``/api/batches``."""
    return {t["batch_id"]: (t["created_at"] or 0, _batch(_fresh(t))) for t in totals}


def batches(totals: list[dict[str, Any]], queue: dict[str, QueueBatch],
            history: HistoryBatches | None = None) -> list[dict[str, Any]]:
    """Flasharr batch summaries, newest first (a batch's time is its first item's), from the
    store's per-batch totals (queue items left out) and the queue's batches, summed by the
    engine (its figures live); ``history``: ``history_batches(totals)``, when kept. Only the
    batches the queue has items of are built here.

    ``progress`` is the share of the batch that is done: finished items count 100 %, running
    ones their live percentage, the rest 0.
    """
    if history is None:
        history = history_batches(totals)
    stored = {t["batch_id"]: t for t in totals}
    shown = dict(history)  # (a batch the queue changes keeps its place among equal times)
    for batch_id, queued in queue.items():
        batch = _fresh(stored[batch_id]) if batch_id in stored else {
            "batch_id": batch_id, "batch_name": "", "statuses": {}, "total_bytes": 0,
            "downloaded_bytes": 0, "live_percent": 0.0, "states": {}, "speed": 0.0,
            "created_at": None}
        batch["batch_name"] = batch["batch_name"] or queued.name
        statuses, states = batch["statuses"], batch["states"]
        for (status, auto_start), count in queued.counts.items():
            statuses[status] = statuses.get(status, 0) + count
            item_state = state_of(status, auto_start)
            states[item_state] = states.get(item_state, 0) + count
        batch["total_bytes"] += queued.total_bytes
        batch["downloaded_bytes"] += queued.downloaded_bytes
        batch["live_percent"] += queued.percent
        batch["speed"] += queued.speed
        created = queued.created_at
        if created and (not batch.get("created_at") or created < batch["created_at"]):
            batch["created_at"] = created
        shown[batch_id] = (batch.get("created_at") or 0, _batch(batch))
    # A batch waiting in the queue is not newer than the history's for being there.
    newest_first = sorted(shown.values(), key=lambda pair: pair[0], reverse=True)
    return [summary for _, summary in newest_first]


def _batch(batch: dict[str, Any]) -> dict[str, Any]:
    statuses, states = batch["statuses"], batch["states"]
    total = sum(statuses.values())
    completed = statuses.get(FINISHED, 0) + statuses.get(SKIP, 0)
    failed = statuses.get(ERROR, 0) + statuses.get(CANCELLED, 0)
    progress = (100.0 * completed + batch["live_percent"]) / total if total else 0.0
    counts = {"downloading": states.get("downloading", 0), "paused": states.get("paused", 0),
              "queued": states.get("queued", 0), "failed": failed, "completed": completed}
    # The batch's state: the first of these that any of its items is in.
    overall = next((name for name in ("downloading", "queued", "paused", "failed")
                    if counts[name]), "completed")
    return {
        "batch_id": batch["batch_id"],
        "batch_name": batch["batch_name"],
        "total_items": total,
        "completed_items": completed,
        "failed_items": failed,
        "downloading_items": counts["downloading"],
        "paused_items": counts["paused"],
        "queued_items": counts["queued"],
        "progress": round(min(progress, 100.0), 1),
        "total_size": batch["total_bytes"],
        "downloaded_size": batch["downloaded_bytes"],
        "speed": batch["speed"],
        "state": overall,
        "created_at": _iso(batch.get("created_at")),
    }
