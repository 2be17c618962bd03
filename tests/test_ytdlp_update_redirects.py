"""Where a package index's redirect may lead the yt-dlp update: urllib follows one to
ftp://, where no deadline of the update's bounded the answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from support.server import wait_for
from test_ytdlp_update_hostile import RawIndex

from appliance.ytdlp_update.index import newest_version


class Trickle(RawIndex):
    """A server that speaks first (as FTP's does), a byte every tenth of a second, until
    the test ends."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        super().__init__(lambda _conn, _stop: None)
        self.port = self.listener.getsockname()[1]

    def _one(self, conn: socket.socket) -> None:
        self.connected.set()
        with conn:
            while not self.stop.wait(0.1):
                try:
                    conn.sendall(b"2")
                except OSError:
                    return


@pytest.fixture
def ftp() -> Iterator[Trickle]:
    server = Trickle()
    yield server
    server.close()


def test_a_redirect_to_ftp_is_not_followed(ftp: Trickle) -> None:
    index = RawIndex(lambda conn, _stop: conn.sendall(
        f"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1:{ftp.port}/simple/yt-dlp/\r\n"
        f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode()))
    found: list[str | None] = []
    try:
        reader = threading.Thread(target=lambda: found.append(
            newest_version(index.url, "yt-dlp", timeout=2)), daemon=True)
        reader.start()
        wait_for(lambda: not reader.is_alive(), timeout=60,
                 message="the index's answer to be given up on")
    finally:
        index.close()
    assert found == [None]
    assert not ftp.connected.is_set()
