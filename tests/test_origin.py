"""The local media origin behaves like a real media host, as seen by HTTP clients and yt-dlp."""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yt_dlp
from support import origin_http
from support.origin import DEFAULT_SLOW_RATE, MediaOrigin
from support.origin_http import RequestRecord, parse_range

FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"

# yt-dlp's generic extractor warns on every fallback and draws progress bars; keep output clean.
YDL_QUIET = {"quiet": True, "no_warnings": True, "noprogress": True}


# ---- helpers ---------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, target, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def open_stream(url: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", target)
    return conn, conn.getresponse()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until true or the deadline passes; the result says which."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            return False
        event.wait(0.01)
    return True


def probe(path: Path) -> dict:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return json.loads(out)


def origin_threads(origin: MediaOrigin, port: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"media-origin-{port}")]


def port_of(origin: MediaOrigin) -> int:
    port = urllib.parse.urlsplit(origin.base_url).port
    assert port is not None
    return port


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One root per module (and per xdist worker) so generation happens once and is then cached.
    return tmp_path_factory.mktemp("origin-media")


@pytest.fixture(scope="module")
def origin(media_root: Path) -> Iterator[MediaOrigin]:
    with MediaOrigin(media_root) as served:
        yield served


@pytest.fixture
def fresh_origin(media_root: Path) -> Iterator[MediaOrigin]:
    """A private origin for tests that stop it or count its connections."""
    with MediaOrigin(media_root) as served:
        yield served


# ---- plain HTTP ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url_attr", "content_type"),
    [
        ("clip_url", "video/mp4"),
        ("clip2_url", "video/mp4"),
        ("short_url", "video/mp4"),
        ("hls_url", "application/vnd.apple.mpegurl"),
    ],
)
def test_static_media_is_served_whole_with_type_and_length(
    origin: MediaOrigin, url_attr: str, content_type: str
) -> None:
    url = getattr(origin, url_attr)
    resp = fetch(url)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == content_type
    assert resp.headers["Accept-Ranges"] == "bytes"
    expected = origin.path_for(url).read_bytes()
    assert int(resp.headers["Content-Length"]) == len(expected)
    assert resp.body == expected


def test_hls_playlist_segments_are_served_as_mpeg_ts(origin: MediaOrigin) -> None:
    playlist = fetch(origin.hls_url).body.decode()
    segments = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    # ~4 s at 1 s segments; ffmpeg may round the last one.
    assert 3 <= len(segments) <= 5
    for name in segments:
        resp = fetch(urllib.parse.urljoin(origin.hls_url, name))
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "video/mp2t"
        assert resp.body[:1] == b"\x47"  # MPEG-TS sync byte


def test_head_gives_headers_without_body(origin: MediaOrigin) -> None:
    resp = fetch(origin.slow_url, method="HEAD")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "video/mp4"
    assert int(resp.headers["Content-Length"]) == origin.path_for(origin.slow_url).stat().st_size
    assert resp.body == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(("url_attr", "status"), [("fail_url", 404), ("error_500_url", 500)])
def test_failing_urls_answer_their_status(
    origin: MediaOrigin, url_attr: str, status: int, method: str
) -> None:
    assert fetch(getattr(origin, url_attr), method=method).status == status


def test_unknown_path_is_404(origin: MediaOrigin) -> None:
    assert fetch(f"{origin.base_url}/media/nope.mp4").status == 404


def test_playlist_page_is_html_pointing_at_the_clips(origin: MediaOrigin) -> None:
    resp = fetch(origin.playlist_url)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.body.decode()
    for url in origin.playlist_entry_urls:
        assert f'src="{url}"' in page


# ---- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=10-99", (10, 99)),
        ("bytes=1000-", (1000, None)),
        ("bytes=-100", (-100, None)),
        ("bytes=0-99999999", (0, None)),  # end past EOF is clamped, not refused
    ],
)
def test_range_requests_get_206_and_exact_bytes(
    origin: MediaOrigin, header: str, span: tuple[int, int | None]
) -> None:
    data = origin.path_for(origin.clip_url).read_bytes()
    start, end = span
    first = start if start >= 0 else len(data) + start
    last = end if end is not None else len(data) - 1
    resp = fetch(origin.clip_url, headers={"Range": header})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    assert int(resp.headers["Content-Length"]) == last - first + 1
    assert resp.body == data[first : last + 1]


