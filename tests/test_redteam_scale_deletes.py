"""Deleting many items at once: the write lock is held for the delete, not for making the
records it answers with. The records of 20,000 deleted items (their info read as JSON)
were made inside the write transaction: the engine's state writes (a download's progress,
its end) waited another second for them."""

from __future__ import annotations

import sys
from pathlib import Path

from appliance.store import Item, ItemStore
from appliance.store.records import DONE, new_id

COUNT = 600  # more than one statement's 500 ids


def test_the_records_of_a_delete_are_made_once_its_transaction_is_committed(
        tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "appliance.db")
    try:
        items = [Item(id=new_id(), url=f"https://media.example/{n}", kind=DONE,
                      status="error" if n % 2 else "finished", created_at=store.stamp(),
                      batch_id=f"batch-{n // 40}", total_bytes=n, info={"id": str(n)},
                      extras={"n": n}) for n in range(COUNT)]
        store.insert(items)
        seen: list[str] = []  # what happened, in order: "commit" and "record"

        def profile(frame: object, event: str, arg: object) -> None:
            if event == "c_call" and getattr(arg, "__name__", "") == "commit":
                seen.append("commit")
            elif event == "call" and frame.f_code.co_name == "_record_of_columns":  # type: ignore[attr-defined]
                seen.append("record")

        sys.setprofile(profile)
        try:
            deleted = store.delete([i.id for i in reversed(items)])
        finally:
            sys.setprofile(None)
        assert seen.count("record") == COUNT and "commit" in seen
        assert "record" not in seen[:seen.index("commit")]
        # as stored, in the order asked; the kept counts and batch totals follow
        assert deleted == list(reversed(items))
        assert store.count(DONE) == 0 and store.batch_totals() == []
        assert store.status_counts() == {}
    finally:
        store.close()
