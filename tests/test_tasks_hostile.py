"""Tasks against what a feed or a site says on purpose or by mistake: entries no item may
have, pictures at this machine's own addresses or that are not pictures, channel titles that
XML or the file system cannot hold; and what a run must not queue again: what the archive,
the task's marks and its earlier items hold, an entry listed twice, a download that keeps
failing; retention by age, and with removing files off. Real feeds and pages from the local
origin, the real runtime in process."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from support.aged_tasks import aged_task
from support.feeds import FeedEntry
from support.origin import MediaOrigin

from appliance import events
from appliance.engine.plans import DEFAULT_ARCHIVE
from appliance.events import Event
from appliance.files.fetch import any_address, fetch_image
from appliance.path_limits import NAME_MAX, byte_length
from appliance.runtime import Runtime
from appliance.store.records import ERROR, Item
from appliance.tasks.metadata import safe_name, write_metadata

Client = falcon.testing.TestClient
PICTURE = b"\xff\xd8\xff\xe0 a picture"


def create(client: Client, **fields: Any) -> dict[str, Any]:
    response = client.simulate_post("/api/tasks", json={"auto_start": False, **fields})
    assert response.status_code == 200, response.text
    return response.json


# --- F4: one bad entry ----------------------------------------------------------------------


def test_entries_no_item_may_have_are_refused_one_by_one(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The good entries are queued, each bad one is named in the log with the reason and
    counted as failed; the run is a success that says so, and so is every later one."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    good = [origin.watch_url("clip"), origin.watch_url("clip2")]
    bad = {"javascript:alert(1)": "must be an http(s) URL",
           "file:///etc/passwd": "must be an http(s) URL",
           "data:text/html,hello": "must be an http(s) URL",
           f"{origin.base_url}/watch/a b.html": "must not contain spaces",
           f"{origin.base_url}/{'a' * 8200}": "longer than 8192 characters"}
    urls = [good[0], *bad, good[1]]
    origin.feeds.set("mixed", [FeedEntry(f"e{n}", url) for n, url in enumerate(urls)])
    task = create(client, name="mixed", url=f"{origin.base_url}/feeds/mixed.rss")

    first = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert (first["status"], first["found"], first["queued"], first["skipped"],
            first["failed"]) == ("success", 7, 2, 0, 5)
    assert first["error"].startswith("5 entries refused, not queued: url 'javascript")
    queued = sorted(i.url for i in runtime.tasks.items(task["id"], 0, 10)[0])
    assert queued == sorted(good)
    stored = client.simulate_get(f"/api/executions/{first['id']}").json
    assert (stored["status"], stored["failed"], stored["error"]) == \
        ("success", 5, first["error"])
    warnings = [line for line in stored["log"] if " WARNING entry refused" in line]
    assert len(warnings) == 5
    for url, reason in bad.items():
        assert any(reason in line and repr(url[:200]) in line for line in warnings), url

    again = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert (again["status"], again["queued"], again["skipped"], again["failed"]) == \
        ("success", 0, 2, 5)
    state = client.simulate_get(f"/api/tasks/{task['id']}").json
    assert (state["last_status"], state["failures"]) == ("success", 0)
    assert state["last_error"] == again["error"]


# --- F7: pictures fetched SSRF-safe ----------------------------------------------------------


def _channel(origin: MediaOrigin, name: str, picture: str) -> str:
    """A page whose picture (og:image) is ``picture`` on the origin (loopback)."""
    page = (f'<html><head><title>Channel {name}</title>'
            f'<meta property="og:image" content="{origin.base_url}/pages/{picture}">'
            f'</head><body><video><source src="{origin.clip_url}" type="video/mp4"></video>'
            f'<video><source src="{origin.clip2_url}" type="video/mp4"></video></body></html>')
    origin.feeds.pages[name] = (page.encode(), "text/html")
    return f"{origin.base_url}/pages/{name}"


def test_metadata_pictures_at_private_addresses_are_refused_by_default(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.pages["private.jpg"] = (PICTURE, "image/jpeg")
    task = create(client, name="private", folder="tv/private",
                  url=_channel(origin, "private-channel", "private.jpg"))
    answer = client.simulate_post(f"/api/tasks/{task['id']}/metadata")
    assert answer.status_code == 200, answer.text
    assert answer.json["thumbnails"] == {}
    refused = answer.json["thumbnails_refused"]
    assert set(refused) == {"poster", "thumb", "fanart", "landscape"}
    assert all("127.0.0.1 is not allowed" in reason for reason in refused.values())
    home = runtime.settings.download_path / "tv" / "private"
    assert not list(home.glob("*.jpg"))
    assert (home / "tvshow.nfo").is_file()  # the rest is still written


def test_metadata_pictures_when_private_addresses_are_allowed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The setting lets a picture on the local network in; what is not an image (the
    service's own configuration, say) stays out all the same."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_FETCH_PRIVATE_ADDRESSES="true")
    origin.feeds.pages["allowed.jpg"] = (PICTURE, "image/jpeg")
    origin.feeds.pages["config.json"] = (b'{"secret": "s3cr3t"}', "application/json")
    task = create(client, name="allowed", folder="tv/allowed",
                  url=_channel(origin, "allowed-channel", "allowed.jpg"))
    answer = client.simulate_post(f"/api/tasks/{task['id']}/metadata")
    assert answer.status_code == 200, answer.text
    assert answer.json["thumbnails"]["poster"] == "tv/allowed/poster.jpg"
    assert answer.json["thumbnails_refused"] == {}
    home = runtime.settings.download_path / "tv" / "allowed"
    assert (home / "poster.jpg").read_bytes() == PICTURE

    sneaky = create(client, name="sneaky", folder="tv/sneaky",
                    url=_channel(origin, "sneaky-channel", "config.json"))
    refused = client.simulate_post(f"/api/tasks/{sneaky['id']}/metadata").json
    assert refused["thumbnails"] == {}
    assert refused["thumbnails_refused"]["poster"] == \
        "Not an image (Content-Type: application/json)."
    written = [p.read_bytes() for p in (runtime.settings.download_path / "tv" / "sneaky"
                                        ).iterdir()]
    assert not any(b"s3cr3t" in data for data in written)


def test_one_refused_picture_leaves_the_others(tmp_path: Path, origin: MediaOrigin) -> None:
    origin.feeds.pages["avatar.jpg"] = (PICTURE, "image/jpeg")
    origin.feeds.pages["banner.json"] = (b"{}", "application/json")
    info = {"id": "UC1", "title": "Mixed", "thumbnails": [
        {"id": "avatar_uncropped", "url": f"{origin.base_url}/pages/avatar.jpg"},
        {"id": "banner_uncropped", "url": f"{origin.base_url}/pages/banner.json"}]}
    answer = write_metadata(tmp_path, tmp_path / "show", info,
                            lambda url: fetch_image(url, any_address).data)
    assert set(answer["thumbnails"]) == {"poster", "thumb", "icon"}
    assert set(answer["thumbnails_refused"]) == {"fanart", "banner", "landscape"}
    assert (tmp_path / "show" / "poster.jpg").read_bytes() == PICTURE
    assert not (tmp_path / "show" / "fanart.jpg").exists()
    nfo = ET.parse(tmp_path / "show" / "tvshow.nfo").getroot()
    assert nfo.find("fanart") is None


# --- F11, F12: what XML and the file system can hold -----------------------------------------


def _no_pictures(url: str) -> bytes:
    raise AssertionError(f"no picture is fetched here: {url}")


def test_control_characters_never_make_the_nfo_unreadable(tmp_path: Path) -> None:
    info = {"id": "UC\x01x", "title": "x\x00y<&>", "description": "one\x0btwo\nthree",
            "uploader": "up\x1floader\ufffe", "tags": ["t\x08ag", "fine"],
            "extractor_key": "Gen\x02eric"}
    answer = write_metadata(tmp_path, tmp_path / "show", info, _no_pictures)
    root = ET.parse(tmp_path / "show" / "tvshow.nfo").getroot()
    assert root.findtext("title") == "xy<&>"
    assert root.findtext("plot") == "onetwo\nthree"
    assert root.findtext("studio") == "uploader"
    assert [t.text for t in root.iter("tag")] == ["tag", "fine"]
    unique = root.find("uniqueid")
    assert unique is not None and (unique.text, unique.get("type")) == ("UCx", "generic")
    assert answer["title"] == "x\x00y<&>"  # the answer is JSON: it holds the site's words


@pytest.mark.parametrize("title", ["あ" * 150, "a" + "あ" * 200, "é" * 300],
                         ids=["kana", "ascii-then-kana", "accents"])
def test_a_long_title_is_cut_by_bytes_whole_characters_only(tmp_path: Path, title: str
                                                            ) -> None:
    answer = write_metadata(tmp_path, tmp_path / "show",
                            {"id": "UC" + "x" * 300, "title": title}, _no_pictures)
    name = Path(answer["json_file"]).name
    assert byte_length(name) <= NAME_MAX and name.endswith("].info.json")
    kept = name.split(" [", 1)[0]
    assert kept and title.startswith(kept)
    assert (tmp_path / answer["json_file"]).is_file()
    cut = safe_name(title, 100)
    assert byte_length(cut) <= 100 and title.startswith(cut)
    assert byte_length(cut) > 100 - len(title[-1].encode())  # no more than a character lost


def test_an_atom_feed_read_field_by_field_its_dates_in_utc_whatever_the_zone_of_the_box(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """published_after compares with the dates: on a box set to New York, a date without a
    zone moved by five hours. The page link is the one without a rel (or rel alternate),
    the media the enclosure."""
    from appliance.tasks import feeds

    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>
    <entry><title>A</title>
    <link rel="enclosure" type="audio/mpeg" href="https://cdn.invalid/a.mp3"/>
    <link href="https://site.invalid/a"/><updated>2024-01-02T10:00:00</updated></entry></feed>"""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        feed = feeds.read_feed(atom)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert feed.title == "T"
    assert [(i.title, i.link, i.enclosures, i.published) for i in feed.items] == [
        ("A", "https://site.invalid/a", [("https://cdn.invalid/a.mp3", "audio/mpeg")],
         datetime(2024, 1, 2, 10, tzinfo=ZoneInfo("UTC")).timestamp())]


