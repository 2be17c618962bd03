"""Retention: which of a task's downloads to delete after a run (newest N kept, or those
finished within D days). Only the task's own finished items are ever considered."""

from __future__ import annotations

from collections.abc import Sequence

from ..store.records import Item

DAY = 86400.0


def expired(items: Sequence[Item], keep_newest: int, keep_days: int, now: float) -> list[Item]:
    """The items past the rule: beyond the ``keep_newest`` newest (0: no such rule), or
    finished more than ``keep_days`` days before ``now`` (0: no such rule)."""
    newest_first = sorted(items, key=lambda i: i.finished_at or i.created_at, reverse=True)
    old: dict[str, Item] = {}
    if keep_newest > 0:
        old.update((i.id, i) for i in newest_first[keep_newest:])
    if keep_days > 0:
        cutoff = now - keep_days * DAY
        old.update((i.id, i) for i in newest_first if (i.finished_at or i.created_at) < cutoff)
    return list(old.values())
