"""The bounds on answers that last (appliance/slots.py) and the files they bound, in process:
a place is taken only by a body that needs one, given back exactly once however the body ends,
and a request over the bound is told so before any header of the file."""

from __future__ import annotations

import gc
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from support.browsing import listed, new_folder

from appliance import errors
from appliance.api.downloads import TRANSFER_SIZE
from appliance.runtime import Runtime
from appliance.server import REQUEST_THREADS, request_threads
from appliance.slots import IMAGE_FETCHES, OUTSIDE_WAITS, SLOT_WAIT, HeldBody, HeldFile, Slots

# --- Slots ----------------------------------------------------------------------------------


def test_places_are_taken_up_to_the_count_and_one_more_is_told_why() -> None:
    slots = Slots(2, "Busy (2 things); try again.", wait=0, retry_after=7)
    assert slots.wait == 0 and Slots(1, "x").wait == SLOT_WAIT
    slots.take()
    slots.take()
    assert slots.taken == 2
    with pytest.raises(errors.AppError) as refused:
        slots.take()
    assert refused.value.status == 503
    assert refused.value.message == "Busy (2 things); try again."
    assert refused.value.headers == {"Retry-After": "7"}
    assert slots.taken == 2
    slots.give_back()
    slots.take()  # the place given back is free again
    assert slots.taken == 2


def test_a_request_over_the_bound_gets_the_place_given_back_while_it_waits() -> None:
    slots = Slots(1, "Busy", wait=30)
    slots.take()
    took = threading.Event()

    def take() -> None:
        slots.take()
        took.set()

    waiter = threading.Thread(target=take, daemon=True)
    waiter.start()
    assert not took.wait(0.2)  # waiting, not refused, not let through
    slots.give_back()
    assert took.wait(10)
    assert slots.taken == 1
    waiter.join(10)


def test_a_place_given_back_that_was_not_taken_is_a_fault_not_a_free_place() -> None:
    slots = Slots(1, "Busy", wait=0)
    with pytest.raises(RuntimeError):
        slots.give_back()
    assert slots.taken == 0
    slots.take()
    with pytest.raises(errors.AppError):  # still one place, not two
        slots.take()


def test_one_holder_takes_at_most_its_share_and_gets_429_before_the_bound() -> None:
    slots = Slots(4, "Busy", wait=0, retry_after=3, share=2, over_share="Yours are taken.")
    slots.take("a")
    slots.take("a")
    with pytest.raises(errors.AppError) as over:
        slots.take("a")
    assert over.value.status == 429 and over.value.message == "Yours are taken."
    assert over.value.headers == {"Retry-After": "3"}
    slots.take("b")
    slots.take()  # no holder known: only the bound counts
    assert slots.taken == 4
    with pytest.raises(errors.AppError) as full:
        slots.take("c")
    assert full.value.status == 503
    with pytest.raises(RuntimeError):  # c holds none: not a free place for a
        slots.give_back("c")
    slots.give_back("a")
    slots.take("a")  # a's place given back is a's again
    body = HeldBody([b"x"], slots, "b")  # b's place, held by the file being sent
    assert list(body) == [b"x"] and slots.taken == 3
    slots.give_back()  # the holder-less place
    slots.take("b")
    slots.take("b")  # the body gave b's place back: b has its whole share again
    with pytest.raises(errors.AppError) as over_again:
        slots.take("b")
    assert over_again.value.status == 429 and slots.taken == 4


# --- bodies that hold a place ---------------------------------------------------------------


def held(count: int = 1) -> Slots:
    slots = Slots(count, "Busy", wait=0)
    slots.take()
    return slots


def test_a_body_read_to_its_end_gives_its_place_back_once() -> None:
    slots = held()
    body = HeldBody([b"a", b"b"], slots)
    assert b"".join(body) == b"ab"
    assert slots.taken == 0
    body.close()  # as gunicorn does after the last byte: nothing given back twice
    assert slots.taken == 0


def test_a_body_closed_before_its_end_closes_what_makes_it_and_gives_its_place_back() -> None:
    slots = held()
    ended: list[str] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"first"
            yield b"second"
        finally:
            ended.append("finally")

    body = HeldBody(chunks(), slots)
    assert next(iter(body)) == b"first"
    assert slots.taken == 1  # still being sent
    body.close()  # the client went away
    assert ended == ["finally"] and slots.taken == 0


def test_a_body_never_iterated_still_closes_its_source_and_gives_its_place_back() -> None:
    slots = held()
    source = io.BytesIO(b"unsent")
    HeldBody(source, slots).close()
    assert source.closed and slots.taken == 0
    slots.take()
    HeldBody([b"never handed to the server"], slots)  # dropped: collected
    gc.collect()
    assert slots.taken == 0


