"""The event streams (appliance/api/sse.py) in process, driven the way gunicorn drives a WSGI
body: iterated chunk by chunk, closed when the client is gone. The slot cap, a body that is
never iterated, a client that leaves (seen on a real socket), batching and dropped lines.
The same streams through the real server: tests/test_logs.py."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import falcon
import falcon.testing
import pytest
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.api import sse
from appliance.api.app import create_app
from appliance.logs import LogSubscription, file_handler_for, log_file_path
from appliance.runtime import Runtime

LOGGER = "appliance.test_api_streams"
DEADLINE = 10.0

Open = Callable[..., tuple[str, dict[str, str], Iterable[bytes]]]


@pytest.fixture
def open_stream(runtime: Runtime) -> Iterator[Open]:
    """``open(path, sock=None, **headers)``: call the app as gunicorn does; the status, the
    headers and the body (not iterated yet). Every body is closed at the end, as gunicorn
    closes it."""
    app = create_app(runtime)
    bodies: list[Iterable[bytes]] = []

    def open_(path: str, sock: socket.socket | None = None, **headers: str
              ) -> tuple[str, dict[str, str], Iterable[bytes]]:
        env = falcon.testing.create_environ(path=path, headers=headers)
        if sock is not None:
            env["gunicorn.socket"] = sock
        started: list[tuple[str, list[tuple[str, str]]]] = []
        body = app(env, lambda status, headers, exc_info=None: started.append(
            (status, headers)))
        bodies.append(body)
        status, headers = started[0]
        return status, dict(headers), body

    yield open_
    for body in bodies:
        getattr(body, "close", lambda: None)()


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        yield executor


def _next(chunks: Iterator[bytes], pool: concurrent.futures.ThreadPoolExecutor,
          runtime: Runtime) -> bytes | None:
    """The stream's next chunk (None: it ended), waited for with a deadline; a stream that
    sends nothing by then is ended the way a stopping service ends it, and the test fails."""
    future = pool.submit(next, chunks, None)
    try:
        return future.result(DEADLINE)
    except concurrent.futures.TimeoutError:
        runtime.stopping.set()
        future.result(DEADLINE)
        pytest.fail(f"no chunk within {DEADLINE} s")


def _events(chunk: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in chunk.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines()
                      if line.startswith(("event: ", "data: ")))
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def _subscribers(runtime: Runtime) -> int:
    handler = file_handler_for(log_file_path(runtime.settings.config_path))
    assert handler is not None
    return len(handler._subscribers)


def test_log_stream_sends_each_new_line_and_unsubscribes_when_closed(
        runtime: Runtime, open_stream: Open, pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    logger = logging.getLogger(LOGGER)
    status, headers, body = open_stream("/api/logs/stream")
    assert status == "200 OK"
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache" and headers["x-accel-buffering"] == "no"
    chunks = iter(body)
    before = _subscribers(runtime)
    assert _next(chunks, pool, runtime) == sse.HELLO  # subscribed: lines from now on come
    assert _subscribers(runtime) == before + 1
    logger.warning("first line for the stream")
    logger.warning("second line for the stream")
    events = _events(_next(chunks, pool, runtime) or b"")
    assert [name for name, _ in events] == ["log_lines", "log_lines"]  # one write, both lines
    first = events[0][1]
    assert first["line"].endswith(f"WARNING {LOGGER}: first line for the stream")
    assert first["id"] == hashlib.sha256(first["line"].encode()).hexdigest()
    assert first["datetime"].endswith("+00:00")
    assert events[1][1]["line"].endswith("second line for the stream")
    body.close()  # type: ignore[attr-defined]
    assert _subscribers(runtime) == before
    assert runtime.streams.taken == 0


def test_streams_past_the_cap_get_503_and_a_body_never_sent_frees_its_slot(
        runtime: Runtime, open_stream: Open) -> None:
    limit = runtime.settings.max_streams
    bodies = [open_stream("/api/logs/stream")[2] for _ in range(limit)]
    assert runtime.streams.taken == limit
    status, headers, body = open_stream("/api/logs/stream")
    assert status == "503 Service Unavailable" and headers["retry-after"] == "5"
    error = json.loads(b"".join(body))
    assert error["code"] == "UNAVAILABLE"
    assert f"Too many live streams are open ({limit}, YTP_MAX_STREAMS)" in error["error"]
    bodies[0].close()  # type: ignore[attr-defined]  # gunicorn closes a body it never sent
    bodies[0].close()  # type: ignore[attr-defined]  # (twice: still one slot)
    assert runtime.streams.taken == limit - 1
    assert open_stream("/api/logs/stream")[0] == "200 OK"


def test_a_stream_ends_when_its_client_closes_the_connection(
        runtime: Runtime, open_stream: Open, pool: concurrent.futures.ThreadPoolExecutor
) -> None:
    ours, clients = socket.socketpair()
    with ours, clients:
        _, _, body = open_stream("/api/logs/stream", sock=ours)
        chunks = iter(body)
        before = _subscribers(runtime)
        assert _next(chunks, pool, runtime) == sse.HELLO
        clients.close()
        assert _next(chunks, pool, runtime) is None  # the end, without a write to fail
        assert _subscribers(runtime) == before
        assert runtime.streams.taken == 0


def test_a_running_execution_streams_its_log_then_ends(
        runtime: Runtime, client: falcon.testing.TestClient, open_stream: Open,
        pool: concurrent.futures.ThreadPoolExecutor, origin: MediaOrigin) -> None:
    origin.feeds.set("live-log", [FeedEntry("a", f"{origin.clip_url}?n=live")])
    task = client.simulate_post("/api/tasks", json={
        "name": "Live log", "url": f"{origin.base_url}/feeds/live-log.rss",
        "auto_start": False}).json
    gate = origin.feeds.hold("live-log")
    try:
        execution = client.simulate_post(f"/api/tasks/{task['id']}/execute").json
        wait_for(lambda: origin.feeds.waiting.get("live-log"), message="the feed read")
        path = f"/api/executions/{execution['id']}/log"
        # A client that does not ask for events gets the lines so far, as JSON.
        so_far = client.simulate_get(path).json
        assert (so_far["id"], so_far["status"]) == (execution["id"], "running")
        assert so_far["lines"] and task["url"] in so_far["lines"][0]
        assert client.simulate_get(f"/api/executions/{execution['id']}").json["log"] == \
            so_far["lines"]
        status, headers, body = open_stream(path, Accept="text/event-stream")
        assert status == "200 OK" and headers["content-type"] == "text/event-stream"
        chunks = iter(body)
        earlier = _events(_next(chunks, pool, runtime) or b"")  # the lines so far, at once
        assert [d["line"] for _, d in earlier] == so_far["lines"]
        assert {name for name, _ in earlier} == {"log"}
        assert earlier[0][1]["datetime"].endswith("+00:00")
        gate.set()
        rest = b""
        while (chunk := _next(chunks, pool, runtime)) is not None:
            rest += chunk
    finally:
        gate.set()
    events = _events(rest)
    assert any("queued 1" in d["line"] for name, d in events if name == "log")
    assert events[-1] == ("end", {"execution_id": execution["id"]})
    assert runtime.streams.taken == 0
    finished = client.simulate_get(path, headers={"Accept": "text/event-stream"})
    assert finished.json["status"] == "success"  # over: JSON whatever the client accepts
    assert any("queued 1" in line for line in finished.json["lines"])


def _watch(runtime: Runtime, sock: socket.socket | None) -> sse.Watch:
    env = falcon.testing.create_environ()
    if sock is not None:
        env["gunicorn.socket"] = sock
    return sse.Watch(falcon.Request(env), runtime)


def test_watch_tells_a_gone_client_from_a_quiet_one(runtime: Runtime) -> None:
    assert not _watch(runtime, None).should_end()  # no socket to look at (not gunicorn)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        watch = _watch(runtime, ours)
        assert not watch.client_gone()  # quiet, still there
        theirs.sendall(b"GET /next HTTP/1.1\r\n")
        assert not watch.client_gone()  # a pipelined request is not a goodbye
        assert ours.recv(100) == b"GET /next HTTP/1.1\r\n"  # (the peek left it there)
        theirs.close()
        assert watch.client_gone() and watch.should_end()
    assert _watch(runtime, ours).client_gone()  # a socket closed here: gone too
    quiet = _watch(runtime, None)
    runtime.stopping.set()
    assert quiet.should_end()


def test_a_ping_is_due_only_after_the_heartbeat_interval(runtime: Runtime) -> None:
    watch = _watch(runtime, None)
    assert not watch.ping_due()
    watch.last_write -= sse.HEARTBEAT_SECONDS - 1
    assert not watch.ping_due()
    watch.last_write -= 1
    assert watch.ping_due()
    watch.wrote()
    assert not watch.ping_due()


def _render(line: str, created: float) -> bytes:
    return sse.event("line", {"line": line, "created": created})


def test_lines_are_batched_dropped_ones_counted_and_the_end_releases(runtime: Runtime) -> None:
    subscription = LogSubscription(sse.MAX_BATCH + 50)
    for n in range(sse.MAX_BATCH + 60):  # 10 more than it holds: dropped
        subscription.put(f"line {n}", float(n))
    released: list[bool] = []
    finished = [False]
    chunks = sse.lines(subscription, lambda: released.append(True), _watch(runtime, None),
                       _render, finished=lambda: finished[0])
    assert next(chunks) == sse.HELLO
    first = next(chunks)
    assert [d["line"] for _, d in _events(first)] == [f"line {n}" for n in range(sse.MAX_BATCH)]
    assert first.endswith(b": 10 line(s) dropped: the client reads too slowly\n\n")
    second = next(chunks)
    assert [d["line"] for _, d in _events(second)] == [
        f"line {n}" for n in range(sse.MAX_BATCH, sse.MAX_BATCH + 50)]
    assert b"dropped" not in second
    assert not released
    finished[0] = True  # nothing waiting and the source is done: the stream ends
    assert next(chunks, None) is None
    assert released == [True]


def test_a_stream_sends_nothing_but_pings_while_quiet(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Quiet for this long: a ping. (Moving the watch's last write back did nothing: the
    # stream marks the hello written when it is asked for the next chunk, and the test
    # waited the real 15 s.)
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.2)
    watch = _watch(runtime, None)
    chunks = sse.lines(LogSubscription(10), lambda: None, watch, _render)
    assert next(chunks) == sse.HELLO
    assert next(chunks) == sse.PING
    pinged = time.monotonic()
    runtime.stopping.set()
    assert next(chunks, None) is None
    assert watch.last_write >= pinged  # the ping counted as a write


def test_event_and_comment_framing() -> None:
    assert sse.event("log", {"a": "é"}) == 'event: log\ndata: {"a":"é"}\n\n'.encode()
    assert sse.comment("two\nlines") == b": two lines\n\n"  # a comment cannot end the event
