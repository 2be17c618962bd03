"""Logs: the rotating log file, ``GET /api/logs`` paging, the SSE stream (through the real
gunicorn server: new lines arrive, the stream cap holds, a client that leaves frees its
thread, a stopping server ends streams cleanly) and log records forwarded to the bus."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests
from conftest import make_settings, started
from support.server import Server, wait_for
from support.sse import SseClient, data

from appliance import logs
from appliance.api.app import create_app
from appliance.events import EventBus
from appliance.runtime import Runtime
from appliance.ws.frames import encode

LOGGER = "appliance.test_logs"


@pytest.fixture
def test_log() -> Iterator[logging.Logger]:
    logger = logging.getLogger(LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(level)


def _all_pages(client: falcon.testing.TestClient, limit: int) -> list[dict[str, Any]]:
    """Every entry, following next_offset until end_is_reached; checks each page's shape."""
    entries: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = client.simulate_get("/api/logs", params={"offset": offset, "limit": limit})
        assert response.status_code == 200, response.text
        page = response.json
        assert (page["offset"], page["limit"]) == (offset, limit)
        entries += page["logs"]
        if page["end_is_reached"]:
            assert page["next_offset"] is None
            assert len(page["logs"]) <= limit
            return entries
        assert len(page["logs"]) == limit
        assert page["next_offset"] == offset + limit
        offset = page["next_offset"]


# --- the file and /api/logs --------------------------------------------------------------


def test_log_file_pages_newest_first(
    runtime: Runtime, client: falcon.testing.TestClient, test_log: logging.Logger
) -> None:
    for n in range(25):
        test_log.info("record %d", n)
    try:
        raise ValueError("boom")
    except ValueError:
        test_log.exception("failed with a traceback")

    path = runtime.settings.config_path / "logs" / "appliance.log"
    assert path.is_file()
    entries = _all_pages(client, limit=7)
    ours = [e for e in entries if e["logger"] == LOGGER]
    # A record with a traceback is one entry; the newest comes first.
    assert ours[0]["level"] == "ERROR"
    assert ours[0]["message"].startswith("failed with a traceback\n Traceback")
    assert ours[0]["message"].endswith("ValueError: boom")
    assert [e["message"] for e in ours[1:]] == [f"record {n}" for n in reversed(range(25))]
    assert {e["level"] for e in ours[1:]} == {"INFO"}
    assert len({e["id"] for e in entries}) == len(entries)
    for entry in ours:
        assert datetime.fromisoformat(entry["timestamp"]).utcoffset() is not None
        assert entry["datetime"] == entry["timestamp"]
    # The id is the SHA-256 of the record's text as written in the file.
    text = path.read_text(encoding="utf-8")
    last_record = text[text.rindex(f" ERROR {LOGGER}: failed with") - 23:].rstrip("\n")
    assert ours[0]["id"] == hashlib.sha256(last_record.encode()).hexdigest()


def test_log_query_defaults_and_bad_values(
    client: falcon.testing.TestClient, test_log: logging.Logger
) -> None:
    test_log.info("one record at least")
    page = client.simulate_get("/api/logs").json
    assert (page["offset"], page["limit"]) == (0, 100)
    assert page["logs"][0]["message"] == "one record at least"
    assert client.simulate_get("/api/logs", params={"limit": "150"}).status_code == 200
    # the contract's "limit (max 150)": a larger limit (its own example asks 1000) is
    # clamped to 150, as YTPTube does, and so is one below 1
    for asked, taken in (("151", 150), ("1000", 150), ("0", 1), ("-5", 1)):
        response = client.simulate_get("/api/logs", params={"limit": asked})
        assert response.status_code == 200, asked
        assert response.json["limit"] == taken
    for params in ({"limit": "x"}, {"offset": "-1"}, {"offset": "1.5"}):
        response = client.simulate_get("/api/logs", params=params)
        assert response.status_code == 400, params
        assert response.json["code"] == "INVALID_REQUEST"
        assert next(iter(params)) in response.json["error"]


def test_file_logging_off_answers_404(tmp_path: Path) -> None:
    runtime = started(make_settings(tmp_path, YTP_FILE_LOGGING="false"))
    try:
        client = falcon.testing.TestClient(create_app(runtime))
        logging.getLogger(LOGGER).warning("not in any file")
        for path in ("/api/logs", "/api/logs/stream"):
            response = client.simulate_get(path)
            assert response.status_code == 404, path
            assert response.json == {"error": "File logging is not enabled.",
                                     "code": "NOT_FOUND"}
        assert not (runtime.settings.config_path / "logs").exists()
    finally:
        runtime.stop()


