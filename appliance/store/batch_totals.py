"""Per batch of history items, kept by the store's writer: Flasharr's lists read them at each
poll, and grouping every batched item in SQL took 185 ms at 100,000 items (every row read
through the batch_id index), 30 ms at 10,000."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from .records import DONE


@dataclasses.dataclass(frozen=True)
class Row:
    """An item of the history as a write found or left it (an entity changes, and a record
    may, after): what its batch's totals count of it."""

    kind: str
    status: str
    batch_id: str
    batch_name: str
    created_at: float
    total_bytes: int | None
    downloaded_bytes: int | None

    @classmethod
    def of(cls, row: Any) -> Row:
        return cls(row.kind, row.status, row.batch_id or "", row.batch_name or "",
                   row.created_at, row.total_bytes, row.downloaded_bytes)


@dataclasses.dataclass
class Totals:
    """The history items of one batch in one status. ``first`` (the earliest creation time)
    and ``name`` (the greatest batch name) are None once the item that held them left: read
    again, for this batch alone, when asked."""

    count: int = 0
    total_bytes: int = 0
    downloaded_bytes: int = 0
    first: float | None = None
    name: str | None = None


# (batch_id, status) -> what to read again of it: (first creation time, greatest name)
Refresh = Callable[[Iterable[tuple[str, str]]], dict[tuple[str, str], tuple[float, str]]]


class BatchTotals:
    """The totals of every batch (``""``: the items of no batch), by status, of history
    items only: the queue's live figures are the engine's. Not thread-safe: the store calls
    it under its tally lock, after each write's commit."""

    def __init__(self, rows: Iterable[tuple[str, str, int, int, int, float, str]]) -> None:
        """``rows``: (batch_id, status, count, total_bytes, downloaded_bytes, first creation
        time, greatest name) per batch and status, as SQL grouped them."""
        self._batches: dict[str, dict[str, Totals]] = {}
        for batch_id, status, count, total, downloaded, first, name in rows:
            self._batches.setdefault(batch_id, {})[status] = Totals(
                count, total or 0, downloaded or 0, first, name or "")

    def change(self, sign: int, row: Row) -> None:
        """An item of the history came (``sign`` 1) or left (-1); others are not counted."""
        if row.kind != DONE:
            return
        name = row.batch_name or ""
        statuses = self._batches.setdefault(row.batch_id or "", {})
        totals = statuses.setdefault(row.status, Totals())
        totals.count += sign
        totals.total_bytes += sign * (row.total_bytes or 0)
        totals.downloaded_bytes += sign * (row.downloaded_bytes or 0)
        if totals.count <= 0:
            del statuses[row.status]
            if not statuses:
                del self._batches[row.batch_id or ""]
        elif sign > 0:
            if totals.count == 1:
                totals.first, totals.name = row.created_at, name
            else:
                if totals.first is not None:
                    totals.first = min(totals.first, row.created_at)
                if totals.name is not None:
                    totals.name = max(totals.name, name)
        else:  # what the leaving item held, another may hold too: read again when asked
            if totals.first == row.created_at:
                totals.first = None
            if totals.name == name:
                totals.name = None

    def count(self, batch_id: str, statuses: Iterable[str] = ()) -> int:
        """How many history items of ``batch_id`` are in ``statuses`` (any, when none)."""
        wanted = set(statuses)
        return sum(t.count for status, t in self._batches.get(batch_id, {}).items()
                   if not wanted or status in wanted)

    def summaries(self, refresh: Refresh) -> list[dict[str, Any]]:
        """Per batch (not ``""``): its name, item count per status, summed ``total_bytes``
        and ``downloaded_bytes``, first creation time; newest batch first."""
        unknown = [(batch_id, status) for batch_id, statuses in self._batches.items()
                   for status, t in statuses.items() if t.first is None or t.name is None]
        for (batch_id, status), (first, name) in refresh(unknown).items():
            totals = self._batches[batch_id][status]
            totals.first, totals.name = first, name or ""
        out = []
        for batch_id, statuses in self._batches.items():
            if not batch_id:
                continue
            out.append({
                "batch_id": batch_id,
                "batch_name": max(t.name or "" for t in statuses.values()),
                "statuses": {status: t.count for status, t in statuses.items()},
                "total_bytes": sum(t.total_bytes for t in statuses.values()),
                "downloaded_bytes": sum(t.downloaded_bytes for t in statuses.values()),
                "created_at": min(t.first or 0.0 for t in statuses.values()),
            })
        return sorted(out, key=lambda b: b["created_at"], reverse=True)
