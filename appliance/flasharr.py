"""The Flasharr view of the queue: the same items in Flasharr's shapes and states.

States: waiting → ``queued`` (``paused`` when auto-start is off), preparing / downloading /
postprocessing → ``downloading``, finished and skip → ``completed``, error and cancelled →
``failed``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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

STATES = ("queued", "downloading", "paused", "completed", "failed")


def state(item: dict[str, Any]) -> str:
    status = item.get("status")
    if status in ACTIVE_STATUSES:
        return "downloading"
    if status in {FINISHED, SKIP}:
        return "completed"
    if status in {ERROR, CANCELLED}:
        return "failed"
    return "queued" if item.get("auto_start", True) else "paused"


def _iso(stamp: float | None) -> str | None:
    if not stamp:
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")


def task(item: dict[str, Any]) -> dict[str, Any]:
    """A Flasharr DownloadTask from an item dict (full or a progress update)."""
    filename = item.get("filename") or ""
    out = {
        "id": item.get("id"),
        "filename": filename.rsplit("/", 1)[-1] or item.get("title") or item.get("url"),
        "state": state(item),
        "progress": item.get("percent") or 0,
        "speed": item.get("speed_bps") or 0,
        "eta": item.get("eta_seconds"),
        "downloaded_bytes": item.get("downloaded_bytes"),
        "total_bytes": item.get("total_bytes"),
    }
    for key in ("url", "title", "batch_id", "batch_name", "error"):
        if key in item:
            out[key] = item[key]
    if "created_at" in item:
        out["created_at"] = _iso(item.get("created_at"))
        out["started_at"] = _iso(item.get("started_at"))
    return out


def engine_stats(live: dict[str, Any], counts: dict[tuple[str, str], int]) -> dict[str, Any]:
    """``/api/engine/stats`` from the engine's live figures and the store's status counts."""
    completed = counts.get((DONE, FINISHED), 0) + counts.get((DONE, SKIP), 0)
    failed = counts.get((DONE, ERROR), 0) + counts.get((DONE, CANCELLED), 0)
    return {
        "active_downloads": live["active_downloads"],
        "queued": live["queued"],
        "completed": completed,
        "failed": failed,
        "paused": live["paused"],
        "total_speed": live["total_speed"],
        "system_paused": live["system_paused"],
        "db_counts": {
            "queued": max(0, counts.get((QUEUE, PENDING), 0) - live["paused"]),
            "downloading": live["active_downloads"],
            "completed": completed,
            "failed": failed,
            "paused": live["paused"],
        },
    }


# ``GET /api/downloads?status=…``: the queue states are read from the engine's memory, the
# history states are paged in SQL on these statuses.
QUEUE_STATES = ("queued", "downloading", "paused")
HISTORY_STATUSES = {"completed": (FINISHED, SKIP), "failed": (ERROR, CANCELLED)}


def batches(totals: list[dict[str, Any]], running: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flasharr batch summaries from the store's per-batch totals (running downloads left
    out) and the running downloads' live item dicts.

    ``progress`` is the share of the batch that is done: finished items count 100 %, running
    ones their live percentage, the rest 0.
    """
    by_id = {t["batch_id"]: {**t, "statuses": dict(t["statuses"]), "live_percent": 0.0}
             for t in totals}
    order = list(by_id)
    for item in running:
        batch_id = item.get("batch_id")
        if not batch_id:
            continue
        if batch_id not in by_id:
            by_id[batch_id] = {"batch_id": batch_id, "batch_name": "", "statuses": {},
                               "total_bytes": 0, "downloaded_bytes": 0, "live_percent": 0.0}
            order.insert(0, batch_id)
        batch = by_id[batch_id]
        batch["batch_name"] = batch["batch_name"] or item.get("batch_name") or ""
        status = item.get("status") or PENDING
        batch["statuses"][status] = batch["statuses"].get(status, 0) + 1
        batch["total_bytes"] += item.get("total_bytes") or 0
        batch["downloaded_bytes"] += item.get("downloaded_bytes") or 0
        batch["live_percent"] += item.get("percent") or 0
    return [_batch(by_id[b]) for b in order]


def _batch(batch: dict[str, Any]) -> dict[str, Any]:
    statuses = batch["statuses"]
    total = sum(statuses.values())
    completed = statuses.get(FINISHED, 0) + statuses.get(SKIP, 0)
    failed = statuses.get(ERROR, 0) + statuses.get(CANCELLED, 0)
    progress = (100.0 * completed + batch["live_percent"]) / total if total else 0.0
    return {
        "batch_id": batch["batch_id"],
        "batch_name": batch["batch_name"],
        "total_items": total,
        "completed_items": completed,
        "failed_items": failed,
        "progress": round(min(progress, 100.0), 1),
        "total_size": batch["total_bytes"],
        "downloaded_size": batch["downloaded_bytes"],
    }