def _record(n: int, *, lines: int = 1) -> str:
    head = f"2024-05-0{1 + n % 9} 12:{n % 60:02d}:00,{n % 1000:03d} WARNING appliance.x{n}: "
    return head + "\n".join(f"message {n} part {i}" for i in range(lines))


@pytest.mark.parametrize("block", [5, 64, 1 << 16])
def test_reading_backwards_across_blocks_and_rotated_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(logs, "READ_BLOCK", block)
    older = [_record(n, lines=1 + n % 3) for n in range(12)]
    newer = [_record(n, lines=1 + n % 4) for n in range(12, 30)]
    path = tmp_path / "appliance.log"
    path.with_name("appliance.log.1").write_text("\n".join(older) + "\n", encoding="utf-8")
    # The file ends in a line still being written: not an entry yet.
    path.write_text("\n".join(newer) + "\n2024-05-01 12:00:00,000 INFO half", encoding="utf-8")
    expected = list(reversed(newer)) + list(reversed(older))

    for offset, limit in ((0, 1), (0, 7), (5, 10), (17, 3), (25, 150), (29, 1), (30, 5)):
        entries, end = logs.read_entries(path, offset, limit)
        want = expected[offset : offset + limit]
        assert [e["message"] for e in entries] == [t.split(": ", 1)[1] for t in want]
        assert [e["logger"] for e in entries] == [t.split(" ")[3][:-1] for t in want]
        assert [e["id"] for e in entries] == [logs.line_id(t) for t in want]
        assert end is (offset + limit >= len(expected))


def test_a_line_break_in_a_message_cannot_start_a_record(tmp_path: Path,
                                                          test_log: logging.Logger) -> None:
    """A URL or a site's error text with a line break, quoted in a message, made what
    followed it an entry of its own in /api/logs: an ERROR of any logger, at any time."""
    path = tmp_path / "logs" / "appliance.log"
    handler = logs.attach_file_logging(path)
    try:
        subscription = handler.subscribe()
        forged = "2024-05-01 12:00:00,000 ERROR appliance.auth: password reset, see evil.example"
        test_log.info("download failed: url=%s", f"https://a.example/x\n{forged}")
        try:
            raise ValueError("boom")
        except ValueError:
            test_log.exception("with a traceback")
        streamed = [subscription.get(timeout=5), subscription.get(timeout=5)]
        handler.unsubscribe(subscription)
    finally:
        logs.detach_file_logging(handler)
    entries, _ = logs.read_entries(path, 0, 10)
    assert [(e["level"], e["logger"]) for e in entries] == [("ERROR", LOGGER), ("INFO", LOGGER)]
    assert entries[1]["message"] == f"download failed: url=https://a.example/x\n {forged}"
    assert entries[0]["message"].startswith("with a traceback\n Traceback (most recent call")
    assert entries[0]["message"].endswith("\n ValueError: boom")
    # The live stream's lines are the file's, with the same ids.
    assert [logs.line_id(line) for line, _ in streamed if line] == [e["id"] for e in entries[::-1]]


def test_control_characters_are_written_out_never_sent_to_a_terminal(
        tmp_path: Path, test_log: logging.Logger) -> None:
    """A site's title with ESC sequences (or a CR that hides what came before it) would act
    on the terminal of whoever reads the log with ``tail -f`` or runs the service by hand:
    in the file and on stderr it is written as ``\\xNN``; tabs and line ends stay."""
    title = "\x1b]2;PWNED\x07\tover\rwritten\x9b2J"
    shown = "\\x1b]2;PWNED\\x07\tover\\x0dwritten\\x9b2J"
    path = tmp_path / "logs" / "appliance.log"
    handler = logs.attach_file_logging(path)
    try:
        test_log.info("finished: %s", title)
    finally:
        logs.detach_file_logging(handler)
    text = path.read_text()
    assert f"finished: {shown}\n" in text and "\x1b" not in text
    entries, _ = logs.read_entries(path, 0, 10)
    assert entries[0]["message"] == f"finished: {shown}"
    script = ("import logging; from appliance.logs import configure_logging; "
              "configure_logging('info'); "
              f"logging.getLogger('appliance.test').warning('finished: %s', {title!r})")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "JOURNAL_STREAM": ""})
    assert run.stderr.endswith(f" WARNING appliance.test: finished: {shown}\n"), run.stderr


