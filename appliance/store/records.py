"""Typed records that leave the store, and their one JSON serializer.

Entities never cross a ``db_session`` or a thread; these dataclasses do.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from email.utils import formatdate
from typing import Any

# Status strings as in the contract.
PENDING = "pending"
PREPARING = "preparing"
DOWNLOADING = "downloading"
POSTPROCESSING = "postprocessing"
FINISHED = "finished"
ERROR = "error"
CANCELLED = "cancelled"
SKIP = "skip"

ACTIVE_STATUSES = frozenset({PREPARING, DOWNLOADING, POSTPROCESSING})
FINAL_STATUSES = frozenset({FINISHED, ERROR, CANCELLED, SKIP})
ALL_STATUSES = frozenset({PENDING} | ACTIVE_STATUSES | FINAL_STATUSES)

QUEUE = "queue"
DONE = "done"

# Columns of ItemRow that a record carries (progress fields live in memory only).
PERSISTED = (
    "id", "kind", "status", "url", "title", "preset", "folder", "template", "cookies", "cli",
    "auto_start", "extractor", "video_id", "batch_id", "batch_name", "created_at",
    "updated_at", "started_at", "finished_at", "filename", "file_size", "file_mtime_ns",
    "downloaded_bytes", "total_bytes", "error", "msg", "info", "extras", "removed_options",
    "download_folder",
)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass
class Item:
    id: str
    url: str
    kind: str = QUEUE
    status: str = PENDING
    title: str = ""
    preset: str = "default"
    folder: str = ""
    template: str = ""
    cookies: str = ""
    cli: str = ""
    auto_start: bool = True
    extractor: str = ""
    video_id: str = ""
    batch_id: str = ""
    batch_name: str = ""
    created_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    filename: str = ""
    file_size: int | None = None
    # The file's modification time when it was recorded: with ``file_size``, what tells the
    # file this item downloaded from one renamed or copied over it since. Never sent.
    file_mtime_ns: int | None = None
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    error: str = ""
    msg: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    removed_options: list[str] = dataclasses.field(default_factory=list)
    # The download folder (absolute) that ``filename`` is relative to: the one the download
    # ran in, which the settings may have changed since. Never sent: clients get ``filename``.
    download_folder: str = ""
    # Live progress: kept in memory, never written (a state change writes bytes/status).
    percent: float | None = None
    speed: float | None = None
    eta: float | None = None

    def persisted(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PERSISTED}

    def snapshot(self) -> Item:
        """A shallow copy, as ``dataclasses.replace(item)`` makes one, without its call of
        ``__init__``: the engine copies under its lock every item an answer carries, the
        whole queue for one that carries all of it (20,000 queued: 85 ms that way, 16 ms this
        way, on an idle 2-core box; every download's state write waits for that lock
        meanwhile)."""
        copy = Item.__new__(Item)
        copy.__dict__.update(self.__dict__)
        return copy

    def to_dict(self) -> dict[str, Any]:
        """The ItemDTO of the contract, as YTPTube sends it: ``_id`` and ``id`` both name the
        item, ``timestamp`` is the creation time in nanoseconds and ``datetime`` the same as
        an RFC 2822 date, ``speed`` (bytes/s) and ``eta`` (seconds) are yt-dlp's numbers.
        Progress events carry the whole item too: YTPTube's clients replace their row with
        it."""
        data = self.persisted()
        data.pop("cookies")  # a secret: clients see only whether there are any
        data.pop("download_folder")
        data.pop("file_mtime_ns")
        data.update(
            _id=self.id,
            has_cookies=bool(self.cookies),
            timestamp=int(self.created_at * 1_000_000_000),
            datetime=formatdate(self.created_at, usegmt=True),
            download_dir=self.folder,
        )
        data.update(progress_fields(self))
        return data


def progress_fields(item: Item) -> dict[str, Any]:
    percent = item.percent
    if item.status == FINISHED:
        percent = 100.0
    return {
        "percent": percent,
        "progress": percent,
        "speed": item.speed,
        "eta": item.eta,
        # The contract's examples show these forms; YTPTube's clients compute their own.
        "speed_text": format_speed(item.speed),
        "eta_text": format_eta(item.eta),
    }


def format_speed(bps: float | None) -> str | None:
    if bps is None:
        return None
    value = float(bps)
    for unit in ("B/s", "KiB/s", "MiB/s", "GiB/s"):
        if value < 1024 or unit == "GiB/s":
            return f"{value:.1f} {unit}" if unit != "B/s" else f"{value:.0f} {unit}"
        value /= 1024
    return None  # pragma: no cover - loop always returns


def format_eta(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def most_relevant(items: list[Item], limit: int) -> list[Item]:
    """The running items, then the newest waiting ones, to ``limit``; in the queue's order.
    The engine hands it only the items that can be chosen (``QueueReads.queue_cut``)."""
    if len(items) <= limit:
        return items
    chosen = {item.id for item in items if item.status in ACTIVE_STATUSES}
    for item in reversed(items):
        if len(chosen) >= limit:
            break
        chosen.add(item.id)
    return [item for item in items if item.id in chosen][:limit]
