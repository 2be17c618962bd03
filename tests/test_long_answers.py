"""Files being sent and requests waiting on other servers do not take the API's request threads
(stop 34).

A file's answer holds a request thread for as long as the client reads it: a video played in a
browser or on a cast device, a film copied to a laptop, a zip of a season. With eight request
threads, eight of those (a browser opens six connections to one host) left nothing for the
API: ``/api/ping`` waited until a transfer ended. Now the worker has a thread for every answer
that may last (files being sent, live streams, player segments, each kind bounded) on top of
the eight, and files sent at once are bounded by ``YTP_MAX_TRANSFERS``: one more is told so.
The clients here read steadily, well above the slowest rate the service accepts, so nothing
cuts them off. The same holds for requests that wait on another server (a URL's info, a task's
preview): a few at once on threads of their own, one more refused at once. Deadlines are
patience, not measurements.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest
import requests
from support.server import Server, wait_for

from appliance.http_pacing import MIN_SEND_RATE
from appliance.server import REQUEST_THREADS
from appliance.slots import OUTSIDE_WAITS

pytestmark = pytest.mark.e2e

BIG = 64 * 1024 * 1024  # far more than the kernel's buffers hold between the two ends
ANSWER_DEADLINE = 5.0
READ_PIECE = 16 * 1024
READ_PAUSE = 0.05  # 320 KiB/s: steady, 20 times the slowest rate the service accepts
assert READ_PIECE / READ_PAUSE > 10 * MIN_SEND_RATE


class Transfer:
    """A client (at address ``source``: each device of a house has its own) downloading
    ``path`` steadily, from a small receive buffer, until closed."""

    def __init__(self, server: Server, path: str, source: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        self.sock.settimeout(30)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        self.received = bytearray()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.closed.wait(READ_PAUSE):
            try:
                data = self.sock.recv(READ_PIECE)
            except OSError:
                return
            if not data:
                return
            self.received += data

    @property
    def status(self) -> int | None:
        head = bytes(self.received[:12])
        return int(head[9:12]) if head.startswith(b"HTTP/1.1 ") and len(head) == 12 else None

    def receiving(self) -> bool:
        """The status line and the start of the file are here."""
        return len(self.received) > 256 * 1024

    def refused(self) -> bool:
        """A whole short answer (an error's) is here."""
        head, _, body = bytes(self.received).partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        return length is not None and len(body) >= length and length < 4096

    def error(self) -> str:
        return json.loads(bytes(self.received).partition(b"\r\n\r\n")[2])["error"]

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        self.thread.join(timeout=10)


@pytest.fixture
def transfers() -> Iterator[Callable[..., Transfer]]:
    opened: list[Transfer] = []

    def start(server: Server, path: str, source: str = "127.0.0.1") -> Transfer:
        opened.append(Transfer(server, path, source))
        return opened[-1]

    yield start
    for transfer in opened:
        transfer.close()


def big_file(server: Server, name: str = "film.mkv") -> str:
    with open(server.download_path / name, "wb") as file:
        file.truncate(BIG)
    return f"/api/download/{name}"


def test_the_api_answers_while_more_files_are_sent_than_it_has_request_threads(
        make_server: Callable[..., Server], transfers: Callable[..., Transfer]
) -> None:
    server = make_server()
    path = big_file(server)
    sending = [transfers(server, path, f"127.0.0.{10 + n}") for n in range(REQUEST_THREADS + 2)]
    wait_for(lambda: all(t.receiving() for t in sending), timeout=30,
             message="every transfer to be under way")
    assert {t.status for t in sending} == {200}
    for _ in range(3):
        assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).status_code == 200
        history = requests.get(server.url + "/api/history", timeout=ANSWER_DEADLINE)
        assert history.status_code == 200 and "queue" in history.json()
    assert all(not t.closed.is_set() and t.thread.is_alive() for t in sending)