def test_what_ytdlp_lists_is_what_a_task_sees(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A playlist page: each entry with the archive id yt-dlp gives it; one video: the page
    itself, once."""
    _, client = app_with(YTP_TASKS_SPREAD="0")
    playlist = client.simulate_post("/api/tasks/inspect", json={"url": origin.playlist_url})
    assert playlist.status_code == 200, playlist.text
    assert playlist.json["metadata"] == {"raw_count": 3, "title": "Origin playlist"}
    assert [(i["url"], i["title"], i["archive_id"]) for i in playlist.json["items"]] == [
        (url, f"Origin playlist ({n})", f"html5mediaembed playlist-{n}")
        for n, url in enumerate(origin.playlist_entry_urls, start=1)]
    assert playlist.json["items"][0]["metadata"] == {
        "source_id": "Origin playlist", "source_name": "Origin playlist",
        "source_handler": "GenericTaskHandler"}
    single = client.simulate_post("/api/tasks/inspect",
                                  json={"url": origin.watch_url("clip")}).json
    assert [(i["url"], i["title"], i["archive_id"]) for i in single["items"]] == [
        (origin.watch_url("clip"), "Watch clip", f"generic clip {origin.watch_url('clip')}")]
    assert single["metadata"]["title"] == "Watch clip"


# --- what a run has seen: the archive, marks, earlier items ---------------------------------


def _archive_lines(runtime: Runtime) -> set[str]:
    archive = runtime.settings.config_path / DEFAULT_ARCHIVE
    return set(archive.read_text().splitlines()) if archive.exists() else set()


def _run(runtime: Runtime, task: dict[str, Any]) -> dict[str, Any]:
    return runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")


def test_marks_go_to_the_archive_and_unmarking_takes_them_back(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """With the archive on (the service's default), marking a channel's back catalogue
    writes its entries to the archive, where yt-dlp itself looks; a line already there (a
    download by hand) is skipped as well; unmarking takes the task's lines out again."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true",
                               YTP_YOUTUBE_BASE_URL=origin.base_url)
    channel = "UC" + "m" * 22
    origin.feeds.set(channel, [FeedEntry(f"markedvid0{n}", origin.watch_url(
        "clip", title=f"m{n}"), f"m{n}") for n in (1, 2)])
    task = create(client, name="marked", url=f"https://www.youtube.com/channel/{channel}",
                  mark=True)
    marked = {"youtube markedvid01", "youtube markedvid02"}
    assert _archive_lines(runtime) == marked
    first = _run(runtime, task)
    assert (first["found"], first["queued"], first["skipped"]) == (2, 0, 2)

    (runtime.settings.config_path / DEFAULT_ARCHIVE).write_text(
        "\n".join([*sorted(marked), "youtube byhandvid03"]) + "\n")
    origin.feeds.add(channel, FeedEntry("byhandvid03", origin.watch_url("clip", title="h"),
                                        "h"))
    assert _run(runtime, task)["queued"] == 0  # the archive has it: never queued

    unmark = client.simulate_delete(f"/api/tasks/{task['id']}/mark")
    assert unmark.status_code == 200, unmark.text
    # entries, not keys (a URL and an archive id each): it said 4
    assert unmark.json["message"] == "Removed 3 entries of task 'marked' from the archive."
    assert _archive_lines(runtime) == set()
    again = _run(runtime, task)
    assert (again["queued"], again["skipped"]) == (3, 0)
    entries = {i.extras["task_entry"] for i in runtime.tasks.items(task["id"], 0, 10)[0]}
    assert entries == {*marked, "youtube byhandvid03"}
    assert _run(runtime, task)["queued"] == 0  # its own items: never twice
    mark = client.simulate_post(f"/api/tasks/{task['id']}/mark")
    assert mark.json["message"] == "Marked 3 entries of task 'marked' as downloaded."
    again = client.simulate_post(f"/api/tasks/{task['id']}/mark")
    assert again.json["message"] == "Marked 0 entries of task 'marked' as downloaded."


def test_an_entry_listed_twice_is_queued_once(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The same video under two links (one archive id), and the same link twice."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true",
                               YTP_YOUTUBE_BASE_URL=origin.base_url)
    channel = "UC" + "d" * 22
    origin.feeds.set(channel, [
        FeedEntry("twicevid001", origin.watch_url("clip", title="a"), "a"),
        FeedEntry("twicevid001", origin.watch_url("clip", title="b"), "b"),
        FeedEntry("oncevid0002", origin.watch_url("clip2"), "c")])
    by_id = create(client, name="twice", url=f"https://www.youtube.com/channel/{channel}")
    run = _run(runtime, by_id)
    assert (run["found"], run["queued"], run["skipped"]) == (3, 2, 1)
    origin.feeds.set("twice", [FeedEntry("x", origin.clip_url), FeedEntry("y", origin.clip_url)])
    by_url = create(client, name="same link", url=f"{origin.base_url}/feeds/twice.rss")
    assert _run(runtime, by_url)["queued"] == 1
    assert [i.url for i in runtime.tasks.items(by_url["id"], 0, 10)[0]] == [origin.clip_url]


def test_a_download_that_keeps_failing_is_tried_three_times(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    from support.server import wait_for

    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("failing", [FeedEntry("f", origin.fail_url, "broken")])
    task = create(client, name="failing", url=f"{origin.base_url}/feeds/failing.rss",
                  auto_start=True)
    for attempt in (1, 2, 3):
        assert _run(runtime, task)["queued"] == 1, attempt
        wait_for(lambda n=attempt: [i for i in runtime.tasks.items(task["id"], 0, 10)[0]
                                    if i.status == ERROR][n - 1:], timeout=60,
                 message=f"failed attempt {attempt}")
    fourth = _run(runtime, task)
    assert (fourth["queued"], fourth["skipped"]) == (0, 1)


def test_what_a_run_queues_carries_the_tasks_fields(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("fields", [FeedEntry("a", origin.clip_url, "a")])
    cookies = "# Netscape HTTP Cookie File\n.example.com\tTRUE\t/\tFALSE\t0\tname\tvalue\n"
    task = create(client, name="Fielded", url=f"{origin.base_url}/feeds/fields.rss",
                  preset="audio-mp3", folder="shows/fielded", template="%(id)s.%(ext)s",
                  cli="--retries 3", cookies=cookies)
    assert _run(runtime, task)["queued"] == 1
    [item] = runtime.tasks.items(task["id"], 0, 10)[0]
    assert (item.url, item.preset, item.folder, item.template, item.cli, item.cookies,
            item.auto_start, item.batch_name) == (
        origin.clip_url, "audio-mp3", "shows/fielded", "%(id)s.%(ext)s", "--retries 3",
        cookies.strip(), False, "Fielded")
    assert item.extras == {"task": "Fielded", "task_id": task["id"]}
    assert item.batch_id == f"task-{task['id']}-{int(task['created_at'])}"


def test_an_entry_whose_link_changes_is_not_queued_again(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A channel's feed links the same video another way (its archive id unchanged), before
    its item was even looked at (queued, not started): the task knows it by that id."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_YOUTUBE_BASE_URL=origin.base_url)
    channel = "UC" + "l" * 22
    origin.feeds.set(channel, [FeedEntry("movedlink01", origin.watch_url("clip"), "a")])
    task = create(client, name="moved", url=f"https://www.youtube.com/channel/{channel}")
    assert _run(runtime, task)["queued"] == 1
    origin.feeds.set(channel, [FeedEntry("movedlink01", origin.watch_url("clip", title="b"),
                                         "a")])
    again = _run(runtime, task)
    assert (again["queued"], again["skipped"]) == (0, 1)
    unmark = client.simulate_delete(f"/api/tasks/{task['id']}/mark")  # no archive, no marks
    assert unmark.json == {"message": "Removed 0 entries of task 'moved' from the archive."}


def test_a_config_up_to_its_bound_is_taken(
        app_with: Callable[..., tuple[Runtime, Client]]) -> None:
    _, client = app_with(YTP_TASKS_SPREAD="0")
    bound = 64 * 1024 - len('{"k":""}')
    for size, status in ((bound, 200), (bound + 1, 400)):
        response = client.simulate_post("/api/tasks", json={
            "name": f"c{size}", "url": "http://127.0.0.1:9/feed.rss", "config": {"k": "x" * size}})
        assert response.status_code == status, response.text
    assert response.json["error"] == "config is larger than 64 KiB."
    listed = client.simulate_post("/api/tasks", json={
        "name": "listed", "url": "http://127.0.0.1:9/feed.rss", "config": ["k"]})
    assert (listed.status_code, listed.json["error"]) == (400, "config must be an object.")
    for count, status in ((1_000_000, 200), (1_000_001, 400)):  # and the retention counts
        response = client.simulate_post("/api/tasks", json={
            "name": f"k{count}", "url": "http://127.0.0.1:9/feed.rss", "keep_newest": count,
            "keep_days": count})
        assert response.status_code == status, response.text


def test_the_nfo_carries_what_media_servers_read(tmp_path: Path) -> None:
    info = {"id": "UCxyz", "channel_id": "UCchan", "title": "Show", "extractor_key": "Youtube",
            "release_year": 2020, "upload_date": "20190301", "channel": "Chan", "tags": ["a"],
            "thumbnails": [
                {"id": "avatar_uncropped", "url": "https://img.invalid/avatar.jpg"},
                {"id": "banner_uncropped", "url": "https://img.invalid/banner.jpg"}],
            "_type": "playlist", "entries": [{"id": "v1"}] * 3}
    answer = write_metadata(tmp_path, tmp_path / "show", info, lambda url: PICTURE)
    assert (answer["uploader"], answer["tags"], answer["id_type"]) == ("Chan", ["a"], "youtube")
    written = json.loads((tmp_path / answer["json_file"]).read_text())
    assert "entries" not in written and "_type" not in written  # the channel, not its videos
    assert written["title"] == "Show"
    root = ET.parse(tmp_path / "show" / "tvshow.nfo").getroot()
    assert (root.findtext("title"), root.findtext("year")) == ("Show", "2020")
    unique = root.find("uniqueid")
    assert unique is not None and (unique.text, unique.get("type")) == ("UCchan", "youtube")
    assert [(t.get("aspect"), t.text) for t in root.findall("thumb")] == [
        ("poster", "poster.jpg"), ("banner", "banner.jpg"), ("landscape", "landscape.jpg")]
    assert root.findtext("fanart/thumb") == "fanart.jpg"
    assert (answer["id"], answer["year"]) == ("UCchan", 2020)
    bare = write_metadata(tmp_path, tmp_path / "bare", {"id": "c1", "channel": "Chan",
                                                        "extractor": "Gen"}, _no_pictures)
    assert (bare["id"], bare["title"], bare["id_type"]) == ("c1", "Chan", "gen")
    assert bare["json_file"] == "bare/Chan [c1].info.json"
    unique = ET.parse(tmp_path / "bare" / "tvshow.nfo").getroot().find("uniqueid")
    assert unique is not None and (unique.text, unique.get("type")) == ("c1", "gen")
    nothing = write_metadata(tmp_path, tmp_path / "none", {}, _no_pictures)
    assert (nothing["id"], nothing["json_file"]) == ("", "none/channel [channel].info.json")


def test_names_of_an_array_come_from_the_feeds_titles(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Cut to a name's 100 characters; made unique among the tasks."""
    _, client = app_with(YTP_TASKS_SPREAD="0")
    long_title = "L" * 150
    for name, title in (("named.rss", "Podcast"), ("long.rss", long_title)):
        origin.feeds.pages[name] = (f"<rss><channel><title>{title}</title><item><title>a"
                                    f"</title><link>{origin.clip_url}</link></item></channel>"
                                    f"</rss>".encode(), "application/rss+xml")
    created = client.simulate_post("/api/tasks", json=[
        {"name": "Podcast", "url": "http://127.0.0.1:9/x.rss"},
        {"url": f"{origin.base_url}/pages/named.rss"},
        {"url": f"{origin.base_url}/pages/long.rss"}])
    assert created.status_code == 200, created.text
    assert [t["name"] for t in created.json] == ["Podcast", "Podcast (2)", long_title[:100]]


def test_published_after_skips_what_came_before_the_day(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("dated", [
        FeedEntry("old", f"{origin.clip_url}?old", published="2024-01-31T23:59:59+00:00"),
        FeedEntry("new", f"{origin.clip_url}?new", published="2024-02-01T00:00:00+00:00")])
    task = create(client, name="dated", url=f"{origin.base_url}/feeds/dated.rss",
                  published_after="2024-02-01")
    run = _run(runtime, task)
    assert (run["found"], run["queued"], run["skipped"]) == (2, 1, 1)
    assert [i.url for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [
        f"{origin.clip_url}?new"]


def test_the_tasks_preset_applies_to_its_listing(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A playlist page is listed by yt-dlp with the task's preset (its cookies, its proxy):
    here a proxy that answers nothing, so the listing fails, where the default succeeds."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    made = client.simulate_post("/api/presets", json={"name": "dead-proxy",
                                                      "cli": "--proxy http://127.0.0.1:9"})
    assert made.status_code in (200, 201), made.text
    proxied = create(client, name="proxied", url=origin.playlist_url, preset="dead-proxy")
    failed = _run(runtime, proxied)
    assert failed["status"] == "failed" and failed["queued"] == 0, failed
    direct = create(client, name="direct", url=origin.playlist_url)
    assert _run(runtime, direct)["queued"] == 3


# --- retention by age ------------------------------------------------------------------------


def _aged_task(app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin,
               name: str, **env: str) -> tuple[Runtime, dict[str, Any], list[Item]]:
    runtime, client = app_with(YTP_TASKS_SPREAD="0", **env)
    return runtime, *aged_task(runtime, client, origin, name)


def test_retention_by_age_removes_only_what_finished_before_the_days(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, task, (old, recent) = _aged_task(app_with, origin, "aged",
                                              YTP_REMOVE_FILES="true")
    run = _run(runtime, task)
    assert (run["status"], run["queued"]) == ("success", 0)  # the removed entry stays done
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]
    assert not (Path(old.download_folder) / old.filename).exists()
    assert (Path(recent.download_folder) / recent.filename).is_file()


def test_retention_deletes_nothing_while_removing_files_is_off(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """And says so where the person looks: the run and the task said success with no error
    (the log alone had it) while the files past the rule filled the disk."""
    runtime, task, (old, _) = _aged_task(app_with, origin, "unremoved")
    run = _run(runtime, task)
    assert run["status"] == "success"
    told = "retention is set but YTP_REMOVE_FILES is off: no file was deleted"
    assert run["error"] == told
    stored = runtime.tasks.store.execution(run["id"])
    assert stored is not None and stored["error"] == told
    assert runtime.tasks.get(task["id"])["last_error"] == told
    assert len(runtime.tasks.items(task["id"], 0, 10)[0]) == 2
    assert (Path(old.download_folder) / old.filename).is_file()
    log = runtime.tasks.store.execution(run["id"], with_log=True)
    assert any(line.endswith(" ERROR retention is set but YTP_REMOVE_FILES is off: no file "
                             "was deleted") for line in log["log"]), log


# --- a run's life: announced, cut short by a stop -------------------------------------------


def test_a_run_is_announced_as_it_starts_and_as_it_ends(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("told", [FeedEntry("a", origin.clip_url)])
    task = create(client, name="told", url=f"{origin.base_url}/feeds/told.rss")
    seen: list[Event] = []
    runtime.bus.subscribe(seen.append)
    _run(runtime, task)
    changes = [(e.data["action"], e.data["data"]["running"], e.data["data"]["last_status"])
               for e in seen if e.name == events.CONFIG_UPDATE
               and e.data["feature"] == "tasks" and e.data["data"]["id"] == task["id"]]
    assert changes == [("update", True, ""), ("update", False, "success")]
    dispatched = [e.data for e in seen if e.name == events.TASK_DISPATCHED]
    assert [(d["task_id"], d["name"], d["queued"]) for d in dispatched] == [
        (task["id"], "told", 1)]


def test_a_run_cut_short_by_the_stop_runs_again_at_the_next_start(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """Not a failure (no streak, no last status): left running, marked interrupted at the
    next start, and run then."""
    from support.server import wait_for

    from appliance.api.app import create_app

    runtime = start_runtime(YTP_TASKS_SPREAD="0")
    client = falcon.testing.TestClient(create_app(runtime))
    origin.feeds.set("cut", [FeedEntry("a", origin.clip_url)])
    origin.feeds.fail("cut", 500)  # as a listing fails when its process is stopped
    task = create(client, name="cut", url=f"{origin.base_url}/feeds/cut.rss")
    runtime.tasks.runner.stopping.set()  # the first thing the service's stop does
    cut = _run(runtime, task)
    state = runtime.tasks.get(task["id"])
    assert (state["failures"], state["last_status"], state["last_run_at"]) == (0, "", None)
    assert runtime.tasks.store.execution(cut["id"])["status"] == "running"
    runtime.stop()
    origin.feeds.set("cut", [FeedEntry("a", origin.clip_url)])
    again = start_runtime(YTP_TASKS_SPREAD="0")
    assert again.tasks.store.execution(cut["id"])["status"] == "interrupted"
    done = wait_for(lambda: [e for e in again.tasks.store.executions(1, 10, task["id"])[0]
                             if e["trigger"] == "startup" and e["status"] != "running"],
                    timeout=30, message="the run at start")
    assert [(e["status"], e["queued"]) for e in done] == [("success", 1)]


# --- which handler reads a URL ---------------------------------------------------------------


def test_the_handler_a_url_goes_to(app_with: Callable[..., tuple[Runtime, Client]]) -> None:
    _, client = app_with(YTP_TASKS_SPREAD="0")
    for url, handler in (
            ("https://blog.invalid/feed/", "RssHandler"),
            ("https://blog.invalid/podcast/rss", "RssHandler"),
            ("https://blog.invalid/show.atom", "RssHandler"),
            ("https://blog.invalid/show#handler=rss", "RssHandler"),
            ("https://blog.invalid/feedback", "GenericTaskHandler"),
            ("https://www.youtube.com/c", "GenericTaskHandler"),
            ("https://www.youtube.com/watch?v=abc", "GenericTaskHandler"),
            ("https://www.youtube.com/channel/not-a-channel-id", "GenericTaskHandler"),
            ("https://www.youtube.com/c/someone", "YoutubeHandler"),
            ("https://m.youtube.com/@someone/videos", "YoutubeHandler")):
        inspect = client.simulate_post("/api/tasks/inspect", json={"url": url,
                                                                   "static_only": True})
        assert inspect.json["metadata"]["handler"] == handler, url


def test_youtube_addresses_read_their_feed(origin: MediaOrigin) -> None:
    """Each kind of address is read as the feed it has; a handle through its page."""
    from appliance.tasks.handlers import YoutubeHandler

    channel = "UC" + "f" * 22
    origin.feeds.handles["@feeds"] = channel
    handler = YoutubeHandler(lambda: origin.base_url)
    feeds = f"{origin.base_url}/feeds/videos.xml?"
    for url, query in (
            ("https://www.youtube.com/playlist?list=PLabc", "playlist_id=PLabc"),
            (f"https://www.youtube.com/channel/{channel}/videos", f"channel_id={channel}"),
            ("https://www.youtube.com/user/someone", "user=someone"),
            ("https://www.youtube.com/@feeds", f"channel_id={channel}")):
        assert handler.feed_url(url, timeout=10) == feeds + query, url