def test_a_record_of_megabytes_is_cut_in_the_file_the_stream_and_on_the_bus(
        tmp_path: Path, test_log: logging.Logger) -> None:
    """A site's error text or a URL of megabytes, logged whole, went to every websocket
    client and chat target as it was, and made each /api/logs page holding it megabytes."""
    huge = "\x1b" + "x" * 3_000_000
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    forwarder = logs.forward_to_bus(bus)
    path = tmp_path / "logs" / "appliance.log"
    handler = logs.attach_file_logging(path)
    try:
        subscription = handler.subscribe()
        test_log.warning("download failed: %s", huge)
        streamed = subscription.get(timeout=5)
    finally:
        logs.detach_file_logging(handler)
        logs.stop_forwarding(forwarder)
    entries, _ = logs.read_entries(path, 0, 10)
    message = entries[0]["message"]
    assert message.startswith("download failed: \\x1bxxx")
    left_out = re.fullmatch(r"download failed: \\x1bx+… \((\d+) more characters\)", message)
    assert left_out is not None and len(message) < logs.MAX_RECORD + 30
    assert int(left_out[1]) > 3_000_000 - logs.MAX_RECORD
    assert streamed is not None and logs.line_id(streamed[0]) == entries[0]["id"]
    announced = seen[0].data["message"]
    assert announced == "download failed: \x1b" + "x" * (logs.MAX_ANNOUNCED - 18) + \
        f"… ({3_000_018 - logs.MAX_ANNOUNCED} more characters)"


def test_a_name_that_is_no_utf8_is_logged_not_lost(tmp_path: Path) -> None:
    """A file name read from a disk whose names are no UTF-8 (Latin-1 from an old copy, a
    share) carries lone surrogates (os.listdir's): the file's write failed on them, the record
    was lost from the file and the live streams, and a traceback went to stderr."""
    path = tmp_path / "logs" / "appliance.log"
    # On a logger of its own: pytest's capture (on the root) cannot send such a text to an
    # xdist controller, whose worker then crashes.
    logger = logging.getLogger(f"{LOGGER}.no_utf8")
    logger.propagate = False
    handler = logs.LogFileHandler(path)
    logger.addHandler(handler)
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    forwarder = logs.BusForwarder(bus)
    logger.addHandler(forwarder)
    try:
        subscription = handler.subscribe()
        logger.warning("deleted %s", os.fsdecode(b"caf\xe9.mp4"))
        streamed = subscription.get(timeout=5)
    finally:
        logger.removeHandler(forwarder)
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    entries, _ = logs.read_entries(path, 0, 10)
    assert [e["message"] for e in entries] == ["deleted caf\\udce9.mp4"]
    assert streamed is not None and logs.line_id(streamed[0]) == entries[0]["id"]
    # On the bus as valid text too: a websocket frame's JSON could not carry it.
    assert [e.data["message"] for e in seen] == ["deleted caf\\udce9.mp4"]
    assert encode(seen[0].data) is not None
    # An id of a text that still holds one (no line does now) is made all the same.
    assert logs.line_id("a\udcff") == logs.line_id("a?") == hashlib.sha256(b"a?").hexdigest()


def test_stderr_lines_carry_time_level_and_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "")  # a terminal's stderr, not the journal
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    for earlier in before:  # one an earlier test configured: this test makes its own
        if getattr(earlier, "_appliance", False):
            root.removeHandler(earlier)
    logs.configure_logging("error")
    try:
        [handler] = [h for h in root.handlers if getattr(h, "_appliance", False)]
        assert root.level == logging.ERROR
        record = logging.LogRecord("appliance.x", logging.WARNING, __file__, 1, "a\x1bb",
                                   None, None)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING appliance.x: "
                            r"a\\x1bb", handler.format(record))
    finally:
        for each in list(root.handlers):
            root.removeHandler(each)
        for each in before:
            root.addHandler(each)
        root.setLevel(level)


def test_a_live_subscriber_keeps_a_thousand_lines_then_counts(tmp_path: Path) -> None:
    handler = logs.LogFileHandler(tmp_path / "appliance.log")
    try:
        subscription = handler.subscribe()
        for n in range(1001):
            subscription.put(f"line {n}", 0.0)
        assert subscription.take_dropped() == 1 and subscription.take_dropped() == 0
        assert subscription.get_nowait() == ("line 0", 0.0)
    finally:
        handler.close()


