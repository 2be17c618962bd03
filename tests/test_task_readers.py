"""The handlers' readings, run in the test process: in the service they run in a download
process (``tasks/isolated.py``), where no mutant of them is ever judged. A podcast's media
before its page, a broken feed's entry without a link, the fast parser for well-formed feeds,
a YouTube feed's entries and a channel page in bytes that are not UTF-8, a listing that waits
on a feed that never answers, a gzip bomb read within the feed's bound; and what the channel
metadata takes for its pictures and how it writes its NFO."""

from __future__ import annotations

import http.server
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from support.site import serving
from support.webhooks import Receiver

from appliance import events
from appliance.events import Event
from appliance.runtime import Runtime
from appliance.tasks import feeds
from appliance.tasks.handlers import (
    MAX_FEED_BYTES,
    HandlerError,
    RssHandler,
    YoutubeHandler,
    fetch,
    fetch_request,
)
from appliance.tasks.isolated import list_in_child
from appliance.tasks.metadata import write_metadata
from appliance.tasks.runner import ExecutionLog

Client = falcon.testing.TestClient
CHANNEL = "UC" + "r" * 22
PODCAST = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Pod</title>
<item><title>ep1</title><link>https://site.invalid/ep1</link>
  <enclosure url="/media/ep1.mp3" type="audio/mpeg"/></item>
<item><title>ep2</title><link>https://site.invalid/ep2</link>
  <enclosure url="https://cdn.invalid/ep2.jpg" type="image/jpeg"/></item>
<item><title>ep3</title><enclosure url="https://cdn.invalid/ep3.bin"/></item>
<item><title>ep4</title></item>
</channel></rss>"""


# --- RSS ------------------------------------------------------------------------------------


def test_a_podcast_entry_is_its_media_then_its_page_then_any_enclosure(
        origin: MediaOrigin) -> None:
    """An entry with none of them is left out; a relative enclosure is joined to the feed's
    address (the ``#handler=rss`` fragment apart)."""
    origin.feeds.set("pod", [])
    origin.feeds.junk("pod", PODCAST)
    listing = RssHandler().list(f"{origin.base_url}/feeds/pod.rss#handler=rss", "", timeout=10)
    assert listing.title == "Pod"
    assert [(e.url, e.title) for e in listing.entries] == [
        (f"{origin.base_url}/media/ep1.mp3", "ep1"), ("https://site.invalid/ep2", "ep2"),
        ("https://cdn.invalid/ep3.bin", "ep3")]


def test_an_rss_entry_carries_its_date_and_junk_says_why_it_is_no_feed(
        origin: MediaOrigin) -> None:
    """The date is what ``published_after`` judges by; "is not a feed: None." said nothing."""
    dated = PODCAST.replace(b"<title>ep1</title>",
                            b"<title>ep1</title><pubDate>Tue, 02 Jan 2024 00:00:00 +0000</pubDate>")
    origin.feeds.set("dated", [])
    origin.feeds.junk("dated", dated)
    listing = RssHandler().list(f"{origin.base_url}/feeds/dated.rss", "", timeout=10)
    assert [e.published for e in listing.entries] == [1704153600.0, None, None]
    with pytest.raises(feeds.NotAFeed) as refused:
        feeds.read_feed(b"\x00\x01 this is not xml <<<")
    assert str(refused.value) not in {"", "None"}
    # the parser's own reason, where it has one: not the text for a document of no feed
    assert "not well-formed" in str(refused.value), refused.value
    with pytest.raises(feeds.NotAFeed, match=r"^the site sent a web page \(HTML\), not RSS or "
                                             r"Atom: often a login"):
        feeds.read_feed(b"<html><body>a page</body></html>")


def test_a_request_header_that_ends_in_a_line_break_is_refused_not_cut(
        origin: MediaOrigin) -> None:
    """Only spaces and tabs around a value are a value's padding; a definition saved before
    headers were checked on save is checked again where it is sent."""
    with pytest.raises(HandlerError, match=r"request header 'X-Token': its value"):
        fetch_request(f"{origin.base_url}/feeds/any.rss", headers={"X-Token": "abc\r\n"})


def test_a_broken_feeds_entry_without_a_link_is_left_out() -> None:
    """feedparser reads what lxml refuses ("&" unescaped); an entry with no link has none."""
    broken = PODCAST.replace(b"<title>Pod</title>", b"<title>Fish & Chips</title>")
    feed = feeds.read_feed(broken)
    assert feed.title == "Fish & Chips"
    assert [(i.title, i.link) for i in feed.items][2:] == [("ep3", ""), ("ep4", "")]


def test_a_well_formed_feed_never_goes_to_the_slow_parser(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """feedparser costs ~100x lxml's CPU: 500 feeds due at once were the round's CPU."""
    def slow(body: bytes) -> feeds.Feed:
        raise AssertionError("a well-formed feed went to feedparser")

    monkeypatch.setattr(feeds, "_slow", slow)
    assert [i.title for i in feeds.read_feed(PODCAST).items] == ["ep1", "ep2", "ep3", "ep4"]
    atom = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><title>x'
            b'</title><link href="https://site.invalid/x"/></entry></feed>')
    assert [i.link for i in feeds.read_feed(atom).items] == ["https://site.invalid/x"]


def test_a_broken_atom_entry_is_dated_by_its_publication_before_its_update() -> None:
    """What feedparser reads (an "&" unescaped) is dated as lxml's reading is."""
    broken = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Fish & Chips</title><entry>'
              b'<title>x</title><link href="https://site.invalid/x"/>'
              b"<published>2024-01-02T00:00:00Z</published>"
              b"<updated>2025-06-01T00:00:00Z</updated></entry></feed>")
    feed = feeds.read_feed(broken)
    assert feed.title == "Fish & Chips"  # feedparser's reading
    assert [i.published for i in feed.items] == [1704153600.0]
    assert [i.published for i in feeds.read_feed(broken.replace(b" & ", b" and ")).items] == [
        1704153600.0]  # lxml's


