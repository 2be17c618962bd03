"""One owner per running item: stop requests race on a real download and the first one wins;
a bus subscriber that blocks does not hold the engine's lock."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import threading
from collections.abc import Callable

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import events
from appliance.engine.runs import STOP_AFTER, Run, StopReason, next_reason
from appliance.errors import AppError
from appliance.runtime import Runtime
from appliance.store import Item

# --- the transition table ------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), list(itertools.product(StopReason, StopReason)))
def test_the_first_reason_wins_except_a_delete(first: StopReason, second: StopReason) -> None:
    run = Run(Item(id="x", url="http://example.invalid/"))
    assert run.request_stop(first) is True
    replaced = run.request_stop(second)
    if second is StopReason.DELETE and first is not StopReason.DELETE:
        assert replaced and run.reason is StopReason.DELETE
    else:
        assert not replaced and run.reason is first


def test_the_table_names_every_reason_and_nothing_follows_a_delete() -> None:
    assert set(STOP_AFTER) == {None, *StopReason}
    assert STOP_AFTER[None] == frozenset(StopReason)
    assert STOP_AFTER[StopReason.DELETE] == frozenset()
    for reason in StopReason:
        assert next_reason(None, reason) is reason


def test_a_run_whose_end_is_decided_takes_no_more_requests() -> None:
    run = Run(Item(id="x", url="http://example.invalid/"))
    run.ended = True
    assert run.request_stop(StopReason.DELETE) is False and run.reason is None
    # An edit too late to be applied is said so (the API answers 409), not taken and lost.
    assert run.request_edit({"title": "late"}) is False
    assert not run.edits and not run.edited


# --- races on a real download ----------------------------------------------------------------


def _running(rt: Runtime, origin: MediaOrigin) -> tuple[str, Run]:
    """A download that has received bytes and then gets nothing more (the origin holds it)."""
    [added] = rt.engine.add([{"url": origin.stall_url()}])
    run = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
                   and r.item.status == "downloading" and r,
                   timeout=60, message="the download to be running")
    return added.id, run


def _ended(rt: Runtime, item_id: str, run: Run) -> Item:
    """The item once its run's thread is done (its end stored and announced)."""
    assert run.thread is not None
    run.thread.join(timeout=30)
    assert not run.thread.is_alive(), "the run did not end"
    assert item_id not in rt.engine._runs
    stored = rt.store.get(item_id)
    assert stored is not None
    return stored


def _stall_now(rt: Runtime) -> None:
    """The owner's next tick finds the download stalled (no API path allows under 5 s)."""
    rt.settings_holder.change(lambda s: s.replace(stall_timeout=0.0))


def test_a_pause_then_a_stall_ends_paused(start_runtime: Callable[..., Runtime],
                                         origin: MediaOrigin) -> None:
    rt = start_runtime()
    item_id, run = _running(rt, origin)
    title, changed = rt.engine.update_item(item_id, {"title": "renamed while running"})
    assert changed and title.title == "renamed while running"
    assert rt.engine.pause_items([item_id]) == {item_id: "paused"}
    _stall_now(rt)
    rt.engine._tick(run)  # the owner's stall check, at the same moment as the pause
    stored = _ended(rt, item_id, run)
    assert run.reason is StopReason.PAUSE
    assert (stored.kind, stored.status, stored.msg, stored.auto_start) == (
        "queue", "pending", "Paused", False)
    assert stored.title == "renamed while running"  # asked for while it ran: kept
    live = rt.engine.get(item_id)
    assert live is not None and (live.status, live.auto_start, live.title) == (
        stored.status, stored.auto_start, stored.title)


def test_a_cancel_then_a_pause_ends_cancelled(start_runtime: Callable[..., Runtime],
                                             origin: MediaOrigin) -> None:
    rt = start_runtime()
    item_id, run = _running(rt, origin)
    rt.engine.cancel_items([item_id])
    rt.engine.pause_items([item_id])
    stored = _ended(rt, item_id, run)
    assert run.reason is StopReason.CANCEL
    assert (stored.kind, stored.status, stored.msg) == ("done", "cancelled", "Cancelled")
    assert item_id not in {i.id for i in rt.engine.queue_items()}


def test_a_stall_then_a_pause_ends_as_the_stall(start_runtime: Callable[..., Runtime],
                                               origin: MediaOrigin) -> None:
    rt = start_runtime()
    item_id, run = _running(rt, origin)
    _stall_now(rt)
    wait_for(lambda: run.reason is not None, timeout=10, message="the stall to be noticed")
    with contextlib.suppress(AppError):  # the item may have left the queue already
        rt.engine.pause_items([item_id])
    stored = _ended(rt, item_id, run)
    assert run.reason is StopReason.STALL
    assert (stored.kind, stored.status) == ("done", "error")
    assert "No progress" in stored.error


