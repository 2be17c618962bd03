"""The item store on real SQLite: pagination, filters, atomic replace, recovery, indexes."""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import random
from pathlib import Path
from typing import Any

import pytest
from pony import orm
from support.disk import DiskSyncs

from appliance.engine.requests import MAX_URL_LENGTH
from appliance.errors import AppError
from appliance.store import Item, ItemStore, Page, StatusFilter
from appliance.store.collections import Collection
from appliance.store.database import sync_to_disk
from appliance.store.records import format_eta, format_speed, new_id
from appliance.store.search import TextSearch
from appliance.store.tasks import TaskStore


def make(store: ItemStore, n: int, **fields) -> list[Item]:
    items = [Item(id=new_id(), url=f"http://x.invalid/{i}", created_at=store.stamp(), **fields)
             for i in range(n)]
    store.insert(items)
    return items


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    item = Item(id=new_id(), url="http://x.invalid/a", title="é", cookies="c", cli="-f best",
                extras={"a": [1, 2]}, info={"duration": 3.5}, removed_options=["--exec"],
                file_size=2**40, created_at=store.stamp())
    store.insert([item])
    loaded = store.get(item.id)
    assert loaded is not None
    assert loaded.persisted() == item.persisted()
    assert "cookies" not in loaded.to_dict() and loaded.to_dict()["has_cookies"] is True


def test_a_page_reads_every_field_as_an_entity_would(tmp_path: Path) -> None:
    """Pages read plain columns (fast), single records go through Pony: the same record."""
    store = ItemStore(tmp_path / "db.sqlite")
    full = Item(id=new_id(), url="http://x.invalid/a", kind="done", status="finished",
                title="é", cookies="c", cli="-f best", auto_start=False, started_at=1.5,
                finished_at=2.5, file_size=2**40, downloaded_bytes=0, total_bytes=7,
                extras={"a": [1, {"b": None}]}, info={"duration": 3.5, "tags": ["x"]},
                removed_options=["--exec"], error="e", msg="m", created_at=store.stamp())
    bare = Item(id=new_id(), url="http://x.invalid/b", kind="done", status="error",
                created_at=store.stamp())
    store.insert([full, bare])
    listed = {i.id: i for i in store.page("done", 1, 10).items}
    for item in (full, bare):
        loaded = store.get(item.id)
        assert loaded is not None
        assert listed[item.id].persisted() == loaded.persisted() == item.persisted()
        assert listed[item.id].to_dict() == loaded.to_dict()
    assert listed[full.id].auto_start is False and listed[bare.id].auto_start is True