def test_a_transfer_past_the_bound_is_told_to_come_back_and_a_closed_one_frees_its_place(
        make_server: Callable[..., Server], transfers: Callable[..., Transfer]
) -> None:
    server = make_server(YTP_MAX_TRANSFERS="2")
    path = big_file(server)
    first, second = transfers(server, path, "127.0.0.2"), transfers(server, path, "127.0.0.3")
    wait_for(lambda: first.receiving() and second.receiving(), timeout=30,
             message="two transfers to be under way")

    refused = requests.get(server.url + path, timeout=ANSWER_DEADLINE, stream=True)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"]
    assert refused.json()["error"] == (
        "Too many files are being sent (2 at once, YTP_MAX_TRANSFERS); try again.")
    # What sends no file takes no place: its headers, a copy the client has, another route.
    head = requests.head(server.url + path, timeout=ANSWER_DEADLINE)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == BIG
    cached = requests.get(server.url + path, headers={"If-None-Match": head.headers["ETag"]},
                          timeout=ANSWER_DEADLINE)
    assert cached.status_code == 304

    first.close()  # a client that goes away mid-file gives its place back
    answer: list[requests.Response] = []

    def served() -> bool:
        response = requests.get(server.url + path, headers={"Range": "bytes=0-9"},
                                timeout=ANSWER_DEADLINE)
        answer[:] = [response]
        return response.status_code != 503

    wait_for(served, timeout=30, message="the closed transfer's place to be free")
    assert answer[0].status_code == 206 and answer[0].content == bytes(10)
    # ... and one that was sent whole gives it back at once: the bound is not used up.
    for _ in range(3):
        assert requests.get(server.url + path, headers={"Range": "bytes=0-9"},
                            timeout=ANSWER_DEADLINE).status_code == 206


def test_one_client_gets_half_the_transfers_and_the_house_the_rest(
        make_server: Callable[..., Server], transfers: Callable[..., Transfer]) -> None:
    """A download manager opening many connections for one film took every place: the
    television's film got 503 until it was done."""
    server = make_server(YTP_MAX_TRANSFERS="4")
    path = big_file(server)
    manager = [transfers(server, path, "127.0.0.2") for _ in range(2)]
    wait_for(lambda: all(t.receiving() for t in manager), timeout=30,
             message="the manager's two transfers to be under way")
    over = transfers(server, path, "127.0.0.2")
    wait_for(over.refused, timeout=30, message="the manager's third to be refused")
    assert over.status == 429 and over.error() == (
        "This client is already being sent 2 files, the most one client may at once (half of "
        "YTP_MAX_TRANSFERS: the rest are kept for others); try again when one ends.")
    television = transfers(server, path, "127.0.0.3")
    wait_for(television.receiving, timeout=30, message="the television's film to be sent")
    assert television.status == 200

    manager[0].close()  # one of the manager's ends: its share has room again
    again: list[Transfer] = []

    def sent_again() -> bool:
        if again and again[-1].refused():
            again[-1].close()
            again.clear()
        if not again:
            again.append(transfers(server, path, "127.0.0.2"))
        return again[-1].receiving()

    wait_for(sent_again, timeout=30, message="the manager's place to be given back")
    assert again[0].status == 200


class Tarpit:
    """A server that takes connections and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/watch?v=never"
        self.held: list[socket.socket] = []
        self.taking = threading.Thread(target=self._take, daemon=True)
        self.taking.start()

    def _take(self) -> None:
        while True:
            try:
                self.held.append(self.listener.accept()[0])
            except OSError:  # closed
                return

    def close(self) -> None:
        """Every connection reset: the service's extractions end at once."""
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()
        self.taking.join(10)
        for sock in self.held:
            sock.close()


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    pit = Tarpit()
    yield pit
    pit.close()


def test_the_api_answers_while_requests_wait_on_a_server_that_never_answers(
        make_server: Callable[..., Server], tarpit: Tarpit) -> None:
    server = make_server()
    url = f"{server.url}/api/yt-dlp/url/info?url={quote(tarpit.url, safe='')}"
    statuses: list[int | str] = []

    def ask() -> None:
        try:
            statuses.append(requests.get(url, timeout=120).status_code)
        except requests.RequestException as exc:  # the server stopped at the test's end
            statuses.append(type(exc).__name__)

    asking = REQUEST_THREADS + 2
    for _ in range(asking):
        threading.Thread(target=ask, daemon=True).start()
    wait_for(lambda: len(statuses) >= asking - OUTSIDE_WAITS, timeout=30,
             message="the requests past the bound to be refused")
    assert statuses == [503] * (asking - OUTSIDE_WAITS)
    wait_for(lambda: tarpit.held, timeout=30, message="an extraction to reach the tarpit")
    for _ in range(3):
        assert requests.get(server.url + "/api/ping", timeout=ANSWER_DEADLINE).status_code == 200
        tasks = requests.get(server.url + "/api/tasks", timeout=ANSWER_DEADLINE)
        assert tasks.status_code == 200
    assert len(statuses) == asking - OUTSIDE_WAITS  # the others still wait on the tarpit