def test_a_held_file_is_the_file_to_the_server_and_closing_it_frees_the_place(
        tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    slots = held()
    file = HeldFile(open(path, "rb"), slots)  # noqa: SIM115 - closed below, as the server does
    assert file.fileno() == file._file.fileno() and "b" in file.mode
    file.seek(3)
    assert file.read(4) == b"3456" and file.tell() == 7
    file.close()
    assert file.closed and slots.taken == 0
    file.close()
    assert slots.taken == 0


# --- the worker's threads -------------------------------------------------------------------


def test_the_worker_has_a_thread_for_each_place_beside_the_eight(runtime: Runtime) -> None:
    settings = runtime.settings.replace(max_transfers=5, max_streams=2, player_max_ffmpeg=4)
    assert request_threads(settings) == (REQUEST_THREADS + 5 + 2 + 4 + IMAGE_FETCHES
                                         + OUTSIDE_WAITS)
    assert runtime.transfers.count == runtime.settings.max_transfers == 16
    assert runtime.streams.count == runtime.settings.max_streams


def test_the_runtimes_transfers_give_one_client_half_and_say_why(app_with: Any) -> None:
    """The places the runtime sets for files being sent (YTP_MAX_TRANSFERS=4): one client
    (an address) gets two, then 429 that says why; the rest go to others, then 503."""
    runtime, _ = app_with(YTP_MAX_TRANSFERS="4")
    transfers = runtime.transfers
    for holder in ("10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        transfers.take(holder)
    with pytest.raises(errors.AppError) as over:
        transfers.take("10.0.0.2")
    assert (over.value.code, over.value.message) == (errors.TOO_MANY_REQUESTS, (
        "This client is already being sent 2 files, the most one client may at once (half of "
        "YTP_MAX_TRANSFERS: the rest are kept for others); try again when one ends."))
    with pytest.raises(errors.AppError) as full:
        transfers.take("10.0.0.5")
    assert (full.value.code, full.value.message) == (
        errors.UNAVAILABLE, "Too many files are being sent (4 at once, YTP_MAX_TRANSFERS); "
        "try again.")


# --- files sent through the API -------------------------------------------------------------


@pytest.fixture
def app(app_with: Any) -> tuple[Runtime, TestClient]:
    runtime, client = app_with(YTP_MAX_TRANSFERS="1")
    assert runtime.transfers.wait == runtime.outside.wait == 0  # refused at once
    return runtime, client


@pytest.fixture
def film(app: tuple[Runtime, TestClient]) -> str:
    runtime, _ = app
    path = runtime.settings.download_path / "film.mkv"
    path.write_bytes(os.urandom(TRANSFER_SIZE) + b"tail")
    return "/api/download/film.mkv"


def test_a_big_file_over_the_bound_is_refused_before_any_header_of_it(
        app: tuple[Runtime, TestClient], film: str) -> None:
    runtime, client = app
    runtime.transfers.take()  # the one place is taken: a film being played
    refused = client.simulate_get(film)
    assert refused.status_code == 503
    assert refused.json["error"] == (
        "Too many files are being sent (1 at once, YTP_MAX_TRANSFERS); try again.")
    assert refused.headers["retry-after"] == "2"
    for header in ("content-disposition", "etag", "last-modified", "content-range",
                   "accept-ranges"):
        assert header not in refused.headers, header
    assert refused.headers["content-type"].startswith("application/json")
    assert runtime.transfers.taken == 1

    # Answers that send no more than TRANSFER_SIZE bytes need no place.
    head = client.simulate_head(film)
    assert head.status_code == 200 and int(head.headers["content-length"]) == TRANSFER_SIZE + 4
    assert client.simulate_get(film, headers={"If-None-Match": head.headers["etag"]}
                               ).status_code == 304
    small = client.simulate_get(film, headers={"Range": f"bytes=0-{TRANSFER_SIZE - 1}"})
    # (the test client reads the file to its end: the server sends Content-Length bytes)
    assert small.status_code == 206 and int(small.headers["content-length"]) == TRANSFER_SIZE
    tail = client.simulate_get(film, headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == b"tail"
    assert client.simulate_get(film, headers={"Range": f"bytes=0-{TRANSFER_SIZE}"}
                               ).status_code == 503  # one byte more
    assert runtime.transfers.taken == 1

    runtime.transfers.give_back()
    sent = client.simulate_get(film)
    assert sent.status_code == 200 and len(sent.content) == TRANSFER_SIZE + 4
    assert runtime.transfers.taken == 0  # the body, read and closed, gave it back


def test_a_file_that_cannot_be_sent_after_its_place_was_taken_gives_it_back(
        app: tuple[Runtime, TestClient], film: str) -> None:
    runtime, client = app
    answer = client.simulate_get(film, headers={"Range": f"bytes={TRANSFER_SIZE + 10}-"})
    assert answer.status_code == 416
    assert runtime.transfers.taken == 0


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    yield from new_folder(*app)


def test_a_big_zip_holds_a_place_and_a_small_one_does_not(app: tuple[Runtime, TestClient],
                                                         folder: Path) -> None:
    runtime, client = app
    (folder / "big.mp4").write_bytes(os.urandom(TRANSFER_SIZE))
    (folder / "small.mp4").write_bytes(b"small")
    listed(client, folder.name, {"big.mp4", "small.mp4"})

    def zipped(name: str) -> str:
        prepared = client.simulate_post("/api/file/download", json=[f"{folder.name}/{name}"])
        assert prepared.status_code == 200, prepared.text
        return f"/api/file/download/{prepared.json['token']}"

    big, small = zipped("big.mp4"), zipped("small.mp4")
    runtime.transfers.take()
    refused = client.simulate_get(big)
    assert refused.status_code == 503 and "YTP_MAX_TRANSFERS" in refused.json["error"]
    assert "content-disposition" not in refused.headers and "etag" not in refused.headers
    assert client.simulate_get(small).status_code == 200
    runtime.transfers.give_back()
    sent = client.simulate_get(big)
    assert sent.status_code == 200 and int(sent.headers["content-length"]) > TRANSFER_SIZE
    assert runtime.transfers.taken == 0
    assert client.simulate_get(big, headers={"If-None-Match": sent.headers["etag"]}
                               ).status_code == 304
    assert runtime.transfers.taken == 0


def test_streams_share_the_same_kind_of_bound(app: tuple[Runtime, TestClient]) -> None:
    runtime, _ = app
    assert runtime.streams.wait == 0  # one more stream is refused at once
    for _ in range(runtime.streams.count):
        runtime.streams.take()
    with pytest.raises(errors.AppError) as refused:
        runtime.streams.take()
    assert refused.value.message == (
        f"Too many live streams are open ({runtime.streams.count}, YTP_MAX_STREAMS); close one "
        "and try again.")
    assert refused.value.headers == {"Retry-After": "5"}


def test_a_place_taken_for_a_block_is_given_back_however_the_block_ends() -> None:
    slots = Slots(1, "Busy", wait=0)
    with pytest.raises(ValueError), slots:
        assert slots.taken == 1
        raise ValueError
    assert slots.taken == 0
    with slots, pytest.raises(errors.AppError):
        slots.take()
    assert slots.taken == 0


OUTSIDE = [
    ("GET", "/api/yt-dlp/url/info?url=https://example.com/watch", None),
    ("POST", "/api/conditions/test", {"url": "https://example.com/watch", "condition": "x"}),
    ("POST", "/api/tasks/inspect", {"url": "https://example.com/feed.rss"}),
    ("POST", "/api/tasks", {"name": "t", "url": "https://example.com/feed.rss"}),
    ("POST", "/api/notifications/test", None),
]


def test_requests_that_would_wait_on_other_servers_are_bounded(
        app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    for _ in range(OUTSIDE_WAITS):  # as requests to slow servers do
        runtime.outside.take()
    try:
        for method, path, body in OUTSIDE:
            busy = client.simulate_request(method, path, json=body)
            assert busy.status_code == 503, (path, busy.text)
            assert busy.json["error"] == (
                f"Too many requests are waiting on other servers ({OUTSIDE_WAITS} at once: URL "
                "info, task previews, tests); try again shortly.")
            assert busy.headers["retry-after"] == "2"
        assert client.simulate_get("/api/tasks").status_code == 200  # the rest is answered
        assert client.simulate_get("/api/tasks/1").status_code == 404
    finally:
        for _ in range(OUTSIDE_WAITS):
            runtime.outside.give_back()
    refused = client.simulate_get("/api/yt-dlp/url/info", params={"url": "not a url"})
    assert refused.status_code == 400  # ... and a request that failed gave its place back
    assert runtime.outside.taken == 0


def test_remote_images_are_bounded(app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    runtime.image_fetches.wait = 0  # (one second in the service)
    for _ in range(IMAGE_FETCHES):
        runtime.image_fetches.take()
    try:
        busy = client.simulate_get("/api/thumbnail", params={"url": "https://example.com/a.jpg"})
        assert busy.status_code == 503
        assert busy.json["error"] == f"{IMAGE_FETCHES} remote images are being fetched; try again."
    finally:
        for _ in range(IMAGE_FETCHES):
            runtime.image_fetches.give_back()
    assert runtime.image_fetches.taken == 0
