"""Fixed data for snapshot tests of ``appliance tui``: a client answering as the service
would, always the same, and an app that takes the queue from it instead of the websocket.

Snapshots compare pictures: a real service would bring its own ids, dates, ports and
timing into every frame, so these tests alone use fixed answers (the pilot tests in
test_tui*.py drive a real service)."""

from __future__ import annotations

from typing import Any

from appliance.client import Page
from appliance.client.http import LogStream
from appliance.client.live import CONNECTED, FeedState
from appliance.tui.app import ApplianceApp

T0 = 1_700_000_000.0  # 2023-11-14 22:13 UTC


def _item(n: int, status: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"item{n:04d}", "url": f"https://media.example/watch?v={n:04d}",
            "title": title, "status": status, "kind": "queue", "extractor": "Example",
            "created_at": T0 + n, "msg": "", **extra}


QUEUE = {i["id"]: i for i in (
    _item(1, "downloading", "A long documentary about the sea, part one of three",
          downloaded_bytes=420_000_000, total_bytes=1_000_000_000, speed=2_500_000, eta=232),
    _item(2, "downloading", "Cooking with fire", downloaded_bytes=5_000_000,
          total_bytes=80_000_000, speed=900_000, eta=83),
    _item(3, "pending", "Waiting for its turn"),
    _item(4, "pending", "Held back", msg="Paused", auto_start=False),
    _item(5, "error", "A link that broke", error="HTTP Error 404: Not Found"),
)}

HISTORY = [
    {**_item(100 + n, status, f"Finished thing number {n}"), "kind": "done",
     "file_size": 10_000_000 * (n + 1), "finished_at": T0 + 3600 * n,
     "filename": f"Finished thing number {n}.mp4"}
    for n, status in enumerate(["finished", "finished", "error", "finished", "cancelled",
                                "finished", "skip", "finished"])
]

TASKS = [
    {"id": 1, "name": "Science channel", "url": "https://media.example/feeds/science.rss",
     "enabled": True, "timer": "0 * * * *", "last_run_at": T0, "last_status": "success",
     "last_queued": 2, "failures": 0, "next_run_at": T0 + 3600, "running": False},
    {"id": 2, "name": "Broken feed", "url": "https://media.example/feeds/gone.rss",
     "enabled": True, "timer": "0 3 * * *", "last_run_at": T0 - 600, "last_status": "failed",
     "last_error": "HTTP Error 404", "failures": 3, "next_run_at": T0 + 17 * 3600,
     "running": False},
    {"id": 3, "name": "Paused podcast", "url": "https://media.example/podcast.xml",
     "enabled": False, "timer": "", "last_run_at": None, "last_status": "",
     "next_run_at": None, "running": False},
    {"id": 4, "name": "Running right now", "url": "https://media.example/feeds/live.rss",
     "enabled": True, "timer": "*/30 * * * *", "last_run_at": T0 - 1800,
     "last_status": "success", "last_queued": 0, "next_run_at": T0 + 1800, "running": True},
]

FILES = [
    {"type": "dir", "name": "Science channel", "path": "Science channel", "size": 0,
     "content_type": "dir", "mtime": "2023-11-14T22:13:20Z"},
    {"type": "dir", "name": "podcasts", "path": "podcasts", "size": 0, "content_type": "dir",
     "mtime": "2023-11-10T08:00:00Z"},
    {"type": "file", "name": "Cooking with fire [0002].mp4", "path":
     "Cooking with fire [0002].mp4", "size": 80_000_000, "content_type": "video",
     "mtime": "2023-11-14T20:00:00Z"},
    {"type": "file", "name": "Cooking with fire [0002].en.srt", "path":
     "Cooking with fire [0002].en.srt", "size": 4_096, "content_type": "subtitle",
     "mtime": "2023-11-14T20:00:01Z"},
    {"type": "file", "name": "notes.txt", "path": "notes.txt", "size": 120,
     "content_type": "text", "mtime": "2023-11-01T12:00:00Z"},
]

LOGS = [
    {"id": f"log{n}", "timestamp": f"2023-11-14T22:{n:02d}:00", "level": level,
     "logger": "appliance.engine", "message": message}
    for n, (level, message) in enumerate([
        ("INFO", "service started"), ("INFO", "item=item0001 downloading"),
        ("WARNING", "item=item0005 HTTP Error 404: Not Found"),
        ("INFO", "task 'Science channel' queued 2")])
][::-1]  # newest first, as the API gives them


RUN_LOG = ["task 'Science channel': https://media.example/feeds/science.rss",
           "RssHandler found 12 entries", "10 already seen", "queued 2, skipped 10"]

FILE_INFO = {
    "title": "Cooking with fire [0002]", "mimetype": "video/mp4",
    "ffprobe": {
        "format": {"format_long_name": "QuickTime / MOV", "duration": "754.2",
                   "size": "80000000", "bit_rate": "848600"},
        "streams": [
            {"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
             "avg_frame_rate": "30000/1001"},
            {"codec_type": "audio", "codec_name": "aac", "channels": 2,
             "sample_rate": "48000", "tags": {"language": "eng"}},
        ]},
    "sidecar": {"subtitle": [{"file": "Cooking with fire [0002].en.srt", "lang": "en"}]},
}


class FixedClient:
    """The calls ``appliance tui`` makes, answered with the data above."""

    url = "http://appliance.example:8081"

    def configuration(self) -> dict[str, Any]:
        return {"app": {"remove_files": True, "browser_control_enabled": True,
                        "version": "1.0.0"},
                "paused": False, "folders": ["Science channel", "podcasts"],
                "websocket": {"port": 8082, "path": "/ws"}}

    def health(self) -> dict[str, Any]:
        return {"download_path_free_bytes": 812_000_000_000}

    def history(self, *, page: int = 1, per_page: int = 50, **_: Any) -> Page:
        return Page(HISTORY, 1, 408, 51)

    def tasks(self) -> list[dict[str, Any]]:
        return [dict(t) for t in TASKS]

    def browse(self, path: str = "", **_: Any) -> tuple[str, Page]:
        return "/", Page(FILES, 1, len(FILES), 1)

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [{"id": 1, "name": "default", "cli": "", "description": "yt-dlp's defaults"},
                {"id": 2, "name": "audio", "cli": "-x --audio-format mp3"},
                {"id": 3, "name": "1080p", "cli": "-f 'bv*[height<=1080]+ba/b'"}]

    def executions(self, task_id: int, per_page: int = 1) -> list[dict[str, Any]]:
        return [{"id": 7, "task_id": task_id, "status": "success"}]

    def execution_log(self, execution_id: int) -> LogStream:
        return LogStream.finished(self.url, RUN_LOG)

    def file_info(self, path: str) -> dict[str, Any]:
        return FILE_INFO

    def logs(self, **_: Any) -> dict[str, Any]:
        return {"logs": LOGS}

    def log_stream(self) -> LogStream:
        return LogStream.finished(self.url, [])

    def close(self) -> None:
        pass


class FixedApp(ApplianceApp):
    """The queue from the fixed data, connected, no websocket."""

    def __init__(self) -> None:
        super().__init__(FixedClient())  # type: ignore[arg-type]

    def start_feed(self) -> None:
        self.on_snapshot({"history_count": len(HISTORY), "queue": QUEUE})
        self.on_feed_state(FeedState(CONNECTED))