# --- YouTube ----------------------------------------------------------------------------------


def test_a_youtube_feeds_entries_carry_their_archive_ids(origin: MediaOrigin) -> None:
    """An entry without a link is its video's watch page."""
    origin.feeds.set(CHANNEL, [FeedEntry("vid00000001", origin.watch_url("clip"), "One"),
                               FeedEntry("vid00000002", "", "Two")])
    listing = YoutubeHandler(lambda: origin.base_url).list(
        f"https://www.youtube.com/channel/{CHANNEL}", "", timeout=10)
    assert listing.title == f"Channel {CHANNEL}"
    assert [(e.url, e.title, e.archive_id) for e in listing.entries] == [
        (origin.watch_url("clip"), "One", "youtube vid00000001"),
        ("https://www.youtube.com/watch?v=vid00000002", "Two", "youtube vid00000002")]


def test_a_handles_tab_reads_the_handles_page(origin: MediaOrigin) -> None:
    """``/@name/videos`` is the channel ``@name``: its page is ``/@name``, not the tab's."""
    origin.feeds.handles["@tabbed"] = CHANNEL
    handler = YoutubeHandler(lambda: origin.base_url)
    assert handler.feed_url("https://www.youtube.com/@tabbed/videos", timeout=10) == (
        f"{origin.base_url}/feeds/videos.xml?channel_id={CHANNEL}")


def test_a_channel_page_in_bytes_that_are_not_utf8_still_names_its_channel(
        origin: MediaOrigin) -> None:
    page = b'\xff\xfe<html><meta itemprop="identifier" content="' + CHANNEL.encode() + b'">'
    origin.feeds.pages["@bytes"] = (page, "text/html")
    handler = YoutubeHandler(lambda: f"{origin.base_url}/pages/")
    assert handler.feed_url("https://www.youtube.com/@bytes", timeout=10) == (
        f"{origin.base_url}/pages/feeds/videos.xml?channel_id={CHANNEL}")


def test_a_youtube_feeds_entry_without_a_video_id_has_no_archive_id(
        origin: MediaOrigin) -> None:
    """Two such entries, each its own link: one archive id made up for both (any word: a
    mutation of the handler that gave one survived) would have made the second a duplicate
    of the first, never queued."""
    origin.feeds.set(CHANNEL, [])
    origin.feeds.junk(CHANNEL, (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>Bare</title>'
        b'<entry><title>a</title><link href="https://site.invalid/a"/></entry>'
        b'<entry><title>b</title><link href="https://site.invalid/b"/></entry></feed>'
    ))
    listing = YoutubeHandler(lambda: origin.base_url).list(
        f"https://www.youtube.com/channel/{CHANNEL}", "", timeout=10)
    assert [(e.url, e.archive_id) for e in listing.entries] == [
        ("https://site.invalid/a", ""), ("https://site.invalid/b", "")]