def test_racing_requests_end_as_the_one_that_won(start_runtime: Callable[..., Runtime],
                                                 origin: MediaOrigin) -> None:
    """Pause, cancel and a stall let loose at once: the item ends as the reason the run kept,
    stored and in memory alike, and the last state announced is the stored one."""
    rt = start_runtime()
    item_id, run = _running(rt, origin)
    announced: list[dict] = []
    rt.bus.subscribe(lambda e: e.name == events.ITEM_UPDATED and not e.progress
                     and e.data.get("id") == item_id and announced.append(e.data))
    go = threading.Barrier(3)

    def send(action: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=lambda: (go.wait(), action()))
        thread.start()
        return thread

    threads = [send(lambda: rt.engine.pause_items([item_id])),
               send(lambda: rt.engine.cancel_items([item_id])),
               send(lambda: _stall_now(rt))]
    for thread in threads:
        thread.join(timeout=30)
    stored = _ended(rt, item_id, run)
    # A cancel that comes once the pause has handed the item back to the queue (a loaded
    # box) cancels the paused item: that end is the cancel's, not the run's.
    expected = {StopReason.PAUSE: {("queue", "pending"), ("done", "cancelled")},
                StopReason.CANCEL: {("done", "cancelled")}, StopReason.STALL: {("done", "error")}}
    assert run.reason in expected
    assert (stored.kind, stored.status) in expected[run.reason]
    wait_for(lambda: announced and announced[-1]["status"] == stored.status, timeout=10,
             message="the stored end to be the last state announced")


# --- a subscriber that blocks ----------------------------------------------------------------


def test_a_blocked_subscriber_does_not_hold_the_engine(start_runtime: Callable[..., Runtime],
                                                      origin: MediaOrigin) -> None:
    rt = start_runtime()
    release = threading.Event()
    blocked = threading.Event()
    blocking_id: list[str] = []

    def subscriber(event: events.Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if (event.name == events.ITEM_UPDATED and not event.progress and blocking_id
                and data.get("id") == blocking_id[0] and data.get("status") == "downloading"):
            blocked.set()
            release.wait(timeout=60)

    rt.bus.subscribe(subscriber)
    [added] = rt.engine.add([{"url": origin.stall_url(), "auto_start": False}])
    blocking_id.append(added.id)
    wait_for(lambda: rt.engine.get(added.id).extractor, timeout=60, message="its info")
    rt.engine.start_items([added.id])
    try:
        assert blocked.wait(timeout=60), "the download never announced 'downloading'"
        # The download thread is stuck in publish: other threads still get the engine.
        done = threading.Event()
        answers: dict[str, object] = {}

        def pause() -> None:
            answers["pause"] = rt.engine.pause_items([added.id])
            answers["get"] = rt.engine.get(added.id)
            answers["stats"] = rt.engine.stats()
            done.set()

        threading.Thread(target=pause, daemon=True).start()
        assert done.wait(timeout=20), "a request waited for a blocked subscriber"
        assert answers["pause"] == {added.id: "paused"}
        assert answers["stats"]["active_downloads"] == 1  # type: ignore[index]
    finally:
        release.set()
    stored = wait_for(lambda: (i := rt.store.get(added.id)) and i.msg == "Paused" and i,
                      timeout=30, message="the paused item to be stored")
    assert (stored.status, stored.auto_start) == ("pending", False)


# --- an edit while the end is decided --------------------------------------------------------


def test_an_edit_while_the_download_ends_is_refused_not_lost(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Between its end's decision and its record, a finished download writes its archive's
    line: an archive another program holds locked (a yt-dlp run by hand) holds it there. A
    new title then would be lost: the answer says so (409) and nothing changes."""
    rt, client = app_with(YTP_KEEP_ARCHIVE="true")
    # At the origin's rate, which follows the test: slow until the archive is held, so that
    # the download is still running then; fast after, to its end.
    monkeypatch.setattr(origin, "slow_rate", 1_000_000)
    [added] = rt.engine.add([{"url": origin.slow_url}])
    run = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
                   and r.item.status == "downloading" and r,
                   timeout=60, message="the download to be running")
    archive = rt.engine.planner.plan(run.item).archive
    assert archive is not None
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive.with_name(archive.name + ".lock"), "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        origin.slow_rate = 16 * 1024 * 1024
        wait_for(lambda: run.ended, timeout=60, message="the download's end to be decided")
        answer = client.simulate_post(f"/api/history/{added.id}", json={"title": "late"})
        assert answer.status_code == 409, answer.text
        assert answer.json == {"error": "The item is ending right now; try again.",
                               "code": "CONFLICT"}
        fcntl.flock(held, fcntl.LOCK_UN)
    done = _ended(rt, added.id, run)
    assert done.status == "finished" and done.title != "late"


def test_pause_start_pause_on_a_running_item_ends_paused(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """The last command wins: the start asked of the stopping run is taken back by the pause
    after it, else the item ended paused and started again at once."""
    rt = start_runtime()
    release = threading.Event()
    blocked = threading.Event()
    added_id, run = _running(rt, origin)

    def subscriber(event: events.Event) -> None:
        # Holds the run's thread in its tick, after it took the edits asked so far: what is
        # asked from now on waits for its end (its process, killed, is seen at its next read).
        data = event.data if isinstance(event.data, dict) else {}
        if (event.name == events.ITEM_UPDATED and data.get("id") == added_id
                and data.get("title") == "held here"):
            blocked.set()
            release.wait(timeout=60)

    stop = rt.bus.subscribe(subscriber)
    try:
        rt.engine.update_item(added_id, {"title": "held here"})
        assert blocked.wait(timeout=60), "the title was never applied"
        for command in (rt.engine.pause_items, rt.engine.start_items, rt.engine.pause_items):
            command([added_id])
    finally:
        release.set()
        stop()
    stored = _ended(rt, added_id, run)
    assert (stored.kind, stored.status, stored.auto_start, stored.msg) == (
        "queue", "pending", False, "Paused")
    held = rt.engine.get(added_id)
    assert (held.status, held.auto_start) == ("pending", False)
