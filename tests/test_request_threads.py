"""The HTTP worker's request threads (appliance/request_threads.py): all started with the
worker, so that none is refused later at the service's limit of tasks; the one idle last
takes the next request, so that the threads beyond the busiest moment stay cold."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import wait
from pathlib import Path

import pytest
from support.pids_limit import pids_limit
from support.server import Server

from appliance.request_threads import RequestThreads

DEADLINE = 30.0


def request_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("request_")}


@pytest.fixture
def pool() -> Iterator[RequestThreads]:
    pool = RequestThreads(5)
    yield pool
    pool.shutdown()


def test_every_thread_starts_with_the_pool() -> None:
    before = request_threads()
    pool = RequestThreads(5)
    try:
        started = request_threads() - before
        assert len(started) == 5 and all(t.is_alive() for t in started)
    finally:
        pool.shutdown()
    assert not any(t.is_alive() for t in started), "shutdown left threads running"


def test_requests_one_after_another_are_all_taken_by_the_same_thread(
        pool: RequestThreads) -> None:
    """A queue would hand each to the thread that waited longest: five threads in turn, each
    with a database connection of its own."""
    names = [pool.submit(lambda: threading.current_thread().name).result(DEADLINE)
             for _ in range(20)]
    assert len(set(names)) == 1, names


def test_requests_at_once_take_as_many_threads_and_the_rest_wait_their_turn(
        pool: RequestThreads) -> None:
    release = threading.Event()
    running = threading.Semaphore(0)

    def hold() -> str:
        running.release()
        assert release.wait(DEADLINE)
        return threading.current_thread().name

    held = [pool.submit(hold) for _ in range(5)]
    for _ in range(5):
        assert running.acquire(timeout=DEADLINE)
    later = [pool.submit(lambda n=n: n) for n in range(3)]
    assert not any(f.done() for f in later), "work ran with every thread held"
    release.set()
    assert len({f.result(DEADLINE) for f in held}) == 5
    assert [f.result(DEADLINE) for f in later] == [0, 1, 2]


def test_a_failure_is_the_future_s_and_the_thread_serves_on(pool: RequestThreads) -> None:
    failed = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failed.result(DEADLINE)
    assert pool.submit(lambda: "next").result(DEADLINE) == "next"


def test_work_given_before_the_shutdown_is_done_and_none_after(pool: RequestThreads) -> None:
    release = threading.Event()
    held = [pool.submit(release.wait, DEADLINE) for _ in range(5)]
    waiting = pool.submit(lambda: "waited")
    pool.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    release.set()
    done, _ = wait([*held, waiting], timeout=DEADLINE)
    assert len(done) == 6 and waiting.result() == "waited"


def test_the_service_at_its_limit_of_tasks_answers_with_the_threads_it_started_with(
        tmp_path: Path) -> None:
    """Six files being sent to clients that do not read hold six request threads while the
    worker may start no thread at all (systemd's TasksMax reached); the API still answers,
    from the same worker. Started as requests came, the third thread was refused and the
    refusal killed the worker."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with (downloads / "big.bin").open("wb") as big:
        big.truncate(1 << 30)  # more than the loopback's buffers take
    server = Server(tmp_path).start()
    clients: list[socket.socket] = []
    try:
        worker = server.pids()[1]
        with pids_limit([worker]) as limit:
            limit.hold()
            for _ in range(6):
                client = socket.create_connection(("127.0.0.1", server.port))
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                client.sendall(b"GET /api/download/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(client)
            for client in clients:
                client.settimeout(DEADLINE)
                assert client.recv(12, socket.MSG_PEEK) == b"HTTP/1.1 200"
            assert server.get("/api/ping").status_code == 200
            assert server.pids()[1] == worker, "the worker was replaced"
    finally:
        for client in clients:
            client.close()
        server.stop()
    assert "can't start new thread" not in server.log()