def test_pages_and_status_filters(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    finished = make(store, 25, kind="done", status="finished")
    make(store, 5, kind="done", status="error")
    make(store, 3, kind="queue", status="pending")
    page = store.page("done", 2, 10)
    assert page.total == 30 and page.total_pages == 3 and len(page.items) == 10
    oldest = store.page("done", 1, 3, newest_first=False)
    assert [i.id for i in oldest.items] == [i.id for i in finished[:3]]
    assert store.count("done", StatusFilter.parse("error")) == 5
    assert store.count("done", StatusFilter.parse("!error")) == 25
    assert store.status_counts()[("queue", "pending")] == 3


def test_creation_stamps_are_strictly_increasing(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    stamps = [store.stamp() for _ in range(10_000)]
    assert all(b > a for a, b in itertools.pairwise(stamps))


def test_replace_is_atomic(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    [placeholder] = make(store, 1)
    [existing] = make(store, 1)
    clash = Item(id=existing.id, url="http://x.invalid/dup", created_at=store.stamp())
    fresh = Item(id=new_id(), url="http://x.invalid/new", created_at=store.stamp())
    with pytest.raises((orm.core.TransactionIntegrityError, orm.core.CacheIndexError)):
        store.replace([placeholder.id], [fresh, clash])
    # nothing half-done: the placeholder is still there and the fresh entry was not stored
    assert store.get(placeholder.id) is not None
    assert store.get(fresh.id) is None


def test_requeue_interrupted(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    running = make(store, 2, status="downloading")
    make(store, 1, status="pending")
    make(store, 1, kind="done", status="finished")
    assert store.requeue_interrupted() == 2
    for item in running:
        loaded = store.get(item.id)
        assert loaded is not None and loaded.status == "pending"
        assert loaded.msg == "Interrupted; will resume"  # what the queue shows for it


def test_list_queries_use_indexes(tmp_path: Path) -> None:
    """The lists' order (creation time, then id) and an anchored walk's row value are the
    indexes' own order: no sort, no row read for a row a page skips."""
    store = ItemStore(tmp_path / "db.sqlite")
    order = "ORDER BY items.created_at DESC, items.id DESC LIMIT 50 OFFSET 100"
    queries = {
        "idx_items_kind_status_created_id": "kind = 'done' AND status = 'error'",
        "idx_items_kind_created_id_status": "kind = 'done' AND status != 'error'",
        "idx_items_kind_batch_created_id": "kind = 'done' AND batch_id = ''",
    }
    anchored = " AND (items.created_at, items.id) < (5.0, 'x')"
    with orm.db_session:
        for index, where in queries.items():
            for condition in (where, where + anchored):
                plan = " ".join(str(row) for row in store.db.execute(
                    f"EXPLAIN QUERY PLAN SELECT rowid FROM items WHERE {condition} {order}"
                ).fetchall())
                assert f"COVERING INDEX {index}" in plan, (condition, plan)
                assert "TEMP B-TREE" not in plan, (condition, plan)
                if condition != where:  # the anchor is a range of the index, not a filter
                    assert "(created_at,id)<(?,?)" in plan.replace(" ", ""), plan


def test_generator_queries_with_not_none_and_in(tmp_path: Path) -> None:
    """Pony's generator translation broke on new Pythons before 0.7.20; keep it exercised."""
    store = ItemStore(tmp_path / "db.sqlite")
    make(store, 2, kind="done", status="finished", batch_id="b")
    make(store, 1, kind="done", status="error")
    row = store._row
    with orm.db_session:
        # `not` on purpose: it is the construct that broke in the translator
        assert orm.count(r for r in row if not r.status == "finished") == 1  # noqa: SIM201
        assert orm.count(r for r in row if r.started_at is None) == 3
        assert orm.count(r for r in row if r.status in ("finished", "skip")) == 2
        assert orm.count(r for r in row if r.batch_id not in ("b",)) == 1


def test_wal_mode(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    with orm.db_session:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # commits reach the OS; the store puts the log on the disk where a write needs it
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_durable_writes_put_the_log_on_the_disk_engine_transitions_do_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    wal = str(tmp_path / "db.sqlite-wal")
    syncs = DiskSyncs(monkeypatch, under=tmp_path)

    [item] = make(store, 1)
    assert syncs.take() == [wal]  # an added item survives a power cut once acknowledged

    item.status = "downloading"
    store.save(item, durable=False)
    item.status = "finished"
    store.save(item, durable=False)
    assert syncs.take() == []
    assert store.get(item.id).status == "finished"  # written all the same
    item.title = "renamed by a person"
    store.save(item)  # a save is durable unless told otherwise
    assert syncs.take() == [wal]

    store.delete([item.id])
    assert syncs.take() == [wal]

    presets = Collection(store.entities.Preset, ("name", "cli"), "preset")
    created = presets.create({"name": "p", "cli": "-x"})
    presets.update(created["id"], {"name": "q"})
    presets.delete(created["id"])
    assert syncs.take() == [wal, wal, wal]


def test_a_lookup_by_name_follows_every_write(tmp_path: Path) -> None:
    """Names are looked up in memory (read once); each write here makes the next lookup read
    the table again, and what a lookup gives is the caller's own copy."""
    store = ItemStore(tmp_path / "db.sqlite")
    presets = Collection(store.entities.Preset, ("name", "cli"), "preset")
    assert presets.by_name("p") is None
    created = presets.create({"name": "p", "cli": "-x"})
    assert presets.by_name("p") == created
    presets.by_name("p")["cli"] = "changed by a caller"
    assert presets.by_name("p")["cli"] == "-x"
    presets.update(created["id"], {"cli": "-y"})
    assert presets.by_name("p")["cli"] == "-y"
    presets.update(created["id"], {"name": "q"})
    assert presets.by_name("p") is None and presets.by_name("q")["cli"] == "-y"
    with pytest.raises(AppError):  # a refused write changes nothing
        presets.create({"name": "q"})
    assert presets.by_name("q")["id"] == created["id"]
    presets.delete(created["id"])
    assert presets.by_name("q") is None
    assert presets.by_name(" q ") is None and presets.by_name("") is None


def test_a_closed_log_needs_no_sync(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    make(store, 1)
    store.close()  # the last connection checkpoints the log and removes it
    assert not (tmp_path / "db.sqlite-wal").exists()
    sync_to_disk(store.db)  # nothing to do, and no error


def test_kept_counts_match_the_table_after_any_writes(tmp_path: Path) -> None:
    """The (kind, status) counts the store keeps for pagination never drift from the rows."""
    import random

    store = ItemStore(tmp_path / "db.sqlite")
    rng = random.Random(7)
    statuses = ["pending", "downloading", "finished", "error", "skip"]
    items = make(store, 30, kind="queue", status="pending")
    assert store.count("queue") == 30  # the counts are loaded here, then kept
    for step in range(300):
        choice = rng.random()
        if choice < 0.4 and items:
            item = rng.choice(items)
            item.status = rng.choice(statuses)
            item.kind = "done" if item.status in {"finished", "error", "skip"} else "queue"
            store.save(item)
        elif choice < 0.6:
            items += make(store, rng.randint(1, 3), kind="queue", status="downloading")
        elif choice < 0.75 and items:
            gone = rng.sample(items, k=min(len(items), 2))
            store.delete([g.id for g in gone] + ["missing"])
            items = [i for i in items if i not in gone]
        elif choice < 0.85 and items:
            placeholder = items.pop()
            fresh = [Item(id=new_id(), url="http://x.invalid/p", created_at=store.stamp())
                     for _ in range(2)]
            store.replace([placeholder.id], fresh)
            items += fresh
        elif choice < 0.9:
            store.requeue_interrupted()
            for item in items:
                if item.kind == "queue" and item.status == "downloading":
                    item.status = "pending"
        if step % 50 == 0:
            with orm.db_session:
                rows = orm.select((r.kind, r.status, orm.count(r)) for r in store._row)[:]
            assert store.status_counts() == {(k, s): n for k, s, n in rows}
    for kind in ("queue", "done"):
        for status in [None, *[StatusFilter.parse(s) for s in ("finished", "!finished")]]:
            assert store.count(kind, status) == store.page(kind, 1, 1000, status=status).total
            assert store.count(kind, status) == len(store.page(kind, 1, 1000,
                                                               status=status).items)


def test_a_task_marks_entries_whatever_the_length_of_their_url(tmp_path: Path) -> None:
    """An entry is marked by its URL; an item's URL may be 8,192 characters long (a feed's
    longer), and a mark of one refused the whole list: "mark as downloaded" failed, and
    retention deleted nothing."""
    store = ItemStore(tmp_path / "db.sqlite")
    tasks = TaskStore(store.entities)
    [task] = tasks.create([{"name": "feed", "url": "https://feed.invalid/rss"}])
    long_url = "https://media.invalid/watch?v=" + "x" * MAX_URL_LENGTH
    assert tasks.mark(task["id"], [long_url, "https://media.invalid/a", long_url, ""]) == 2
    assert tasks.marked(task["id"]) == {long_url, "https://media.invalid/a"}
    assert tasks.mark(task["id"], [long_url]) == 0  # already marked
    assert tasks.unmark(task["id"], [long_url, "https://media.invalid/never"]) == 1
    assert tasks.marked(task["id"]) == {"https://media.invalid/a"}


def test_an_id_given_twice_is_deleted_once(tmp_path: Path) -> None:
    """``DELETE /api/history`` with an id twice: the kept total went one below the rows, and
    the history's last item fell off its last page."""
    store = ItemStore(tmp_path / "db.sqlite")
    first, second, third = make(store, 3, kind="done", status="finished")
    assert [i.id for i in store.delete([first.id, first.id, "missing"])] == [first.id]
    store.replace([second.id, second.id], [])
    assert store.count("done") == 1 and store.status_counts() == {("done", "finished"): 1}
    page = store.page("done", 1, 10)
    assert page.total == 1 and [i.id for i in page.items] == [third.id]


def test_a_big_deletion_gives_back_every_record_as_stored(tmp_path: Path) -> None:
    """Deleting a history of 20,000 failed items took 35 s through the ORM, the database's
    write lock and every state write of the engine held the while; it runs in SQL now, 500
    ids a statement: each record comes back whole, once, in the order asked."""
    store = ItemStore(tmp_path / "db.sqlite")
    gone = make(store, 1200, kind="done", status="error", title="a failed one",
                info={"duration": 3}, extras={"k": [1]}, removed_options=["--exec"],
                started_at=1.5, file_size=7, cookies="SID=1")
    kept = make(store, 3, kind="done", status="finished", title="a kept one")
    asked = [i.id for i in reversed(gone)]
    stored = {i.id: store.get(i.id) for i in gone}
    deleted = store.delete([*asked, asked[0], "missing", " padded "])
    assert [i.id for i in deleted] == asked
    assert deleted == [stored[item_id] for item_id in asked]
    assert store.status_counts() == {("done", "finished"): 3}
    assert store.records(asked) == []
    found = store.page("done", 1, 10, search=TextSearch.parse("failed"))
    assert (found.total, found.items) == (0, [])
    assert [i.id for i in store.page("done", 1, 10).items] == [i.id for i in reversed(kept)]
    with orm.db_session:  # the search index follows the rows
        store.db.execute("INSERT INTO items_search (items_search) VALUES ('integrity-check')")

def test_a_status_filter_picks_the_ids_to_delete(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    finished = make(store, 2, kind="done", status="finished")
    failed = make(store, 1, kind="done", status="error")
    make(store, 1, kind="queue", status="error")  # the other list: never picked
    assert set(store.ids_matching("done", StatusFilter("error"))) == {failed[0].id}
    assert set(store.ids_matching("done", StatusFilter("error", exclude=True))) == {
        i.id for i in finished}


def test_a_page_past_the_end_is_empty_with_the_total(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    make(store, 3, kind="done", status="finished")
    assert store.page("done", 9, 2) == Page([], 3, 9, 2)
    assert store.history(2) == store.page("done", 1, 2).items


def test_batches_are_summed_per_batch_newest_first(tmp_path: Path) -> None:
    """The history's items only: the queue's live figures are the engine's (Flasharr's view
    adds them from memory)."""
    store = ItemStore(tmp_path / "db.sqlite")
    old = make(store, 2, kind="done", status="finished", batch_id="b1", batch_name="Old list",
               total_bytes=100, downloaded_bytes=100)
    [failed] = make(store, 1, kind="done", status="error", batch_id="b1")
    [running] = make(store, 1, status="downloading", batch_id="b1", total_bytes=50,
                     downloaded_bytes=10)
    make(store, 1, status="pending", batch_id="b2", batch_name="New list")
    new = make(store, 1, kind="done", status="finished", batch_id="b3", batch_name="New")
    make(store, 1, kind="done", status="finished", total_bytes=7)  # of no batch
    assert [i.id for i in store.batch("b1")] == [*(i.id for i in old), failed.id, running.id]
    expected = [
        {"batch_id": "b3", "batch_name": "New", "statuses": {"finished": 1},
         "total_bytes": 0, "downloaded_bytes": 0, "created_at": new[0].created_at},
        {"batch_id": "b1", "batch_name": "Old list", "statuses": {"finished": 2, "error": 1},
         "total_bytes": 200, "downloaded_bytes": 200, "created_at": old[0].created_at},
    ]
    assert store.batch_totals() == expected
    assert [store.batch_count(b) for b in ("b1", "b2", "b3", "", "none")] == [3, 0, 1, 0, 0]
    # Its end moves the running one into the history's totals.
    store.save(dataclasses.replace(running, kind="done", status="finished",
                                   downloaded_bytes=50))
    b1 = store.batch_totals()[1]
    assert b1["statuses"] == {"finished": 3, "error": 1}
    assert (b1["total_bytes"], b1["downloaded_bytes"]) == (250, 250)


def totals_read_afresh(path: Path) -> list[dict[str, Any]]:
    fresh = ItemStore(path)
    try:
        return fresh.batch_totals()
    finally:
        fresh.close()


def test_kept_batch_totals_are_what_sql_reads_after_every_kind_of_write(tmp_path: Path
                                                                        ) -> None:
    """Kept by the writer (grouping every batched item in SQL took 185 ms at 100,000 items
    at every poll of Flasharr's lists): after each write they are what a fresh store's SQL
    reads, the first creation time and the name of a batch whose holder left included."""
    path = tmp_path / "db.sqlite"
    store = ItemStore(path)
    rng = random.Random(7)
    items = make(store, 3, kind="done", status="finished", batch_id="a", batch_name="A",
                 total_bytes=10)
    store.batch_totals()  # kept from here on
    items += make(store, 2, kind="done", status="error", batch_id="a", batch_name="B")
    items += make(store, 2, kind="done", status="finished")  # of no batch
    items += make(store, 3, status="pending", batch_id="b", batch_name="Later")
    checks = 0

    def check() -> None:
        nonlocal checks
        assert store.batch_totals() == totals_read_afresh(path)
        standalone = store.window("done", 0, 100, standalone=True)[1]
        assert standalone == len([i for i in items if i.kind == "done" and not i.batch_id])
        checks += 1

    check()
    items += make(store, 1, kind="done", status="finished", batch_id="a", batch_name="Z")
    # The first of batch a's finished items (not its greatest name): another is first now.
    store.delete([items[0].id])
    items.pop(0)
    check()
    for step in range(40):
        live = [i for i in items if store.get(i.id) is not None]
        action = rng.choice(["end", "delete", "replace", "insert", "edit"])
        if action == "end" and (queued := [i for i in live if i.kind == "queue"]):
            item = rng.choice(queued)
            item.kind, item.status = "done", rng.choice(["finished", "error", "cancelled"])
            item.downloaded_bytes = item.total_bytes = rng.randrange(1000)
            store.save(item)
        elif action == "delete" and live:
            # The batch's first item and its greatest name go now and then.
            gone = rng.sample(live, min(len(live), rng.choice([1, 2])))
            store.delete([i.id for i in gone])
            items = [i for i in items if i not in gone]
        elif action == "replace" and live:
            [placeholder] = rng.sample(live, 1)
            entries = [Item(id=new_id(), url=f"http://x.invalid/e{step}-{n}",
                            created_at=store.stamp(), batch_id=placeholder.batch_id or "c",
                            batch_name=rng.choice(["C", "Z", ""]), kind="done",
                            status="skip", total_bytes=n) for n in range(2)]
            store.replace([placeholder.id], entries)
            items = [i for i in items if i is not placeholder] + entries
        elif action == "insert":
            items += make(store, rng.randrange(1, 3), kind=rng.choice(["done", "queue"]),
                          status="finished", batch_id=rng.choice(["a", "b", ""]),
                          batch_name=rng.choice(["A", "Y", ""]), total_bytes=3)
        elif live:
            [item] = rng.sample(live, 1)
            item.batch_name = rng.choice(["A", "Q", ""])
            item.total_bytes = rng.randrange(100)
            store.save(item)
        check()
    assert checks == 42


def test_a_page_of_a_batch_newest_first_with_its_total(tmp_path: Path) -> None:
    """A task's items page (a task's batch grows for years)."""
    store = ItemStore(tmp_path / "db.sqlite")
    batch = make(store, 5, kind="done", status="finished", batch_id="task-1")
    make(store, 2, kind="done", status="finished", batch_id="task-2")
    make(store, 1, status="pending")  # of no batch

    def page(offset: int, limit: int) -> tuple[list[str], int]:
        items, total = store.batch_page("task-1", offset, limit)
        return [i.id for i in items], total

    newest = [i.id for i in reversed(batch)]
    assert page(0, 2) == (newest[:2], 5)
    assert page(3, 9) == (newest[3:], 5)
    assert page(5, 9) == ([], 5)
    assert store.batch_page("task-3", 0, 9) == ([], 0)
    [first] = store.batch_page("task-1", 4, 1)[0]
    assert first == store.get(batch[0].id)  # every field, as stored

def test_a_window_of_the_queue(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    pending = make(store, 3, status="pending")
    [batched] = make(store, 1, status="pending", batch_id="b")
    [running] = make(store, 1, status="downloading")
    make(store, 2, kind="done", status="finished")

    def window(offset: int, limit: int, **options: Any) -> tuple[list[str], int]:
        items, total = store.window("queue", offset, limit, **options)
        return [i.id for i in items], total

    assert window(1, 2) == ([batched.id, pending[2].id], 5)
    assert window(0, 2, newest_first=False) == ([pending[0].id, pending[1].id], 5)
    assert window(0, 9, statuses=["downloading"]) == ([running.id], 1)
    assert window(0, 9, statuses=["pending"], standalone=True) == (
        [pending[2].id, pending[1].id, pending[0].id], 3)
    assert window(5, 9) == ([], 5) and window(0, 0) == ([], 5)


def test_items_sharing_a_file(tmp_path: Path) -> None:
    """Retention deletes a task's old items and their files, but not a file another item
    records in the same folder (a download by hand that yt-dlp then found on disk)."""
    store = ItemStore(tmp_path / "db.sqlite")
    folder = str(tmp_path / "downloads")
    [shared, alone, elsewhere, bare] = make(store, 4, kind="done", status="finished")
    for item, name, where in ((shared, "a.mp4", folder), (alone, "b.mp4", folder),
                              (elsewhere, "c.mp4", folder), (bare, "", "")):
        item.filename, item.download_folder = name, where
        store.save(item)
    [other, moved] = make(store, 2, kind="done", status="finished")
    other.filename, other.download_folder = "a.mp4", folder
    moved.filename, moved.download_folder = "c.mp4", str(tmp_path / "old")
    store.save(other)
    store.save(moved)
    assert store.sharing_a_file([shared, alone, elsewhere, bare]) == {shared.id}
    assert store.sharing_a_file([shared, other]) == set()  # both leave: no one keeps it


def test_download_folders_are_recorded_once(tmp_path: Path) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    assert store.download_folders() == set()
    for path in (tmp_path / "a", tmp_path / "b", tmp_path / "a"):
        store.add_download_folder(path)
    assert store.download_folders() == {str(tmp_path / "a"), str(tmp_path / "b")}


def test_an_item_as_clients_get_it() -> None:
    """YTPTube's ItemDTO: both ids, the creation time in nanoseconds and as an RFC 2822
    date, progress with the contract's text forms; never the cookies or the server's
    folder."""
    item = Item(id="i", url="https://media.invalid/v", status="downloading", cookies="secret",
                folder="sub", download_folder="/srv/downloads", created_at=1_700_000_000.5,
                percent=12.5, speed=1536.0, eta=3725.9)
    data = item.to_dict()
    assert "cookies" not in data and "download_folder" not in data
    assert (data["id"], data["_id"], data["has_cookies"], data["download_dir"]) == (
        "i", "i", True, "sub")
    assert data["timestamp"] == 1_700_000_000_500_000_000
    assert data["datetime"] == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert {k: data[k] for k in ("percent", "progress", "speed", "eta", "speed_text",
                                 "eta_text")} == {
        "percent": 12.5, "progress": 12.5, "speed": 1536.0, "eta": 3725.9,
        "speed_text": "1.5 KiB/s", "eta_text": "01:02:05"}
    item.status, item.percent, item.speed, item.eta = "finished", None, None, None
    done = item.to_dict()
    assert (done["percent"], done["progress"], done["speed_text"], done["eta_text"]) == (
        100.0, 100.0, None, None)
    assert Item(id="j", url="u").to_dict()["has_cookies"] is False


@pytest.mark.parametrize(("speed", "text"), [
    (0, "0 B/s"), (1023.4, "1023 B/s"), (1024, "1.0 KiB/s"), (5 * 1024**2, "5.0 MiB/s"),
    (3.25 * 1024**3, "3.2 GiB/s"), (2048 * 1024**3, "2048.0 GiB/s"),
])
def test_speeds_in_words(speed: float, text: str) -> None:
    assert format_speed(speed) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "00:00:00"), (59.9, "00:00:59"), (61, "00:01:01"), (360_000, "100:00:00"),
])
def test_times_left_in_words(seconds: float, text: str) -> None:
    assert format_eta(seconds) == text


def test_the_package_names_load_on_first_use() -> None:
    """``appliance.store`` imports nothing of the ORM until one of its names is asked for
    (the command line's ``store.backups`` goes through it; see test_database_backup)."""
    package = importlib.import_module("appliance.store")
    from appliance.store import items, lists, records

    assert (package.Item, package.ItemStore, package.Page, package.StatusFilter) == (
        records.Item, items.ItemStore, lists.Page, lists.StatusFilter)
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = package.Nothing


def test_a_mark_made_is_no_longer_pending_and_unmarking_all_settles_it(tmp_path: Path
                                                                       ) -> None:
    """A task whose mark waited (created with "mark as downloaded" while its feed was
    away) has it made by the next ``mark``; ``unmark`` of every entry drops it."""
    store = ItemStore(tmp_path / "db.sqlite")
    tasks = TaskStore(store.entities)
    first, second = tasks.create([{"name": "a", "url": "https://feed.invalid/a",
                                   "mark_pending": True},
                                  {"name": "b", "url": "https://feed.invalid/b",
                                   "mark_pending": True}])
    assert tasks.mark(first["id"], ["https://media.invalid/1"]) == 1
    assert [tasks.get(t["id"])["mark_pending"] for t in (first, second)] == [False, True]
    assert tasks.unmark(second["id"], ["https://media.invalid/none"]) == 0  # some: kept
    assert tasks.get(second["id"])["mark_pending"] is True
    assert tasks.unmark(second["id"]) == 0
    assert tasks.get(second["id"])["mark_pending"] is False


def test_a_window_of_one_holds_one_and_none_of_nothing(tmp_path: Path) -> None:
    """Flasharr's lists ask for what is left of a page: one, or nothing at all."""
    store = ItemStore(tmp_path / "db.sqlite")
    items = make(store, 3, kind="done", status="finished")
    assert [i.id for i in store.window("done", 0, 1)[0]] == [items[-1].id]
    assert [i.id for i in store.window("done", 2, 1, newest_first=False)[0]] == [items[-1].id]
    # SQLite reads LIMIT -1 as no limit at all: a window of less than nothing is empty.
    assert store.window("done", 0, 0) == ([], 3)
    assert store.window("done", 1, -1) == ([], 3)
    assert store.window("done", 3, 5) == ([], 3)


def test_kept_batch_totals_when_a_batch_or_the_items_of_no_batch_go_whole(tmp_path: Path
                                                                         ) -> None:
    store = ItemStore(tmp_path / "db.sqlite")
    loose = make(store, 2, kind="done", status="finished")
    [failed] = make(store, 1, kind="done", status="error")
    gone = make(store, 2, kind="done", status="finished", batch_id="gone", batch_name="G")
    unnamed = make(store, 2, kind="done", status="error", batch_id="unnamed")
    store.batch_totals()  # kept from here on
    # Flasharr's history filters count the items of no batch by status.
    assert store.window("done", 0, 10, statuses=("error",), standalone=True)[1] == 1
    assert store.window("done", 0, 10, statuses=("finished", "skip"),
                        standalone=True)[1] == 2
    store.delete([i.id for i in gone])  # a whole batch: no batch of nothing is left
    store.delete([unnamed[0].id])  # its first: read again, its name still none
    assert store.batch_totals() == [
        {"batch_id": "unnamed", "batch_name": "", "statuses": {"error": 1}, "total_bytes": 0,
         "downloaded_bytes": 0, "created_at": unnamed[1].created_at}]
    assert store.window("done", 0, 10, standalone=True)[1] == 3
    store.delete([i.id for i in [*loose, failed]])  # every item of no batch
    assert store.window("done", 0, 10, standalone=True)[1] == 0
    assert store.batch_count("unnamed") == 1


def test_an_items_snapshot_is_a_copy_of_every_field_that_its_changes_leave_alone() -> None:
    item = Item(id="a" * 32, url="https://example.com/v", title="One", status="downloading",
                extras={"k": 1}, downloaded_bytes=10)
    snapshot = item.snapshot()
    assert snapshot == dataclasses.replace(item) and snapshot is not item
    snapshot.status, snapshot.downloaded_bytes = "finished", 99
    assert (item.status, item.downloaded_bytes) == ("downloading", 10)