def test_a_handles_page_that_names_no_channel_says_so(origin: MediaOrigin) -> None:
    origin.feeds.pages["@nameless"] = (b"<html><body>no channel here</body></html>",
                                       "text/html")
    handler = YoutubeHandler(lambda: f"{origin.base_url}/pages/")
    with pytest.raises(HandlerError) as raised:
        handler.feed_url("https://www.youtube.com/@nameless", timeout=10)
    assert str(raised.value) == "could not find the channel id of @nameless on its page."


# --- a listing's bounds ---------------------------------------------------------------------


def test_a_listing_waits_on_a_silent_feed_no_longer_than_its_time_limit(
        origin: MediaOrigin) -> None:
    """What a download process runs: each read has the listing's time limit (a listing
    without one waited for the feed for ever, its process held)."""
    origin.feeds.set("silent", [FeedEntry("a", origin.clip_url)])
    gate = origin.feeds.hold("silent")
    answers: list[dict[str, Any]] = []
    reading = threading.Thread(target=lambda: answers.append(list_in_child(
        "RssHandler", f"{origin.base_url}/feeds/silent.rss", "", 0.5, "", [])))
    reading.start()
    try:
        reading.join(30)
        assert not reading.is_alive(), "the listing did not give up on the silent feed"
    finally:
        gate.set()
        reading.join(30)
    assert answers[0]["error"].endswith(
        "feeds/silent.rss: no answer within 0.5 s (the site is slow or down)."), answers
    assert list_in_child("NoSuchHandler", "https://x.invalid/", "", 1, "", []) == {
        "error": "no handler is named 'NoSuchHandler'."}


