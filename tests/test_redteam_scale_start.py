"""The start on a big queue: the engine holds the whole queue from its start (a subscribed
back catalogue queues thousands), read in one select whose rows cost what a list's rows
cost. As entities (Pony parses and checks each value on its own), 3,000 queued items held
the start 0.5 s, and 20,000 3 s, before any request was answered. Counted in Python calls,
not timed."""

from __future__ import annotations

from pathlib import Path

from support.python_calls import calls

from appliance.store import Item, ItemStore
from appliance.store.records import DONE, QUEUE, new_id

QUEUED = 500


def test_the_queue_read_at_the_start_costs_little_per_item_and_is_every_field(
        tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "appliance.db")
    try:
        queued = []
        for n in range(QUEUED):
            stamp = store.stamp()
            queued.append(Item(
                id=new_id(), url=f"https://media.example/watch?v={n}", kind=QUEUE,
                status="pending", title=f"Item {n}", auto_start=bool(n % 2),
                created_at=stamp, updated_at=stamp, batch_id=f"batch-{n // 50}",
                info={"id": str(n), "formats": [{"format_id": "18"}]},
                extras={"playlist_index": n}, removed_options=["--exec"] if n % 3 else [],
                downloaded_bytes=n or None, cookies="# Netscape" if n % 7 == 0 else ""))
        store.insert(queued)
        store.insert([Item(id=new_id(), url=f"https://h.example/{n}", kind=DONE,
                           status="finished", created_at=store.stamp()) for n in range(50)])
        counted, read = calls(store.queue)
        assert [i.id for i in read] == [i.id for i in queued]  # oldest first, no history
        assert read == [store.get(i.id) for i in queued]  # as Pony reads each field
        # (~340 calls a row as entities, ~65 as columns)
        assert counted < 100 * QUEUED, counted
    finally:
        store.close()