def test_a_file_that_starts_inside_a_record_is_read_whole(tmp_path: Path) -> None:
    """Lines above the first record line (a file cut mid-traceback, or not ours) are one
    entry of their own, the oldest, not an error."""
    path = tmp_path / "appliance.log"
    path.write_text("  File \"x.py\", line 1\nValueError: boom\n" + _record(1) + "\n",
                    encoding="utf-8")
    entries, end = logs.read_entries(path, 0, 10)
    assert end is True and len(entries) == 2
    assert entries[0]["logger"] == "appliance.x1"
    assert entries[1] == {**entries[1], "message": '  File "x.py", line 1\nValueError: boom',
                          "level": "", "logger": "", "timestamp": None}


def test_the_file_handler_fans_out_rotates_and_lets_go(tmp_path: Path,
                                                        test_log: logging.Logger) -> None:
    path = tmp_path / "logs" / "appliance.log"
    handler = logs.attach_file_logging(path)
    try:
        assert logs.file_handler_for(path) is handler
        assert logs.attach_file_logging(path) is handler  # shared, counted
        logs.detach_file_logging(handler)
        subscription = handler.subscribe()
        test_log.info("first line")
        line, created = subscription.get(timeout=5) or ("", 0.0)
        assert line.endswith(f"INFO {LOGGER}: first line") and created > 0
        handler.maxBytes = 300  # rotate soon: five old files are kept, no more
        for n in range(40):
            test_log.info("filler %d %s", n, "x" * 50)
        assert sorted(p.name for p in path.parent.iterdir()) == [
            "appliance.log", *(f"appliance.log.{n}" for n in range(1, logs.BACKUP_COUNT + 1))]
        while subscription.get_nowait() is not None:  # the filler
            pass
        other = handler.subscribe(maxsize=1)
        handler.unsubscribe(subscription)
        test_log.info("after")
        test_log.info("dropped")
        test_log.info("dropped too")
        assert subscription.get_nowait() is None  # gone; the other still hears
        assert other.take_dropped() == 2 and other.take_dropped() == 0
        line, _ = other.get_nowait() or ("", 0.0)
        assert line.endswith(": after")
    finally:
        logs.detach_file_logging(handler)
    assert logs.file_handler_for(path) is None
    again = logs.attach_file_logging(path)  # a new handler, not the closed one
    try:
        assert again is not handler and logs.file_handler_for(path) is again
    finally:
        logs.detach_file_logging(again)


class _CountingReads:
    def __init__(self, handle: Any, counter: list[int]) -> None:
        self.handle, self.counter = handle, counter

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.counter[0] += len(chunk)
        return chunk

    def seek(self, *args: int) -> int:
        return self.handle.seek(*args)

    def __enter__(self) -> _CountingReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def test_reading_a_large_file_reads_only_what_the_page_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "appliance.log"
    line = "2024-05-01 12:00:00,000 INFO appliance.big: line {:06d} " + "x" * 60 + "\n"
    with path.open("w", encoding="utf-8") as handle:
        for n in range(100_000):
            handle.write(line.format(n))
    size = path.stat().st_size
    assert size > 9_000_000

    counter = [0]
    real_open = pathlib.Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        # Only the log: other threads of this process (a runtime's option table) open
        # files meanwhile, through the same patched method.
        handle = real_open(self, *args, **kwargs)
        return _CountingReads(handle, counter) if self == path else handle

    monkeypatch.setattr(pathlib.Path, "open", counting_open)
    entries, end = logs.read_entries(path, 0, 100)
    assert [e["message"][:11] for e in entries[:2]] == ["line 099999", "line 099998"]
    assert not end
    assert 0 < counter[0] <= 2 * logs.READ_BLOCK  # counted: the reader opened the log

    counter[0] = 0
    entries, end = logs.read_entries(path, 50_000, 150)
    assert entries[0]["message"].startswith("line 049999")
    assert counter[0] <= (50_000 + 151) * len(line) + 2 * logs.READ_BLOCK < size


# --- log records on the bus --------------------------------------------------------------


