"""End to end: the real ``appliance serve`` (gunicorn), real yt-dlp, a real websocket client."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for
from websockets.sync.client import ClientConnection, connect

from appliance.engine.child import PROGRESS_INTERVAL

pytestmark = pytest.mark.e2e

DELIVERY_SLACK = 2.0
# The interrupted downloads: trickled (origin.slow_rate, followed live) until the test has
# interrupted one, then the rest comes at once: the resume is what they test, not the wait.
SLOW, FAST = 512 * 1024, 200_000_000


def unwrap(frame: dict[str, Any]) -> dict[str, Any]:
    """A ``/ws`` frame ``{"event", "data": Event}`` as ``{"event", "data": payload}`` (the
    Event's fields under ``"event_object"``); a Flasharr message (``type``) as it is.
    tests/test_wire.py checks the Event itself."""
    if "event" not in frame:
        return frame
    event = frame["data"]
    return {"event": frame["event"], "data": event["data"], "event_object": event}


class Feed:
    """A websocket client that collects every frame (``/ws`` ones unwrapped). Made once the
    service has it among its clients (its ``connected`` frame came): an event published
    between the handshake and that was not the client's to get."""

    def __init__(self, url: str) -> None:
        self._context = connect(url, open_timeout=10)
        self.ws: ClientConnection = self._context.__enter__()
        self.events: list[dict[str, Any]] = []
        self.received_at: list[float] = []  # time.monotonic() of each event's arrival
        self.connected = self.next()

    def next(self, timeout: float = 30) -> dict[str, Any]:
        event = unwrap(json.loads(self.ws.recv(timeout=timeout)))
        self.events.append(event)
        self.received_at.append(time.monotonic())
        return event

    def until(self, match: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict:
        for event in self.events:
            if match(event):
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.next(timeout=max(0.1, deadline - time.monotonic()))
            if match(event):
                return event
        raise AssertionError(f"no matching event in {len(self.events)} events")

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def item_event(name: str, item_id: str, status: str | None = None) -> Callable[[dict], bool]:
    def match(event: dict) -> bool:
        data = event.get("data") or {}
        return (event["event"] == name and isinstance(data, dict) and data.get("id") == item_id
                and (status is None or data.get("status") == status))

    return match


def test_add_watch_live_finish(make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    feed = Feed(server.ws_url)
    connected = feed.connected
    assert connected["event"] == "connected" and connected["data"]["sid"]
    [queued] = server.post("/api/history", {"url": origin.clip_url}).json()
    item_id = queued["id"]
    added = feed.until(item_event("item_added", item_id))
    assert added["data"]["status"] == "pending"
    feed.until(item_event("item_updated", item_id, "downloading"))
    finished = feed.until(item_event("item_updated", item_id, "finished"))
    assert finished["data"]["percent"] == 100.0
    moved = feed.until(lambda e: e["event"] == "item_moved"
                       and e["data"]["item"]["_id"] == item_id)
    assert moved["data"]["to"] == "history" and moved["data"]["item"]["status"] == "finished"
    path = server.download_path / finished["data"]["filename"]
    assert path.read_bytes() == origin.path_for(origin.clip_url).read_bytes()
    # order of the events (test_store_before_announce checks the store at each event)
    names = [e["event"] for e in feed.events
             if item_id in ((e.get("data") or {}).get("id"),
                            ((e.get("data") or {}).get("item") or {}).get("id"))]
    assert names.index("item_added") < names.index("item_moved")
    feed.close()


def test_progress_events_throttled_with_raw_numbers(
    make_server: Callable[..., Server], origin: MediaOrigin
) -> None:
    server = make_server()
    feed = Feed(server.ws_url)
    url = origin.slow_url_at(2_000_000)
    [queued] = server.post("/api/history", {"url": url}).json()
    finished = feed.until(item_event("item_updated", queued["id"], "finished"), timeout=90)
    received = [(e["data"], at) for e, at in zip(feed.events, feed.received_at, strict=True)
                if e["event"] == "item_updated" and e["data"].get("id") == queued["id"]
                and e["data"].get("status") == "downloading"]
    progress = [data for data, _ in received]
    assert progress, "no progress events"
    sample = next(p for p in progress if p["eta"] is not None and p["speed"] is not None)
    # yt-dlp's numbers, as YTPTube sends them (bytes/s, seconds); text forms beside them
    assert isinstance(sample["progress"], float) and isinstance(sample["speed"], float)
    assert isinstance(sample["eta"], int | float)
    assert sample["speed_text"].endswith("/s") and ":" in sample["eta_text"]
    # at most one update per PROGRESS_INTERVAL between the first and the end of the transfer,
    # however long the transfer took on this box (never one per read: hundreds); the first
    # may have reached us up to DELIVERY_SLACK after it was sent; one more is the state change
    # to downloading, which carries the whole item as the progress updates do
    span = feed.received_at[feed.events.index(finished)] - received[0][1] + DELIVERY_SLACK
    assert len(progress) <= span / PROGRESS_INTERVAL + 2, (len(progress), span)


def test_cancel_slow_download(make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    feed = Feed(server.ws_url)
    [queued] = server.post("/api/history", {"url": origin.slow_url}).json()
    item_id = queued["id"]
    feed.until(item_event("item_updated", item_id, "downloading"))
    assert server.post("/api/history/cancel", {"ids": [item_id]}).json() == {item_id: "ok"}
    cancelled = feed.until(item_event("item_cancelled", item_id))
    assert cancelled["data"]["status"] == "cancelled"
    item = server.item(item_id)
    assert item["kind"] == "done" and item["status"] == "cancelled"
    assert not (server.root / "tmp" / item_id).exists()
    assert not any(server.download_path.rglob("*.part"))
    wait_for(lambda: origin.active_connections == 0, message="origin connection to close")


def test_pause_keeps_partial_and_start_resumes(
    make_server: Callable[..., Server], origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    monkeypatch.setattr(origin, "slow_rate", SLOW)
    [queued] = server.post("/api/history", {"url": origin.slow_url}).json()
    item_id = queued["id"]
    wait_for(lambda: (server.item(item_id).get("downloaded_bytes") or 0) > 300_000,
             timeout=60, message="some bytes")
    assert server.post("/api/history/pause", {"ids": [item_id]}).json() == {item_id: "paused"}
    paused = wait_for(lambda: (i := server.item(item_id))["status"] == "pending" and i,
                      message="paused")
    assert paused["auto_start"] is False and paused["kind"] == "queue"
    parts = list((server.root / "tmp" / item_id).rglob("*.part"))
    assert parts and parts[0].stat().st_size > 0
    origin.clear_requests()
    origin.slow_rate = FAST  # the rest, once resumed
    server.post("/api/history/start", {"ids": [item_id]})
    done = server.wait_status(item_id, {"finished"}, timeout=120)
    ranges = [r.range for r in origin.requests_for("/slow.mp4") if r.range]
    assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges
    path = server.download_path / done["filename"]
    assert path.read_bytes() == origin.path_for(origin.slow_url).read_bytes()


def test_kill_9_then_restart_resumes_without_loss(
    make_server: Callable[..., Server], origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    monkeypatch.setattr(origin, "slow_rate", SLOW)
    [slow] = server.post("/api/history", {"url": origin.slow_url}).json()
    waiting = server.post("/api/history", [{"url": origin.clip_url, "auto_start": False},
                                            {"url": origin.clip2_url, "auto_start": False}]).json()
    wait_for(lambda: (server.item(slow["id"]).get("downloaded_bytes") or 0) > 200_000,
             timeout=60, message="some bytes")
    server.kill_hard()
    origin.slow_rate = FAST  # the rest, once resumed
    restarted = Server(server.root, port=server.port).start()
    try:
        done = restarted.wait_status(slow["id"], {"finished"}, timeout=120)
        assert (restarted.download_path / done["filename"]).read_bytes() == \
            origin.path_for(origin.slow_url).read_bytes()
        ranges = [r.range for r in origin.requests_for("/slow.mp4") if r.range]
        assert any(not r.startswith("bytes=0-") for r in ranges), ranges
        everything = restarted.get("/api/history").json()
        ids = [i["id"] for i in everything["queue"] + everything["history"]]
        assert sorted(ids) == sorted([slow["id"]] + [w["id"] for w in waiting])
        assert len(ids) == len(set(ids))
    finally:
        restarted.stop()


def test_sigterm_leaves_download_resumable(
    make_server: Callable[..., Server], origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    monkeypatch.setattr(origin, "slow_rate", SLOW)
    [slow] = server.post("/api/history", {"url": origin.slow_url}).json()
    wait_for(lambda: (server.item(slow["id"]).get("downloaded_bytes") or 0) > 100_000,
             timeout=60, message="some bytes")
    pids = server.pids()
    assert server.stop(signal.SIGTERM) == 0
    assert not any(os.path.exists(f"/proc/{p}") and _not_zombie(p) for p in pids)
    origin.slow_rate = FAST  # the rest, once resumed
    restarted = Server(server.root, port=server.port).start()
    try:
        item = restarted.item(slow["id"])
        assert item["kind"] == "queue"
        restarted.wait_status(slow["id"], {"finished"}, timeout=120)
    finally:
        restarted.stop()


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_websocket_client_commands(make_server: Callable[..., Server],
                                   origin: MediaOrigin) -> None:
    server = make_server()
    feed = Feed(server.ws_url)
    feed.ws.send(json.dumps({"event": "add_url",
                             "data": {"url": origin.slow_url, "auto_start": False}}))
    status = feed.until(lambda e: e["event"] == "item_status")
    item_id = status["data"]["id"]
    assert status["data"]["status"] == "queued"
    feed.ws.send(json.dumps({"event": "item_cancel", "data": item_id}))
    feed.until(item_event("item_cancelled", item_id))
    feed.ws.send("not json")
    error = feed.until(lambda e: e["event"] == "log_error")
    assert error["data"]["message"]
    feed.ws.send(json.dumps({"event": "add_url", "data": {"url": "ftp://x"}}))
    feed.until(lambda e: e["event"] == "log_error" and "http(s)" in e["data"]["message"])
    feed.ws.send(json.dumps({"event": "item_delete", "data": {"id": item_id}}))
    feed.until(item_event("item_deleted", item_id))
    assert server.get(f"/api/history/{item_id}").status_code == 404


def test_bad_settings_stop_startup_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "YTP_PORT": "eighty", "YTP_CONFIG_PATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "appliance", "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "appliance: bad setting: YTP_PORT: expected a whole number, got 'eighty'"]
    env = {**os.environ, "YTP_YTDLP_CLI": "--no-such-flag",
           "YTP_CONFIG_PATH": str(tmp_path / "c"),
           "YTP_DOWNLOAD_PATH": str(tmp_path / "d"), "YTP_TEMP_PATH": str(tmp_path / "t")}
    result = subprocess.run([sys.executable, "-m", "appliance", "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "appliance: bad setting: YTP_YTDLP_CLI: Failed to parse command options for yt-dlp. "
        "'no such option: --no-such-flag'."]


def test_no_descriptor_process_or_thread_leaks(
    make_server: Callable[..., Server], origin: MediaOrigin
) -> None:
    """Identical batches leave nothing behind. Bounded pools grow as they are needed (the
    request threads start one by one, the extraction threads, their database connections):
    a batch that happens to overlap more requests than the ones before may add a thread
    once -- a leak adds with every batch. So: after two batches, one of the next four must
    leave the fds and threads where they were before it."""
    server = make_server(YTP_WORKER_LINGER="1")
    worker = server.pids()[1]

    def counts() -> tuple[int, int]:
        return len(os.listdir(f"/proc/{worker}/fd")), len(os.listdir(f"/proc/{worker}/task"))

    def run_batch(tag: str) -> None:
        batch = server.post("/api/history", [
            {"url": origin.short_url, "template": f"{tag}{n}.%(ext)s"} for n in range(10)
        ]).json()
        for queued in batch:
            server.wait_status(queued["id"], {"finished"}, timeout=120)
        wait_for(lambda: len(server.pids()) == 2, timeout=30,
                 message="idle download processes to retire")

    run_batch("a")
    run_batch("b")
    seen = [counts()]
    for tag in "cdef":
        run_batch(tag)
        limit = seen[-1]
        with contextlib.suppress(AssertionError):
            wait_for(lambda limit=limit: all(n <= most for n, most in zip(counts(), limit,
                                                                          strict=True)),
                     timeout=10, message="fds/threads back")
            return
        seen.append(counts())
    raise AssertionError(f"every batch left fds/threads behind: {seen}")


def test_presets_conditions_and_archive_through_the_real_server(
    make_server: Callable[..., Server], origin: MediaOrigin
) -> None:
    server = make_server(YTP_KEEP_ARCHIVE="true")
    feed = Feed(server.ws_url)
    created = server.post("/api/presets", {"name": "music", "cli": "-x --audio-format m4a",
                                           "folder": "music"})
    assert created.status_code == 200, created.text
    update = feed.until(lambda e: e["event"] == "config_update")
    assert update["data"]["feature"] == "presets" and update["data"]["action"] == "create"
    server.post("/api/conditions", {"name": "skip short", "filter": "duration < 2",
                                    "extras": {"skip": True}})
    [audio] = server.post("/api/history", {"url": origin.clip_url, "preset": "music"}).json()
    [short] = server.post("/api/history", {"url": origin.watch_url("short")}).json()
    done = server.wait_status(audio["id"], {"finished"})
    assert done["filename"].startswith("music/") and done["filename"].endswith(".m4a")
    skipped = server.wait_status(short["id"], {"skip"})
    assert "skip short" in skipped["msg"]
    [again] = server.post("/api/history", {"url": origin.clip_url, "preset": "music"}).json()
    assert "archive" in server.wait_status(again["id"], {"skip"})["msg"]
    feed.close()
