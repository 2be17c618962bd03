"""Checks of the queue's kept counts (engine/queue_tally.py) against a full scan."""

from __future__ import annotations

import math
from collections import Counter

from appliance.engine.engine import DownloadEngine
from appliance.engine.queue_tally import QueueBatch, count_key, summed
from appliance.store import Item


def assert_same_batches(kept: dict[str, QueueBatch], items: list[Item]) -> None:
    """``kept`` are the sums of ``items``' batches, but for the order of a float sum (its last
    digit) and which of a batch's names is its first (its items' arrivals or their filing)."""
    scanned = summed(items)
    assert kept.keys() == scanned.keys()
    for batch_id, batch in kept.items():
        other = scanned[batch_id]
        assert (batch.counts, batch.total_bytes, batch.downloaded_bytes, batch.created_at) \
            == (other.counts, other.total_bytes, other.downloaded_bytes, other.created_at)
        names = {i.batch_name for i in items if i.batch_id == batch_id and i.batch_name}
        assert batch.name in names if names else batch.name == ""
        assert math.isclose(batch.percent, other.percent, abs_tol=1e-9)
        assert math.isclose(batch.speed, other.speed, abs_tol=1e-9)


def assert_counts_agree(engine: DownloadEngine) -> None:
    with engine._lock:
        items = [item.snapshot() for item in engine._items.values()]
        counts, batches = engine._queue_counts(), engine._queue_batches()
    assert counts == Counter(count_key(item) for item in items)
    assert_same_batches(batches, items)
