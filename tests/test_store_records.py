"""The store's small records on real SQLite: scheduled tasks, their runs and marks, the
notification targets, and the named tables (presets, conditions, download fields)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.disk import DiskSyncs

from appliance.errors import CONFLICT, AppError
from appliance.store import ItemStore
from appliance.store.collections import Collection
from appliance.store.notifications import NotificationStore
from appliance.store.tasks import (
    FAILED,
    INTERRUPTED,
    MAX_LOG_LINES,
    RUNNING,
    SUCCESS,
    TaskStore,
)


@pytest.fixture
def store(tmp_path: Path) -> ItemStore:
    return ItemStore(tmp_path / "db.sqlite")


@pytest.fixture
def tasks(store: ItemStore) -> TaskStore:
    return TaskStore(store.entities)


def conflict(message: str) -> Any:
    """A refusal with 409 and ``message``."""
    return pytest.raises(AppError, check=lambda e: (e.code, e.status, e.message)
                         == (CONFLICT, 409, message))


def test_a_new_task_reads_back_with_its_defaults(tasks: TaskStore) -> None:
    [task] = tasks.create([{"name": "feed", "url": "https://feed.invalid/rss"}])
    created_at = task.pop("created_at")
    assert isinstance(created_at, float)
    # What clients get for a task nobody has run yet: empty values, never null.
    assert task == {
        "id": task["id"], "name": "feed", "url": "https://feed.invalid/rss", "timer": "",
        "preset": "", "folder": "", "template": "", "cli": "", "cookies": "", "config": {},
        "auto_start": True, "handler_enabled": True, "enabled": True, "published_after": "",
        "keep_newest": 0, "keep_days": 0, "last_run_at": None, "last_status": "",
        "last_error": "", "last_found": 0, "last_queued": 0, "failures": 0,
        "mark_pending": False,
    }
    assert tasks.get(task["id"]) == {**task, "created_at": created_at}


def test_tasks_are_listed_paged_and_found_by_id(tasks: TaskStore) -> None:
    made = tasks.create([{"name": f"t{n}", "url": f"https://feed.invalid/{n}"}
                         for n in range(5)])
    ids = [t["id"] for t in made]
    assert [t["id"] for t in tasks.all()] == ids
    assert tasks.names() == {f"t{n}" for n in range(5)}
    page, total = tasks.page(2, 2)
    assert total == 5 and [t["name"] for t in page] == ["t2", "t3"]
    assert tasks.page(3, 2) == ([made[4]], 5)
    assert tasks.page(4, 2) == ([], 5)  # past the end
    assert [t["id"] for t in tasks.some([ids[3], 10**6, ids[1]])] == [ids[1], ids[3]]
    assert tasks.some([]) == [] and tasks.get(10**6) is None


def test_task_names_are_unique(tasks: TaskStore) -> None:
    first, second = tasks.create([{"name": "a", "url": "https://feed.invalid/a"},
                                  {"name": "b", "url": "https://feed.invalid/b"}])
    with conflict("A task named 'a' already exists."):
        tasks.create([{"name": "c", "url": "https://feed.invalid/c"},
                      {"name": "a", "url": "https://feed.invalid/a2"}])
    assert tasks.names() == {"a", "b"}  # all or none: 'c' was not stored either
    with conflict("A task named 'b' already exists."):
        tasks.update(first["id"], {"name": "b"})
    renamed = tasks.update(first["id"], {"name": "a", "timer": "5 * * * *"})
    assert renamed is not None and (renamed["name"], renamed["timer"]) == ("a", "5 * * * *")
    assert tasks.update(second["id"], {"enabled": False})["enabled"] is False
    assert tasks.update(10**6, {"name": "x"}) is None


def test_deleting_a_task_forgets_its_marks(tasks: TaskStore) -> None:
    first, second = tasks.create([{"name": "a", "url": "https://feed.invalid/a"},
                                  {"name": "b", "url": "https://feed.invalid/b"}])
    tasks.mark(first["id"], ["https://media.invalid/1"])
    tasks.mark(second["id"], ["https://media.invalid/1", "https://media.invalid/2"])
    deleted = tasks.delete(first["id"])
    assert deleted is not None and deleted["name"] == "a"
    assert tasks.get(first["id"]) is None and tasks.delete(first["id"]) is None
    assert tasks.marked(first["id"]) == set()
    assert tasks.marked(second["id"]) == {"https://media.invalid/1", "https://media.invalid/2"}
    assert tasks.unmark(second["id"]) == 2 and tasks.marked(second["id"]) == set()


def test_a_run_is_recorded_from_start_to_end(tasks: TaskStore) -> None:
    [task] = tasks.create([{"name": "feed", "url": "https://feed.invalid/rss"}])
    started = tasks.start_execution(task, "manual")
    assert started == {
        "id": started["id"], "task_id": task["id"], "task_name": "feed", "trigger": "manual",
        "status": RUNNING, "started_at": started["started_at"], "finished_at": None,
        "found": 0, "queued": 0, "skipped": 0, "failed": 0, "error": "", "handler": "",
    }
    log = [f"line {n}" for n in range(MAX_LOG_LINES + 3)]
    after = tasks.finish_run(task["id"], started["id"], log,
                             {"status": SUCCESS, "found": 4, "queued": 3, "skipped": 1},
                             {"last_status": SUCCESS, "last_found": 4, "last_queued": 3,
                              "last_run_at": started["started_at"]})
    assert after is not None
    assert (after["last_status"], after["last_found"], after["last_queued"]) == (SUCCESS, 4, 3)
    ended = tasks.execution(started["id"], with_log=True)
    assert ended is not None and ended["status"] == SUCCESS
    assert (ended["found"], ended["queued"], ended["skipped"]) == (4, 3, 1)
    assert ended["finished_at"] >= ended["started_at"]
    assert ended["log"] == log[-MAX_LOG_LINES:]  # the newest lines only
    assert "log" not in tasks.execution(started["id"])
    assert tasks.execution(10**6) is None
    tasks.delete(task["id"])
    again = tasks.start_execution(task, "timer")
    assert tasks.finish_run(task["id"], again["id"], [], {"status": FAILED}, {}) is None
    assert tasks.execution(again["id"])["status"] == FAILED  # the run's end, even so


def test_runs_are_listed_newest_first_by_task_and_status(tasks: TaskStore) -> None:
    first, second = tasks.create([{"name": "a", "url": "https://feed.invalid/a"},
                                  {"name": "b", "url": "https://feed.invalid/b"}])
    runs = [tasks.start_execution(task, "timer") for task in (first, second, first, first)]
    tasks.finish_execution(runs[0]["id"], [], status=FAILED, error="boom")
    tasks.finish_execution(runs[1]["id"], [], status=SUCCESS)

    def ids(**query: Any) -> tuple[list[int], int]:
        page, total = tasks.executions(query.pop("page", 1), query.pop("per_page", 10),
                                       **query)
        return [r["id"] for r in page], total

    assert ids() == ([r["id"] for r in reversed(runs)], 4)
    assert ids(task_id=first["id"]) == ([runs[3]["id"], runs[2]["id"], runs[0]["id"]], 3)
    assert ids(task_id=first["id"], status=FAILED) == ([runs[0]["id"]], 1)
    assert ids(status=RUNNING, page=2, per_page=1) == ([runs[2]["id"]], 2)
    assert ids(page=2, per_page=2) == ([runs[1]["id"], runs[0]["id"]], 4)
    assert ids(per_page=2) == ([runs[3]["id"], runs[2]["id"]], 4)
    assert ids(page=5, per_page=1) == ([], 4)
    assert tasks.execution(runs[0]["id"])["error"] == "boom"


def test_runs_a_crash_left_are_interrupted_and_old_runs_pruned(tasks: TaskStore) -> None:
    [task] = tasks.create([{"name": "feed", "url": "https://feed.invalid/rss"}])
    runs = [tasks.start_execution(task, "timer") for _ in range(5)]
    for run in runs[:3]:
        tasks.finish_execution(run["id"], [], status=SUCCESS)
    interrupted = tasks.interrupted()
    assert [r["id"] for r in interrupted] == [runs[3]["id"], runs[4]["id"]]
    assert all(r["status"] == INTERRUPTED and r["finished_at"] for r in interrupted)
    assert interrupted[0]["error"] == (
        "The service stopped during this run; it runs again at start.")
    assert tasks.interrupted() == []
    still = tasks.start_execution(task, "manual")
    assert tasks.prune_executions(2) == 3  # the newest two finished ones stay
    page, total = tasks.executions(1, 10)
    assert total == 3
    assert [r["id"] for r in page] == [still["id"], runs[4]["id"], runs[3]["id"]]
    assert tasks.prune_executions(2) == 0


def test_notification_targets(store: ItemStore) -> None:
    targets = NotificationStore(store.entities.NotificationTarget)
    request = {"type": "json", "method": "POST", "url": "https://hook.invalid/a"}
    first = targets.create({"name": "a", "on": ["item_completed"], "presets": [],
                            "enabled": True, "request": request, "ignored": 1})
    assert first == {"id": first["id"], "name": "a", "on": ["item_completed"], "presets": [],
                     "enabled": True, "request": request, "last_status": None,
                     "last_error": None, "last_sent_at": None}
    second = targets.create({"name": "b", "on": [], "presets": ["default"],
                             "enabled": False, "request": request})
    with conflict("A notification target named 'a' already exists."):
        targets.create({**second, "name": "a"})
    with conflict("A notification target named 'b' already exists."):
        targets.update(first["id"], {**first, "name": "b"})
    assert targets.update(10**6, first) is None
    changed = targets.update(first["id"], {**first, "on": [], "enabled": False})
    assert changed is not None and (changed["on"], changed["enabled"]) == ([], False)

    targets.record_delivery(first["id"], False, "x" * 3000, 12.5)
    failed = targets.get(first["id"])
    assert failed is not None and (failed["last_status"], failed["last_sent_at"]) == (
        "failed", 12.5)
    assert failed["last_error"] == "x" * 2000  # bounded
    targets.record_delivery(first["id"], True, "", 13.0)
    assert targets.get(first["id"])["last_status"] == "ok"
    assert targets.get(first["id"])["last_error"] is None
    targets.record_delivery(10**6, True, "", 1.0)  # deleted meanwhile: nothing to record

    assert [t["id"] for t in targets.all()] == [first["id"], second["id"]]
    assert targets.page(1, 1) == ([targets.get(first["id"])], 2)
    assert targets.page(2, 1) == ([targets.get(second["id"])], 2)
    assert targets.page(3, 1) == ([], 2)
    assert targets.delete(second["id"])["name"] == "b"
    assert targets.delete(second["id"]) is None and targets.get(second["id"]) is None


def test_named_tables(store: ItemStore) -> None:
    presets = Collection(store.entities.Preset, ("name", "cli", "priority"), "preset",
                         order=lambda r: (-r.priority, r.name))
    made = [presets.create({"name": name, "cli": "", "priority": priority})
            for name, priority in (("c", 0), ("a", 0), ("b", 5))]
    assert [p["name"] for p in presets.all()] == ["b", "a", "c"]  # the order given
    assert presets.page(1, 2) == ([presets.by_name("b"), presets.by_name("a")], 3)
    assert presets.page(2, 2) == ([presets.by_name("c")], 3)
    assert presets.get(made[0]["id"]) == made[0] and presets.get(10**6) is None
    with conflict("A preset named 'a' already exists."):
        presets.update(made[0]["id"], {"name": "a"})
    assert presets.get(made[0]["id"])["name"] == "c"
    assert presets.update(10**6, {"name": "z"}) is None
    assert presets.delete(10**6) is None

    fields = Collection(store.entities.DlField, ("name", "field", "kind"), "download field")
    made = [fields.create({"name": n, "field": "--x", "kind": "string"}) for n in "zy"]
    assert [f["name"] for f in fields.all()] == ["z", "y"]  # no order given: by id
    assert fields.delete(made[0]["id"]) == made[0] and fields.all() == [made[1]]


def racing(store_class: type, first: Callable[[], object], second: Callable[[], object]
           ) -> tuple[object, object]:
    """Two requests that both find a name free: each checks the name before either writes,
    then ``first`` commits and ``second`` after it. What each returned or raised."""
    checked = threading.Barrier(2, timeout=30)
    first_done = threading.Event()
    check = store_class._check_name
    state = threading.local()

    def checked_then_wait(self: object, *args: object) -> None:
        check(self, *args)
        if getattr(state, "waited", True):  # a write of several names waits once
            return
        state.waited = True
        checked.wait()
        if state.second:
            assert first_done.wait(timeout=30)

    outcomes: dict[bool, object] = {}

    def run(write: Callable[[], object], second: bool) -> None:
        state.waited, state.second = False, second
        try:
            outcomes[second] = write()
        except Exception as exc:  # the outcome under test
            outcomes[second] = exc
        if not second:
            first_done.set()

    threads = [threading.Thread(target=run, args=(write, n == 1))
               for n, write in enumerate((first, second))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_class, "_check_name", checked_then_wait)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    return outcomes[False], outcomes[True]


def one_conflict(outcomes: tuple[object, object], message: str) -> None:
    """The first write stored, the second refused with 409 and ``message``."""
    stored, refused = outcomes
    assert not isinstance(stored, Exception), stored
    assert isinstance(refused, AppError), refused
    assert (refused.status, refused.message) == (409, message)


def test_a_name_taken_by_a_racing_request_is_a_conflict(store: ItemStore,
                                                        tasks: TaskStore) -> None:
    """Both requests found the name free; the second to commit got a 500 (the database's
    unique index refused it) where a 409 was due."""
    presets = Collection(store.entities.Preset, ("name", "cli"), "preset")
    one_conflict(racing(Collection,
                        lambda: presets.create({"name": "p", "cli": ""}),
                        lambda: presets.create({"name": "p", "cli": "-x"})),
                 "A preset named 'p' already exists.")
    other = presets.create({"name": "q"})
    one_conflict(racing(Collection,
                        lambda: presets.create({"name": "r"}),
                        lambda: presets.update(other["id"], {"name": "r"})),
                 "A preset named 'r' already exists.")
    assert {p["name"] for p in presets.all()} >= {"p", "r"}

    one_conflict(racing(TaskStore,
                        lambda: tasks.create([{"name": "t", "url": "https://feed.invalid/1"}]),
                        lambda: tasks.create([{"name": "u", "url": "https://feed.invalid/2"},
                                              {"name": "t", "url": "https://feed.invalid/3"}])),
                 "A task named 't' already exists.")
    [task] = tasks.create([{"name": "v", "url": "https://feed.invalid/4"}])
    one_conflict(racing(TaskStore,
                        lambda: tasks.create([{"name": "w", "url": "https://feed.invalid/5"}]),
                        lambda: tasks.update(task["id"], {"name": "w"})),
                 "A task named 'w' already exists.")
    targets = NotificationStore(store.entities.NotificationTarget)
    target = {"on": [], "presets": [], "enabled": True,
              "request": {"type": "json", "method": "POST", "url": "https://hook.invalid/"}}
    one_conflict(racing(NotificationStore,
                        lambda: targets.create({**target, "name": "n"}),
                        lambda: targets.create({**target, "name": "n"})),
                 "A notification target named 'n' already exists.")
    other_target = targets.create({**target, "name": "o"})
    # An update holds the write lock from its first read (not optimistic): only a create
    # can lose to it.
    one_conflict(racing(NotificationStore,
                        lambda: targets.update(other_target["id"], {**target, "name": "m"}),
                        lambda: targets.create({**target, "name": "m"})),
                 "A notification target named 'm' already exists.")


def test_what_a_task_records_waits_for_the_disk_its_runs_do_not(
        tmp_path: Path, tasks: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task a person made, changed or marked survives a power cut once answered; a run's
    records are the scheduler's (a power cut that takes them back makes the run due again),
    and a feed's run every few minutes would wait on an SD card each time."""
    syncs = DiskSyncs(monkeypatch, under=tmp_path)
    wal = str(tmp_path / "db.sqlite-wal")
    [task] = tasks.create([{"name": "feed", "url": "https://feed.invalid/rss"}])
    tasks.update(task["id"], {"timer": "5 * * * *"})
    tasks.mark(task["id"], ["https://media.invalid/1"])
    assert syncs.take() == [wal, wal, wal]
    run = tasks.start_execution(task, "timer")
    tasks.finish_execution(run["id"], [], status=SUCCESS)
    again = tasks.start_execution(task, "timer")
    tasks.finish_run(task["id"], again["id"], [], {"status": SUCCESS}, {"failures": 0})
    tasks.prune_executions(1)
    assert syncs.take() == []
