"""A download that is not media never finishes: a site that answers a video's address with a
web page, a JSON error or bytes no player reads (status 200) fails the item with plain words,
records nothing in the archive, writes no NFO, leaves nothing in the download folder, and the
retry after the site mends itself downloads again. Real yt-dlp through the real engine, real
ffprobe; the site is a small server of this file's."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine.folder_disk import MARKER
from appliance.events import LOG_ERROR, Event
from appliance.runtime import Runtime

HTML = (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
        b"<body><form action=/login>Sign in to watch this video</form></body></html>\n")
JSON = b'{"error": {"code": 403, "message": "Access denied"}}'
# Bytes no media format starts with (fixed, so every run serves the same).
NOISE = bytes([0x5A, 0x00]) + random.Random(14).randbytes(256 * 1024)


class Site:
    """A site whose answer to each path a test sets, sent with status 200 (as video/mp4 unless
    the test says otherwise)."""

    def __init__(self) -> None:
        self.bodies: dict[str, tuple[bytes, str]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                body, content_type = site.bodies.get(self.path.split("?")[0], (None, ""))
                if body is None:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                # the generic extractor's upload date: what an NFO file needs
                self.send_header("Last-Modified", "Tue, 02 Jan 2024 10:00:00 GMT")
                self.end_headers()

            def do_GET(self) -> None:
                self.do_HEAD()
                body, _ = site.bodies.get(self.path.split("?")[0], (None, ""))
                if body is not None:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, name: str, body: bytes, content_type: str = "video/mp4") -> str:
        self.bodies[f"/{name}"] = body, content_type
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"


@pytest.fixture(name="site")
def serving_site() -> Iterator[Site]:
    serving = Site()
    yield serving
    serving.server.shutdown()
    serving.server.server_close()


def ended(rt: Runtime, item_id: str) -> dict:
    return wait_for(lambda: (found := rt.engine.get(item_id)) is not None
                    and found.status in {"finished", "error", "skip", "cancelled"}
                    and found.to_dict(), timeout=60, message="the item's end")


def media_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and p.name != MARKER)


@pytest.mark.parametrize(("body", "said"), [
    (HTML, "a web page (HTML)"), (JSON, "a JSON answer"), (NOISE, "bytes no player reads")],
    ids=["html", "json", "noise"])
def test_a_site_that_sends_no_media_fails_the_item_and_the_retry_downloads_again(
        app_with, site: Site, origin: MediaOrigin, body: bytes, said: str) -> None:
    rt, client = app_with(YTP_KEEP_ARCHIVE="true")
    rt.engine.presets.create({"name": "shows", "nfo": "tv", "cli": ""})
    told: list[Event] = []
    rt.bus.subscribe(lambda event: told.append(event) if event.name == LOG_ERROR else None)
    url = site.serve("episode.mp4", body)
    [item] = rt.engine.add([{"url": url, "preset": "shows"}])

    failed = ended(rt, item.id)
    downloads = rt.settings.download_path
    assert failed["status"] == "error", (failed["msg"], media_files(downloads))
    assert failed["error"].startswith(f"The site sent {said}, not the video: "), failed["error"]
    assert "episode.mp4" in failed["error"]
    assert "cookies" in failed["error"]  # what to do
    # what the log and the notification targets are told (just after the item's end)
    wait_for(lambda: any(failed["error"] in event.data["message"] for event in told),
             message="the failure's log_error")
    assert media_files(downloads) == []  # no junk, no NFO where a media server looks
    archive = rt.engine.planner.archive_path(rt.engine.presets.resolve("shows"))
    assert archive is not None
    assert not archive.exists() or "episode" not in archive.read_text()

    site.serve("episode.mp4", origin.path_for(origin.clip_url).read_bytes())  # mended
    retried = client.simulate_post(f"/api/downloads/{item.id}/retry")
    assert retried.status_code == 200, retried.text
    done = ended(rt, retried.json["id"])
    assert done["status"] == "finished", done
    assert media_files(downloads) == ["episode.mp4", "episode.nfo"]
    assert "episode" in archive.read_text()


def test_a_refused_file_whose_name_looks_like_an_option_or_a_protocol_is_probed(
        start_runtime, site: Site, origin: MediaOrigin) -> None:
    """Bytes no signature names go to ffprobe in the download process, whose audit hook checks
    the file it is handed: a name that starts with '-' or holds 'file:' must reach it as the
    file it is (not an option, not another path), and be refused on ffprobe's word."""
    rt = start_runtime()
    url = site.serve("noise.mp4", NOISE)
    [item] = rt.engine.add([{"url": url, "template": "-x file:a:b.%(ext)s"}])

    failed = ended(rt, item.id)
    assert failed["status"] == "error", failed["msg"]
    assert failed["error"].startswith("The site sent bytes no player reads"), failed["error"]
    assert "-x file:a:b.mp4" in failed["error"]
    assert media_files(rt.settings.download_path) == []


def test_a_refusal_quoting_a_full_disk_is_no_full_disk(
        start_runtime, site: Site, origin: MediaOrigin) -> None:
    """The item quotes the first words of what came; a site's words that read as a full disk
    must neither hold every download back waiting for room nor be said as a full disk."""
    rt = start_runtime()
    url = site.serve("v.mp4", b'{"error": "[Errno 28] No space left on device"}')
    [item] = rt.engine.add([{"url": url}])

    failed = ended(rt, item.id)
    assert failed["status"] == "error", failed["msg"]
    assert failed["error"].startswith("The site sent a JSON answer, not the video: ")
    assert rt.engine.folder_disk.problem is None
    [after] = rt.engine.add([{"url": origin.clip_url}])
    assert ended(rt, after.id)["status"] == "finished"
