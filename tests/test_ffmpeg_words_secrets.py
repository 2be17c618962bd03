"""ffmpeg's words in an item's error carry no stream's secrets: a site's stream addresses are
signed (a token in the query, a user and password before the host), ffmpeg names the address
it could not open, and the error is read by every client of the API and sent to every
notification target."""

from __future__ import annotations

import http.server
from collections.abc import Callable, Iterator

import pytest
from support.origin import MediaOrigin
from support.server import wait_for
from support.site import serving

from appliance.runtime import Runtime

SECRET = "s3cr3t-t0ken"


@pytest.fixture
def site(origin: MediaOrigin) -> Iterator[str]:
    """``/start.m3u8``: sends yt-dlp on to the stream's signed address (``/locked.m3u8?token=``,
    the site's secret, not the person's: so ffmpeg is handed it), a playlist the site gives
    yt-dlp, then refuses (403) to ffmpeg when it fetches it in turn (ffmpeg's HTTP client asks
    for ``Icy-MetaData``, yt-dlp's does not)."""
    segment = f"{origin.base_url}/hls/seg000.ts"
    playlist = (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{segment}\n"
                f"#EXT-X-ENDLIST\n").encode()

    class Site(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/start.m3u8":
                self.send_response(302)
                self.send_header("Location", f"/locked.m3u8?token={SECRET}&e=1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            refused = self.headers.get("Icy-MetaData") is not None
            body = b"no" if refused else playlist
            self.send_response(403 if refused else 200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Site) as url:
        yield url


def test_ffmpeg_s_words_in_an_error_name_the_stream_without_its_secrets(
        start_runtime: Callable[..., Runtime], site: str) -> None:
    rt = start_runtime()
    # (a person's own secrets in the item's address keep ffmpeg off the network:
    # test_secrets18_command_lines; a site's signed address is handed to it)
    (item,) = rt.engine.add([{"url": f"{site}/start.m3u8", "cli": "--hls-prefer-ffmpeg"}])
    ended = wait_for(lambda: (got := rt.engine.get(item.id)) and got.kind == "done" and got,
                     timeout=120, message="the download to end")
    assert ended.status == "error", ended
    # ffmpeg's own words follow its exit code: the address it was refused, and the answer
    words = ended.error.partition("ffmpeg exited with code 1: ")[2]
    assert f"{site.partition('://')[2]}/locked.m3u8?…" in words, ended.error
    assert "403" in words, ended.error
    assert SECRET not in ended.error, ended.error
