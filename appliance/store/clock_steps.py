"""Finished items dated again after a forward step of the clock (``appliance.clock_steps``)."""

from __future__ import annotations

from ..clock_steps import Step
from .database import write_session
from .items import ItemStore
from .records import DONE


def redate_finished(store: ItemStore, step: Step) -> int:
    """Move ``finished_at`` of the items that finished within ``step``'s window by its
    seconds; how many moved. The row's other times are left: only retention by age reads
    this one to delete."""
    with write_session(store.db):
        return store.db.execute(
            "UPDATE items SET finished_at = finished_at + $seconds WHERE +kind = $done "
            "AND finished_at >= $since AND finished_at < $until",
            {"seconds": step.seconds, "done": DONE, "since": step.since, "until": step.until},
        ).rowcount
