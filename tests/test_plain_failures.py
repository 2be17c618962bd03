"""What a person reads when a download fails because of the site or of what the box lacks:
what happened, to what, what to do, in the same words on the item, the websocket's log_error,
the journal and /api/yt-dlp/url/info; yt-dlp's own words after it, without a Python repr
(``caused by TransportError(...)``), its bug-report footer, or advice for its command line
(``--ffmpeg-location``, ``--list-formats``) that the service's user cannot follow."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from support.origin import MediaOrigin
from support.server import Server
from support.site import serving
from test_e2e import Feed

from appliance.engine.failures import explain

ENDED = {"error", "finished"}
# What a person cannot read or follow, in any message the service shows.
UNREADABLE = ("caused by", "Error(", "HTTPConnection(", "please report", "yt-dlp -U",
              "--ffmpeg-location", "--list-formats", "--abort-on-error", "Traceback")


class _Refusing(http.server.BaseHTTPRequestHandler):
    """A site that answers every request 403, as one that wants a login does."""

    def do_GET(self) -> None:
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet in the test output
        pass


@pytest.fixture
def refusing_site() -> Iterator[str]:
    with serving(_Refusing) as url:
        yield url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _failure_cases(origin: MediaOrigin, refusing: str) -> dict[str, tuple[dict, str]]:
    """Each case: the add request and how its error must start."""
    port = closed_port()
    tls_on_plain_http = origin.clip_url.replace("http://", "https://")
    return {
        "refused": ({"url": f"http://127.0.0.1:{port}/clip.mp4"},
                    f"Connection refused by 127.0.0.1:{port}: nothing answers there"),
        "unresolvable": ({"url": "http://nothing.invalid/clip.mp4"},
                         "The name nothing.invalid could not be found (DNS)"),
        "tls": ({"url": tls_on_plain_http},
                "A secure connection (HTTPS) to the site could not be made"),
        "forbidden": ({"url": f"{refusing}/clip.mp4"},
                      "The site refused access (HTTP 403 Forbidden): it may need a login"),
        "server error": ({"url": origin.error_500_url},
                         "The site failed with an error of its own (HTTP 500"),
        "no such format": ({"url": origin.clip_url, "cli": "-f 999"},
                           "The site does not offer the format asked for (-f"),
    }


def _readable(text: str) -> None:
    for part in UNREADABLE:
        assert part not in text, text


def test_site_failures_are_said_plainly_the_same_on_item_websocket_and_log(
        make_server: Callable[..., Server], origin: MediaOrigin, refusing_site: str) -> None:
    server = make_server()
    feed = Feed(server.ws_url)
    try:
        cases = _failure_cases(origin, refusing_site)
        ids = {}
        for name, (request, _) in cases.items():
            answer = server.post("/api/history", request)
            assert answer.status_code == 200, answer.text
            ids[name] = answer.json()[0]["id"]
        for name, (request, start) in cases.items():
            item = server.wait_status(ids[name], ENDED)
            error = item["error"]
            assert item["status"] == "error" and error.startswith(start), (name, error)
            _readable(error)
            said = feed.until(lambda e, i=ids[name]: e["event"] == "log_error"
                              and e["data"].get("id") == i)
            assert said["data"]["message"] == f"{request['url']}: {error}", name
            # the journal: the service's own line says the same, once
            assert server.log().count(f"item={ids[name]} url={request['url']}: {error}") == 1
    finally:
        feed.close()


def test_url_info_says_a_failure_as_the_item_does(
        make_server: Callable[..., Server]) -> None:
    server = make_server()
    url = f"http://127.0.0.1:{closed_port()}/clip.mp4"
    answer = server.get("/api/yt-dlp/url/info", params={"url": url})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "DOWNLOAD_ERROR"
    assert body["error"].startswith(f"Connection refused by {url.split('/')[2]}: "), body
    _readable(body["error"])


def test_a_download_that_needs_ffmpeg_where_there_is_none_says_to_install_it(
        tmp_path: Path, origin: MediaOrigin) -> None:
    # a PATH without ffmpeg, with what the download process runs besides (uname, file)
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("uname", "file"):
        found = shutil.which(name)
        if found:
            os.symlink(found, tools / name)
    server = Server(tmp_path / "service", {"PATH": str(tools)}).start()
    try:
        answer = server.post("/api/history", {"url": origin.clip_url, "preset": "audio-mp3"})
        item = server.wait_status(answer.json()[0]["id"], ENDED)
    finally:
        server.stop()
    assert item["status"] == "error"
    assert item["error"].startswith("This download needs ffmpeg (to merge, convert or remux), "
                                    "and the service finds none on its PATH: install it"), item
    _readable(item["error"])


@pytest.mark.parametrize(("message", "start"), [
    # yt-dlp's own texts, as a download process reports them
    ("[generic] clip: Unable to download webpage: HTTP Error 429: Too Many Requests (caused "
     "by <HTTPError 429: Too Many Requests>)", "The site is limiting requests from this box"),
    ("[generic] loop1: Unable to download webpage: HTTP Error 302: Found (redirect loop "
     "detected) (caused by <HTTPError 302: Found>)",
     "The site sends the address round a loop of redirects"),
    ("[generic] clip: Unable to download webpage: [SSL: CERTIFICATE_VERIFY_FAILED] certificate"
     " verify failed: self-signed certificate (_ssl.c:1006) (caused by SSLError('[SSL: "
     "CERTIFICATE_VERIFY_FAILED] certificate verify failed')); please report this issue on  "
     "https://github.com/yt-dlp/yt-dlp/issues?q= , filling out the appropriate issue template."
     " Confirm you are on the latest version using  yt-dlp -U",
     "The site's certificate is not valid"),
    ("[generic] clip: Unable to download webpage: HTTPSConnection(host='example.com', port="
     "443): Read timed out. (read timeout=20.0) (caused by TransportError(\"HTTPSConnection("
     "host='example.com', port=443): Read timed out. (read timeout=20.0)\"))",
     "example.com:443 did not answer in time"),
    ("Unsupported URL: http://127.0.0.1/page", "yt-dlp knows no site at this address"),
    ("You have requested merging of multiple formats but ffmpeg is not installed. Aborting due "
     "to --abort-on-error", "This download needs ffmpeg (to merge, convert or remux)"),
])
def test_other_site_failures_are_explained(tmp_path: Path, message: str, start: str) -> None:
    explained = explain(message, make_settings(tmp_path))
    assert explained.startswith(start), explained
    _readable(explained)
