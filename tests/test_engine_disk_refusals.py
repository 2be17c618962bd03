"""The engine's own state writes when the database's disk refuses them (full, here: a real
tmpfs filled to its last byte): each is waited on (``engine.storing``) and goes through once
the disk has room, never dropped with its item left half moved."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient
from support.feeds import FeedEntry
from support.mounts import fill, tmpfs
from support.origin import MediaOrigin
from support.queue_counts import assert_counts_agree
from support.server import wait_for

from appliance.engine import storing
from appliance.runtime import Runtime

ENTRIES = 200  # enough rows that their write cannot fit in what SQLite's log had room for


def test_a_playlist_read_while_the_database_disk_is_full_is_queued_once_it_has_room(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The playlist left the queue in memory before its entries were written: the refused
    write raised, and the item waited for its info in the store (and in every client) until
    a restart, the disk long freed, its entries never queued."""
    monkeypatch.setattr(storing, "RETRY_SECONDS", 0.5)
    name = f"refused-{tmp_path.name}"
    origin.feeds.set(name, [FeedEntry(f"e{n}", f"{origin.clip_url}?entry={n}", f"Entry {n}")
                            for n in range(ENTRIES)])
    gate = origin.feeds.hold(name)
    with tmpfs(tmp_path / "config", "size=8m") as config:
        rt = start_runtime()
        [playlist] = rt.engine.add([{"url": f"{origin.base_url}/feeds/{name}.rss",
                                     "auto_start": False}])
        wait_for(lambda: origin.feeds.waiting.get(name), timeout=60,
                 message="the playlist's page to be asked for")
        filler = fill(config)
        gate.set()
        wait_for(lambda: [r for r in caplog.records if r.levelno == logging.ERROR],
                 timeout=60, message="the playlist's write to be refused")
        assert rt.store.get(playlist.id) is not None
        filler.unlink()

        def entries() -> list[str]:
            return [i.title for i in rt.engine.queue_items() if i.batch_id == playlist.id]

        queued = wait_for(lambda: len(entries()) == ENTRIES and entries(), timeout=60,
                          message="the playlist's entries to be queued once there is room")
    assert sorted(queued) == sorted(f"Entry {n}" for n in range(ENTRIES))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "Downloads wait until their state can be stored" in errors[0]
    assert rt.engine.get(playlist.id) is None and rt.store.get(playlist.id) is None
    stored = rt.store.queue()
    assert sorted(i.title for i in stored if i.batch_id == playlist.id) == sorted(queued)


def test_an_edit_the_disk_refuses_is_answered_507_and_not_made(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, TestClient]],
        origin: MediaOrigin) -> None:
    """A person's change the disk refuses has not happened: the answer says so, and the item
    in memory (what every client is shown) is the one stored."""
    with tmpfs(tmp_path / "config", "size=8m") as config:
        rt, client = app_with()
        [held] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
        # stored too: a write still on its way when the disk fills would be refused as well
        wait_for(lambda: rt.engine.get(held.id).extractor and rt.store.get(held.id).extractor,
                 timeout=60, message="its info, stored")
        filler = fill(config)
        # larger than any room SQLite's log may have left: the write must reach the disk
        answer = client.simulate_post(f"/api/history/{held.id}", json={"title": "x" * 500_000})
        assert answer.status_code == 507, answer.text
        assert answer.json["code"] == "INSUFFICIENT_STORAGE"
        kept = rt.engine.get(held.id)
        assert kept is not None and kept.title == rt.store.get(held.id).title
        assert not kept.title.startswith("x")
        filler.unlink()


def test_a_pause_the_disk_refuses_is_answered_507_and_not_made(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, TestClient]],
        origin: MediaOrigin) -> None:
    with tmpfs(tmp_path / "config", "size=8m") as config:
        rt, client = app_with()
        [held] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
        # stored too: a write still on its way when the disk fills would be refused as well
        wait_for(lambda: rt.engine.get(held.id).extractor and rt.store.get(held.id).extractor,
                 timeout=60, message="its info, stored")
        rt.engine.set_paused(True)  # the queue holds: the start below runs nothing
        assert client.simulate_post("/api/history/start", json={"ids": [held.id]}).json == {
            held.id: "started"}
        filler = fill(config)
        answer = client.simulate_post("/api/history/pause", json={"ids": [held.id]})
        assert answer.status_code == 507, answer.text
        assert answer.json["code"] == "INSUFFICIENT_STORAGE"
        kept = rt.engine.get(held.id)
        assert kept is not None and (kept.auto_start, kept.msg) == (True, "")
        assert rt.store.get(held.id).auto_start is True
        # and it is counted as it is: waiting to start, not paused
        assert_counts_agree(rt.engine)
        assert (rt.engine.stats()["queued"], rt.engine.stats()["paused"]) == (1, 0)
        filler.unlink()