@pytest.fixture
def gzip_bomb() -> Iterator[str]:
    """The URL of a feed that says it is gzip: 64 MiB of zeros in 64 KiB on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    zeros = bytes(1024 * 1024)
    body = b"".join([packer.compress(zeros) for _ in range(64)] + [packer.flush()])

    class Bomb(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            for name, value in (("Content-Type", "application/rss+xml"),
                                ("Content-Encoding", "gzip"),
                                ("Content-Length", str(len(body)))):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Bomb) as url:
        yield f"{url}/bomb.rss"


def test_a_gzip_bomb_is_cut_at_the_feeds_bound_not_inflated_whole(gzip_bomb: str) -> None:
    """Read as it arrives (``stream=True``), the body stops at 10 MiB; read whole first, the
    64 MiB it inflates to were in memory (twice) before the bound was looked at."""
    tracemalloc.start()
    try:
        with pytest.raises(HandlerError, match=r"is larger than 10 MiB\.$"):
            fetch(gzip_bomb, timeout=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_FEED_BYTES, f"{peak / 2**20:.0f} MiB held at once"


# --- what a listing answers ------------------------------------------------------------------


def test_what_inspect_and_a_run_say_of_a_feed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Each entry's publication time; one refused entry alone, not "and others"; a preset
    that does not exist, a 400 of the request; the handler off, the URL as one item."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("said", [FeedEntry("a", origin.watch_url("clip"), "a"),
                              FeedEntry("b", "file:///etc/passwd", "b")])
    url = f"{origin.base_url}/feeds/said.rss"
    preview = client.simulate_post("/api/tasks/inspect", json={"url": url})
    assert [(i["title"], i["published"]) for i in preview.json["items"]] == [
        ("a", 1704153600.0), ("b", 1704153600.0)]
    nameless = client.simulate_post("/api/tasks/inspect", json={"url": url, "preset": "nope"})
    assert (nameless.status_code, nameless.json["code"]) == (400, "INVALID_REQUEST")
    missing = client.simulate_post("/api/tasks/inspect", json={
        "url": f"{origin.base_url}/feeds/missing.rss"})
    assert (missing.status_code, missing.json["code"], missing.json["matched"]) == (
        400, "INVALID_REQUEST", True), missing.text
    assert missing.json["error"] == missing.json["message"] == (
        f"Inspection failed: could not read {origin.base_url}/feeds/missing.rss: The site has "
        "nothing at this address (HTTP 404 Not Found): the link is wrong, or what it led to was "
        "removed or made private. Check the link in a browser.")
    unfit = client.simulate_post("/api/tasks/inspect", json={"url": url,
                                                             "handler": "YoutubeHandler"})
    assert (unfit.status_code, unfit.json["error"], unfit.json["matched"]) == (
        400, "Handler 'YoutubeHandler' cannot process the supplied URL.", False), unfit.text
    # the contract's "supported": whether the handler named is one this service has
    assert (unfit.json["handler"], unfit.json["metadata"]) == (None, {"supported": True})
    unknown = client.simulate_post("/api/tasks/inspect", json={"url": url,
                                                               "handler": "NoSuchHandler"})
    assert (unknown.status_code, unknown.json["metadata"]) == (400, {"supported": False}), (
        unknown.text)
    assert missing.json["metadata"] == {"supported": True}
    typed = client.simulate_post("/api/tasks/inspect", json={"url": url, "handler": 1})
    assert (typed.status_code, typed.json["error"]) == (400, "handler must be a string.")
    task = client.simulate_post("/api/tasks", json={"name": "said", "url": url,
                                                    "auto_start": False}).json
    run = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert run["error"] == ("1 entry refused, not queued: url 'file:///etc/passwd' must be "
                            "an http(s) URL."), run["error"]
    whole = client.simulate_post("/api/tasks", json={
        "name": "whole", "url": url, "handler_enabled": False, "auto_start": False}).json
    run = runtime.tasks.runner.execute(runtime.tasks.get(whole["id"]), "manual")
    assert (run["status"], run["handler"], run["found"], run["queued"]) == (
        "success", "none", 1, 1), run
    log = client.simulate_get(f"/api/executions/{run['id']}").json["log"]
    assert any(line.endswith(" INFO handler off: the URL is queued as one item")
               for line in log), log
    assert [i.url for i in runtime.tasks.items(whole["id"], 0, 10)[0]] == [url]


def test_a_page_yt_dlp_follows_elsewhere_is_listed_where_it_landed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """One video: its entry is the page yt-dlp read (``webpage_url``), not the link that
    led there."""
    _, client = app_with(YTP_TASKS_SPREAD="0")
    receiver = Receiver()
    try:
        moved = receiver.url(f"/status/302?Location={origin.watch_url('clip')}")
        single = client.simulate_post("/api/tasks/inspect", json={"url": moved})
        assert single.status_code == 200, single.text
        assert [(i["url"], i["archive_id"]) for i in single.json["items"]] == [
            (origin.watch_url("clip"), f"generic clip {origin.watch_url('clip')}")]
    finally:
        receiver.close()


# --- channel metadata -----------------------------------------------------------------------


def _fetched(urls: list[str]) -> Callable[[str], bytes]:
    def fetch_image(url: str) -> bytes:
        urls.append(url)
        return b"\xff\xd8\xff\xe0" + url.encode()
    return fetch_image


def test_the_channels_own_thumbnail_comes_before_its_list(tmp_path: Path) -> None:
    """``thumbnail`` is the site's choice; the last of ``thumbnails`` is the fallback's
    fallback, and a thumbnail that is no web address is neither."""
    info = {"id": "c1", "title": "Show", "thumbnail": "https://img.invalid/chosen.jpg",
            "thumbnails": [{"id": "0", "url": "https://img.invalid/small.jpg"},
                           {"id": "1", "url": "https://img.invalid/last.jpg"},
                           {"id": "2", "url": "file:///etc/passwd"}]}
    fetched: list[str] = []
    answer = write_metadata(tmp_path, tmp_path / "show", info, _fetched(fetched))
    assert fetched == ["https://img.invalid/chosen.jpg"]
    assert sorted(answer["thumbnails"]) == ["fanart", "landscape", "poster", "thumb"]
    fetched.clear()
    write_metadata(tmp_path, tmp_path / "show", {**info, "thumbnail": "/etc/passwd"},
                   _fetched(fetched))
    assert fetched == ["https://img.invalid/last.jpg"]


def test_a_channel_known_only_by_its_channel_name_is_its_studio(tmp_path: Path) -> None:
    """The uploader when the site says, else the channel; no description is an empty one;
    a title of dots first names a file that is not hidden."""
    answer = write_metadata(tmp_path, tmp_path / "show", {
        "id": "c1", "title": "..Show", "channel": "The Channel"}, lambda url: b"")
    assert (answer["uploader"], answer["description"]) == ("The Channel", "")
    nfo = (tmp_path / answer["nfo_file"]).read_text()
    assert "<studio>The Channel</studio>" in nfo and "<plot>" not in nfo
    assert answer["json_file"] == "show/Show [c1].info.json"
    both = write_metadata(tmp_path, tmp_path / "show", {
        "id": "c1", "title": "Show", "uploader": "The Uploader", "channel": "The Channel"},
        lambda url: b"")
    assert both["uploader"] == "The Uploader"
    assert "<studio>The Uploader</studio>" in (tmp_path / both["nfo_file"]).read_text()


def test_the_nfo_is_utf8_as_it_says(tmp_path: Path) -> None:
    answer = write_metadata(tmp_path, tmp_path / "show", {"id": "c1", "title": "Crème brûlée"},
                            lambda url: b"")
    nfo = (tmp_path / answer["nfo_file"]).read_bytes()
    assert nfo.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert "<title>Crème brûlée</title>".encode() in nfo


# --- schedules --------------------------------------------------------------------------------


def test_schedules_say_each_timers_last_run(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("timed", [FeedEntry("a", origin.clip_url)])
    timed = client.simulate_post("/api/tasks", json={
        "name": "timed", "url": f"{origin.base_url}/feeds/timed.rss", "timer": "0 3 * * *",
        "auto_start": False}).json
    client.simulate_post("/api/tasks", json={"name": "untimed", "auto_start": False,
                                             "url": f"{origin.base_url}/feeds/timed.rss"})
    gate = origin.feeds.hold("timed")
    try:
        started = client.simulate_post(f"/api/tasks/{timed['id']}/execute")
        assert started.status_code == 202, started.text
        wait_for(lambda: origin.feeds.waiting.get("timed"), message="the run to read its feed")
        assert [s["running"] for s in client.simulate_get("/api/schedules").json["items"]] == [
            True]
    finally:
        gate.set()

    def ended() -> dict[str, Any] | None:  # recorded: "running" ends a moment before
        execution = client.simulate_get(f"/api/executions/{started.json['id']}").json
        return execution if execution["status"] != "running" else None

    run = wait_for(ended, message="the run's end")
    items = client.simulate_get("/api/schedules").json["items"]
    assert [(s["task_id"], s["name"], s["timer"], s["last_run_at"] is not None,
             s["last_status"], s["running"]) for s in items] == [
        (timed["id"], "timed", "0 3 * * *", True, run["status"], False)]
    assert items[0]["next_run_at"] == runtime.tasks.get(timed["id"])["next_run_at"]


def test_unmarking_one_entry_says_one_entry(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Without an archive, what is counted is the task's own marks."""
    _, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="false")
    origin.feeds.set("single", [FeedEntry("a", origin.clip_url, "a")])
    task = client.simulate_post("/api/tasks", json={
        "name": "single", "url": f"{origin.base_url}/feeds/single.rss",
        "auto_start": False}).json
    marked = client.simulate_post(f"/api/tasks/{task['id']}/mark")
    assert marked.json["message"] == "Marked 1 entry of task 'single' as downloaded."
    unmarked = client.simulate_delete(f"/api/tasks/{task['id']}/mark")
    assert unmarked.json["message"] == "Removed 1 entry of task 'single' from the archive."