@pytest.mark.parametrize("which", ["at_eof", "past_eof"])
def test_unsatisfiable_range_is_416(origin: MediaOrigin, which: str) -> None:
    size = origin.path_for(origin.clip_url).stat().st_size
    start = size if which == "at_eof" else size + 1000
    resp = fetch(origin.clip_url, headers={"Range": f"bytes={start}-"})
    assert resp.status == 416
    assert resp.headers["Content-Range"] == f"bytes */{size}"
    assert resp.body == b""


def test_range_on_slow_url_resumes_from_offset(origin: MediaOrigin) -> None:
    data = origin.path_for(origin.slow_url).read_bytes()
    offset = len(data) - 50_000
    resp = fetch(origin.slow_url_at(10_000_000), headers={"Range": f"bytes={offset}-"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {offset}-{len(data) - 1}/{len(data)}"
    assert resp.body == data[offset:]


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-0", 100, (0, 0)),
        ("bytes=5-", 100, (5, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=50-10", 100, None),  # malformed: serve it all
        ("bytes=0-1,5-6", 100, None),  # multi-range is not supported: serve it all
        ("items=0-1", 100, None),
        ("bytes=abc-", 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(origin_http.Unsatisfiable):
        parse_range(header, 100)


def test_request_log_records_method_path_and_range(fresh_origin: MediaOrigin) -> None:
    fetch(fresh_origin.clip_url, headers={"Range": "bytes=0-9"})
    fetch(fresh_origin.slow_url_at(1000), method="HEAD")
    assert fresh_origin.requests_for(fresh_origin.clip_url) == [
        RequestRecord("GET", "/media/clip.mp4", "bytes=0-9")
    ]
    # The query string is not part of the logged path, so assertions stay port/rate agnostic.
    assert ("HEAD", "/slow.mp4", None) in fresh_origin.requests
    fresh_origin.clear_requests()
    assert fresh_origin.requests == []


# ---- trickling and shutdown ------------------------------------------------------------------


def test_slow_url_trickles(origin: MediaOrigin) -> None:
    assert origin.slow_rate == DEFAULT_SLOW_RATE
    size = origin.path_for(origin.slow_url).stat().st_size
    conn, resp = open_stream(origin.slow_url)
    try:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) == size
        received = 0
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            received += len(resp.read1(65536))
    finally:
        conn.close()
    # At 64 KiB/s half a second is ~32 KiB of a multi-MB file; generous bounds, no timing.
    assert size > 2_000_000
    assert 0 < received < size // 10


def test_slow_url_rate_query_is_validated(origin: MediaOrigin) -> None:
    assert fetch(f"{origin.slow_url}?rate=0").status == 400
    assert fetch(f"{origin.slow_url}?rate=fast").status == 400


def test_slow_url_at_high_rate_delivers_the_whole_file(origin: MediaOrigin) -> None:
    resp = fetch(origin.slow_url_at(200_000_000))
    assert resp.status == 200
    assert resp.body == origin.path_for(origin.slow_url).read_bytes()


def test_client_disconnect_mid_trickle_is_quiet(
    fresh_origin: MediaOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=origin_http.log.name)
    conn, resp = open_stream(fresh_origin.slow_url)
    assert len(resp.read1(1024)) > 0
    assert fresh_origin.active_connections == 1
    conn.close()
    resp.close()
    # The handler only learns of the hang-up on its next write, then must exit cleanly.
    assert wait_for(lambda: fresh_origin.active_connections == 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_stop_aborts_slow_transfer_and_leaves_nothing_behind(fresh_origin: MediaOrigin) -> None:
    port = port_of(fresh_origin)
    conn, resp = open_stream(fresh_origin.slow_url)
    try:
        assert len(resp.read1(1024)) > 0
        assert origin_threads(fresh_origin, port)
        fresh_origin.stop()
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()
    assert origin_threads(fresh_origin, port) == []
    assert fresh_origin.active_connections == 0
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_context_manager_stops_server(media_root: Path) -> None:
    with MediaOrigin(media_root) as served:
        port = port_of(served)
        assert fetch(served.short_url).status == 200
    assert origin_threads(served, port) == []
    with pytest.raises(RuntimeError):
        _ = served.base_url


# ---- generated media -------------------------------------------------------------------------


def test_clips_are_real_distinct_media(origin: MediaOrigin) -> None:
    clip = probe(origin.path_for(origin.clip_url))
    codecs = {s["codec_type"]: s["codec_name"] for s in clip["streams"]}
    assert codecs == {"video": "h264", "audio": "aac"}
    video = next(s for s in clip["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)
    assert 2.5 < float(clip["format"]["duration"]) < 3.5

    clip2 = probe(origin.path_for(origin.clip2_url))
    assert 1.5 < float(clip2["format"]["duration"]) < 2.5
    assert clip2["format"]["size"] != clip["format"]["size"]

    short = probe(origin.path_for(origin.short_url))
    assert float(short["format"]["duration"]) < 1.5

    slow = probe(origin.path_for(origin.slow_url))
    assert float(slow["format"]["duration"]) > 9


def test_media_is_cached_per_root(origin: MediaOrigin, media_root: Path) -> None:
    files = sorted(p for p in origin.media_dir.rglob("*") if p.is_file() and p.name != ".lock")
    before = {p: p.stat().st_mtime_ns for p in files}
    with MediaOrigin(media_root) as again:
        assert fetch(again.clip_url).status == 200
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_big_file_has_exact_size_ranges_and_is_cached(origin: MediaOrigin) -> None:
    size = 3 * 1024 * 1024 + 7
    url = origin.big_file(size)
    path = origin.path_for(url)
    mtime = path.stat().st_mtime_ns
    assert origin.big_file(size) == url
    assert path.stat().st_mtime_ns == mtime

    head = fetch(url, method="HEAD")
    assert head.status == 200
    assert head.headers["Content-Type"] == "video/mp4"
    assert int(head.headers["Content-Length"]) == size
    tail = fetch(url, headers={"Range": f"bytes={size - 16}-"})
    assert tail.status == 206
    assert tail.body == b"\0" * 16
    # Padding is an mp4 'free' box, so the big file still probes as the clip.
    assert float(probe(path)["format"]["duration"]) > 2.5


def test_tiny_big_file_is_served_whole(origin: MediaOrigin) -> None:
    url = origin.big_file(100)
    resp = fetch(url)
    assert resp.status == 200
    assert len(resp.body) == 100


# ---- real yt-dlp -----------------------------------------------------------------------------


def test_ytdlp_downloads_clip(origin: MediaOrigin, tmp_path: Path) -> None:
    opts = {**YDL_QUIET, "outtmpl": str(tmp_path / "%(id)s.%(ext)s")}
    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(origin.clip_url, download=True)
    out = Path(info["requested_downloads"][0]["filepath"])
    assert out.parent == tmp_path
    assert out.stat().st_size > 0
    assert out.read_bytes() == origin.path_for(origin.clip_url).read_bytes()


@pytest.mark.parametrize("url_attr", ["playlist_url", "feed_url"])
def test_ytdlp_expands_playlist(origin: MediaOrigin, url_attr: str) -> None:
    with yt_dlp.YoutubeDL({**YDL_QUIET, "extract_flat": "in_playlist"}) as ydl:
        info = ydl.extract_info(getattr(origin, url_attr), download=False)
    assert info["_type"] == "playlist"
    assert info["extractor_key"] == "Generic"
    entries = list(info["entries"])
    assert [e["url"] for e in entries] == origin.playlist_entry_urls


@pytest.mark.parametrize("url_attr", ["fail_url", "error_500_url"])
def test_ytdlp_reports_http_errors(origin: MediaOrigin, url_attr: str, tmp_path: Path) -> None:
    opts = {**YDL_QUIET, "outtmpl": str(tmp_path / "%(id)s.%(ext)s")}
    with yt_dlp.YoutubeDL(opts) as ydl, pytest.raises(yt_dlp.utils.DownloadError):
        ydl.extract_info(getattr(origin, url_attr), download=True)
    assert list(tmp_path.iterdir()) == []


def test_ytdlp_hls_gives_formats(origin: MediaOrigin) -> None:
    with yt_dlp.YoutubeDL(YDL_QUIET) as ydl:
        info = ydl.extract_info(origin.hls_url, download=False)
    assert info["formats"]
    assert {f["protocol"] for f in info["formats"]} == {"m3u8_native"}


def test_ytdlp_resumes_partial_download_with_range(
    fresh_origin: MediaOrigin, tmp_path: Path
) -> None:
    data = fresh_origin.path_for(fresh_origin.slow_url).read_bytes()
    offset = 1_000_000
    (tmp_path / "out.mp4.part").write_bytes(data[:offset])
    opts = {**YDL_QUIET, "outtmpl": str(tmp_path / "out.%(ext)s"), "continuedl": True}
    with yt_dlp.YoutubeDL(opts) as ydl:
        ydl.extract_info(fresh_origin.slow_url_at(200_000_000), download=True)
    assert ("GET", "/slow.mp4", f"bytes={offset}-") in fresh_origin.requests
    assert (tmp_path / "out.mp4").read_bytes() == data