def test_warnings_and_errors_reach_the_bus(runtime: Runtime, test_log: logging.Logger) -> None:
    seen: list[Any] = []
    runtime.bus.subscribe(lambda e: seen.append(e) if e.name.startswith("log_") else None)
    test_log.info("info stays in the log")
    test_log.warning("disk is %d%% full", 91)
    test_log.error("cannot write\nsecond line")
    logging.getLogger("appliance.ws").warning("websocket records are not forwarded")
    test_log.warning("already announced", extra={"announce": False})
    assert [(e.name, e.data["message"], e.data["logger"]) for e in seen] == [
        ("log_warning", "disk is 91% full", LOGGER),
        ("log_error", "cannot write", LOGGER),
    ]
    assert seen[0].data["title"] == "Warning" and seen[1].data["title"] == "Error"


def test_forwarding_never_recurses(runtime: Runtime, test_log: logging.Logger) -> None:
    """A bus subscriber that logs a warning for each message must not start a loop."""
    seen: list[Any] = []

    def noisy(event: Any) -> None:
        if event.name.startswith("log_"):
            seen.append(event)
            logging.getLogger("appliance.noisy").warning("saw %s", event.name)

    runtime.bus.subscribe(noisy)
    test_log.warning("first")
    assert [e.data["message"] for e in seen] == ["first"]


def test_a_log_storm_is_rate_limited() -> None:
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    now = [1000.0]
    forwarder = logs.BusForwarder(bus, rate=1.0, burst=3, clock=lambda: now[0])
    logger = logging.getLogger("appliance.test_storm")
    logger.addHandler(forwarder)
    logger.propagate = False
    try:
        for n in range(50):
            logger.error("storm %d", n)
        assert [e.data["message"] for e in seen] == ["storm 0", "storm 1", "storm 2"]
        now[0] += 1.0  # one token back
        logger.error("after the storm")
        assert seen[-1].data["message"] == \
            "after the storm (47 more log message(s) were held back)"
        logger.error("no token left")
        assert len(seen) == 4
    finally:
        logger.removeHandler(forwarder)
        logger.propagate = True


# --- the live stream, through the real server --------------------------------------------


def _open_stream(server: Server) -> requests.Response:
    return requests.get(server.url + "/api/logs/stream", stream=True, timeout=30)


@pytest.mark.e2e
def test_stream_sends_lines_logged_after_connecting(make_server: Callable[..., Server]) -> None:
    server = make_server()
    response = _open_stream(server)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = SseClient(response)
    try:
        marker = f"marker-{uuid.uuid4().hex}"
        # A URL nothing answers: the engine logs the failure (with the URL) when it fails.
        assert server.post("/api/history", {"url": f"http://127.0.0.1:9/{marker}"}).ok
        event = stream.until(
            lambda e: e["event"] == "log_lines" and marker in data(e)["line"], timeout=60
        )
        payload = data(event)
        assert payload["id"] == hashlib.sha256(payload["line"].encode()).hexdigest()
        assert datetime.fromisoformat(payload["datetime"]).utcoffset() is not None
        # The same record is in the file, under the same id.
        page = server.get("/api/logs", params={"limit": 150}).json()
        assert payload["id"] in {entry["id"] for entry in page["logs"]}
    finally:
        stream.close()


@pytest.mark.e2e
def test_stream_cap_and_leaving_clients_free_their_threads(
    make_server: Callable[..., Server],
) -> None:
    server = make_server()  # YTP_MAX_STREAMS: 3 by default
    streams = [_open_stream(server) for _ in range(3)]
    try:
        assert [s.status_code for s in streams] == [200, 200, 200]
        assert server.get("/api/ping").status_code == 200  # other requests still served
        over = requests.get(server.url + "/api/logs/stream", timeout=10)
        assert over.status_code == 503
        assert over.json()["code"] == "UNAVAILABLE"
        assert "streams" in over.json()["error"]
        assert over.headers["Retry-After"]

        streams.pop(0).close()  # the client goes away without a word

        def accepted() -> requests.Response | None:
            response = _open_stream(server)
            if response.status_code == 200:
                return response
            response.close()
            return None

        streams.append(wait_for(accepted, timeout=20, message="a freed stream slot"))
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.e2e
def test_streams_end_cleanly_when_the_server_stops(make_server: Callable[..., Server]) -> None:
    server = make_server()
    stream = SseClient(_open_stream(server))
    try:
        assert server.stop() == 0
        assert stream.ended.wait(10)
        # A clean end of the chunked body, not a connection cut by a killed worker.
        assert stream.error is None
    finally:
        stream.close()