def test_a_live_log_gives_a_reader_what_came_before_and_then_each_new_line() -> None:
    journal = ExecutionLog(7)
    journal.write("info", "before")
    subscription, earlier = journal.subscribe()
    journal.write("error", "after")
    assert [line.split(" ", 2)[2] for line, _ in earlier] == ["INFO before"]
    got = subscription.get(timeout=5)
    assert got is not None and got[0].endswith(" ERROR after")
    journal.unsubscribe(subscription)
    journal.write("info", "unheard")
    assert subscription.get_nowait() is None
    assert [line.split(" ", 2)[2] for line in journal.lines] == [
        "INFO before", "ERROR after", "INFO unheard"]


def test_a_change_of_a_task_is_announced_as_an_update(
        app_with: Callable[..., tuple[Runtime, Client]]) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    task = client.simulate_post("/api/tasks", json={
        "name": "told", "url": "http://127.0.0.1:9/x.rss", "auto_start": False}).json
    seen: list[Event] = []
    runtime.bus.subscribe(seen.append)
    changed = client.simulate_patch(f"/api/tasks/{task['id']}", json={"timer": "0 4 * * *"})
    assert changed.status_code == 200, changed.text
    told = [e.data for e in seen if e.name == events.CONFIG_UPDATE]
    assert [(d["feature"], d["action"], d["data"]["timer"]) for d in told] == [
        ("tasks", "update", "0 4 * * *")]
