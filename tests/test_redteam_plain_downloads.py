"""Red team (plain17): what a person reads when a download fails because the link is dead,
the site cuts the transfer off or stops sending. Each item's error says what happened and what
to do in words, yt-dlp's own words after it in brackets; the bare "HTTP Error 404: Not Found"
and "Got error: 25992 bytes read, 51985 more expected. Giving up after 10 retries" said
neither. The journal's relay of yt-dlp's lines said "(caused by <HTTPError 404: Not Found>)"
and "ERROR: \\x0d[download] Got error: …"."""

from __future__ import annotations

import http.server
from collections.abc import Callable, Iterator

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for
from support.site import serving
from test_plain_failures import ENDED, UNREADABLE


class _DeadAndCut(http.server.BaseHTTPRequestHandler):
    """/gone.mp4 answers 410; /cut.mp4 promises 60,000 bytes and closes after 20,000."""

    def do_GET(self) -> None:
        if self.path.startswith("/cut.mp4"):
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", "60000")
            self.end_headers()
            self.wfile.write(b"\0" * 20000)
            self.close_connection = True
            return
        self.send_response(410 if self.path.startswith("/gone.mp4") else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet in the test output
        pass


@pytest.fixture
def dead_and_cut() -> Iterator[str]:
    with serving(_DeadAndCut) as url:
        yield url


def test_a_dead_link_a_cut_transfer_and_a_stall_say_what_happened_and_what_to_do(
        make_server: Callable[..., Server], origin: MediaOrigin, dead_and_cut: str) -> None:
    server = make_server(YTP_STALL_TIMEOUT="5")
    cases = {
        origin.fail_url: (
            "The site has nothing at this address (HTTP 404 Not Found): the link is wrong, or "
            "what it led to was removed or made private. Check the link in a browser. "
            "([generic] fail: Unable to download webpage: HTTP Error 404: Not Found)"),
        f"{dead_and_cut}/gone.mp4": (
            "The site says what was at this address is gone for good (HTTP 410 Gone): it was "
            "removed, and cannot be downloaded from there any more. ([generic] gone: Unable "
            "to download webpage: HTTP Error 410: Gone)"),
        f"{dead_and_cut}/cut.mp4": (
            "The site broke the transfer off part way through, each of 10 times yt-dlp tried "
            "again: it is overloaded, or the connection is unsteady. Try again later. "
            "([download] Got error: "),
        origin.stall_url(100_000): (
            "No progress for 5 s: yt-dlp stalled (the site stopped sending, or the connection "
            "hangs); it was stopped. Retry it later."),
    }
    ids = {url: server.post("/api/history", {"url": url}).json()[0]["id"] for url in cases}
    for url, said in cases.items():
        item = server.wait_status(ids[url], ENDED)
        assert item["status"] == "error", item
        assert item["error"].startswith(said), item["error"]
        assert not any(part in item["error"] for part in UNREADABLE), item["error"]
        # the journal's line says the same (written once the end is stored: waited for)
        line = f"item={ids[url]} url={url}: {item['error']}"
        wait_for(lambda line=line: line in server.log(), timeout=30, message=line)
    # and yt-dlp's own lines there hold no repr, nor its progress bar's carriage return
    relayed = [line for line in server.log().splitlines() if "yt-dlp [" in line]
    assert any("HTTP Error 410: Gone" in line for line in relayed), relayed
    assert not [line for line in relayed if "caused by" in line or "\\x0d" in line]
