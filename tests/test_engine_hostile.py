"""What a site hands the engine that a person could not: playlist entries that are not web
URLs, a typed metadata value that yt-dlp's argument syntax would misread, site text that is
not XML."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from yt_dlp import YoutubeDL, parse_options
from yt_dlp.postprocessor.metadataparser import MetadataParserPP

from appliance import events
from appliance.engine.child import MAX_TEXT
from appliance.engine.dl_fields import MAX_METADATA_VALUE, metadata_arguments
from appliance.engine.nfo import write_nfo
from appliance.engine.options import template_length_problem
from appliance.engine.plans import DEFAULT_ARCHIVE
from appliance.engine.requests import check_cookies, check_url
from appliance.errors import AppError
from appliance.runtime import Runtime


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from runtime_of_module(tmp_path_factory, "hostile")


HOSTILE = ("javascript:alert(1)", "file:///etc/passwd", "data:video/mp4;base64,AAAAIGZ0eXBpc29t")


@pytest.mark.parametrize("url", [*HOSTILE, "ftp://example.com/x.mp4", "http:///x.mp4",
                                 "https://:80/x.mp4"])
def test_a_url_to_download_is_one_of_the_web_with_a_host(url: str) -> None:
    with pytest.raises(AppError, match=r"must be an http\(s\) URL"):
        check_url(url)
    assert check_url(" HTTPS://Example.com/x.mp4\n") == "HTTPS://Example.com/x.mp4"


def test_cookies_are_netscape_lines_after_their_comments() -> None:
    check_cookies("# Netscape HTTP Cookie File\n# comment\n\n"
                  "#HttpOnly_.example.com\tTRUE\t/\tTRUE\t0\tn\tv\n"
                  ".example.com\tTRUE\t/\tFALSE\t-1\tm\tw\n")
    for text, reason in (("#HttpOnly_.example.com\tTRUE\n", "line 1 has 2 tab-separated"),
                         ("# a comment\n\nnot a cookie", "line 3 has 1 tab-separated"),
                         ("a\tb\tc\td\tsoon\tn\tv", "non-numeric expiry 'soon'")):
        with pytest.raises(AppError, match=reason):
            check_cookies(text)


def test_a_playlists_entries_that_are_not_web_urls_are_refused(
        rt: Runtime, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.engine")
    origin.feeds.set("hostile", [FeedEntry(f"bad{n}", url) for n, url in enumerate(HOSTILE)]
                     + [FeedEntry("clip", origin.clip_url, "the clip")])
    said: list[events.Event] = []
    stop = rt.bus.subscribe(lambda e: e.name == "log_warning" and said.append(e))
    try:
        [parent] = rt.engine.add([{"url": f"{origin.base_url}/feeds/hostile.rss",
                                   "auto_start": False}])
        [child] = wait_for(
            lambda: [i for i in rt.engine.queue_items() if i.batch_id == parent.id],
            timeout=60, message="the playlist's entries")
        warning = wait_for(lambda: [e for e in said if e.data.get("id") == parent.id],
                           timeout=10, message="the refusal said")
    finally:
        stop()
    try:
        assert child.url.split("#")[0] == origin.clip_url
        assert child.info["playlist_index"] == 4  # its place in the feed, refused ones counted
        assert [i.url for i in rt.store.batch(parent.id)] == [child.url]
        message = warning[0].data["message"]
        assert "3 of the playlist's 4 entries were refused" in message
        assert "not an http(s) URL: 3" in message
        refusals = [r for r in caplog.records if "refused" in r.getMessage()
                    and parent.id in r.getMessage()]
        assert len(refusals) == 3 and not any(r.exc_info for r in refusals)
        for record, url in zip(refusals, HOSTILE, strict=True):
            assert url.split(";")[0] in record.getMessage()
    finally:
        rt.engine.delete_items([child.id])


def test_one_refused_entry_is_said_as_one(rt: Runtime, origin: MediaOrigin) -> None:
    origin.feeds.set("one-hostile", [FeedEntry("bad", HOSTILE[1]),
                                     FeedEntry("clip", f"{origin.clip_url}?one", "the clip")])
    said: list[events.Event] = []
    stop = rt.bus.subscribe(lambda e: e.name == "log_warning" and said.append(e))
    try:
        [parent] = rt.engine.add([{"url": f"{origin.base_url}/feeds/one-hostile.rss",
                                   "auto_start": False}])
        warning = wait_for(lambda: [e for e in said if e.data.get("id") == parent.id],
                           timeout=60, message="the refusal said")
    finally:
        stop()
    [child] = wait_for(lambda: [i for i in rt.engine.queue_items() if i.batch_id == parent.id],
                       timeout=60, message="the entry left queued")
    rt.engine.delete_items([child.id])
    assert warning[0].data["message"] == (
        "Feed one-hostile: 1 of the playlist's 2 entries was refused (not an http(s) URL: "
        "1); the others are queued.")


def test_a_playlists_entries_keep_no_more_text_than_an_item_does(
        rt: Runtime, origin: MediaOrigin) -> None:
    """An item keeps at most MAX_TEXT characters of a text its site gives; an entry of a
    playlist kept its whole title: a feed of 50 entries titled 200,000 characters each
    made 10 MB of items, stored, held and sent to every client at each of their events."""
    long = "t" * 200_000
    origin.feeds.set("long-titles", [FeedEntry(f"e{n}", f"{origin.clip_url}?long={n}",
                                               f"{n} {long}") for n in range(50)])
    [parent] = rt.engine.add([{"url": f"{origin.base_url}/feeds/long-titles.rss",
                               "auto_start": False}])
    children = wait_for(lambda: [i for i in rt.engine.queue_items() if i.batch_id == parent.id],
                        timeout=60, message="the playlist's entries")
    rt.engine.delete_items([c.id for c in children])
    assert len(children) == 50
    assert sorted(c.title for c in children) == sorted(f"{n} {long}"[:MAX_TEXT] for n in range(50))


def test_a_playlist_of_refused_entries_fails_saying_why(rt: Runtime,
                                                        origin: MediaOrigin) -> None:
    too_long = f"{origin.clip_url}?{'x' * 9000}"
    origin.feeds.set("all-hostile", [FeedEntry(f"bad{n}", url)
                                     for n, url in enumerate([*HOSTILE, too_long])])
    [parent] = rt.engine.add([{"url": f"{origin.base_url}/feeds/all-hostile.rss"}])
    failed = wait_for(lambda: (i := rt.store.get(parent.id)) and i.kind == "done" and i,
                      timeout=60, message="the playlist to fail")
    assert failed.status == "error"
    assert failed.error == ("All 4 of the playlist's entries were refused (not an http(s) "
                            "URL: 3; is longer than 8192 characters: 1).")
    assert not rt.store.batch(parent.id)


@pytest.mark.parametrize("value", [
    "abc\\", "\\\\\\", "\\", "a:b", "a\\:b", ":", "\\:", "a\\\\:b:", "%(title)s",
    "%(title)s:%(id)s\\", "%s %d %% %", "(?P<x>", "^.*$", "(a|a)+$", "[]\\d{", "=x=", "=", "x=",
    "pre_process:x", "after_move:%(id)s", "a\nb\r\n", " lead", "tail ", "é😀", "\\A", "\\Z"])
def test_a_typed_metadata_value_is_the_field_exactly(value: str) -> None:
    """The arguments go through yt-dlp's own option parsing and its metadata parser, as a
    download's do: the field ends up holding the value, character for character."""
    opts = parse_options(metadata_arguments("title", value))
    [parser] = [p for p in opts.ydl_opts["postprocessors"] if p["key"] == "MetadataParser"]
    with YoutubeDL({"quiet": True}) as ydl:
        _, info = MetadataParserPP(ydl, parser["actions"]).run({"title": "site's", "id": "i"})
    assert info["title"] == value


@pytest.mark.parametrize("kind", ["tv", "movie"])
def test_an_nfo_holds_site_text_with_characters_xml_forbids(tmp_path: Path, kind: str) -> None:
    """Control characters, a lone surrogate and U+FFFE/U+FFFF are dropped from every text
    and attribute; the rest of the text is kept as it was."""
    bad = "\x00\x01\x08\x0b\x0c\x1b\x7f\ud800\ufffe\uffff"
    info = {"title": "a\x0bb\x00c", "description": f"line\none\ttab{bad}",
            "upload_date": "20240102", "uploader": f"up{bad}", "channel": "ch", "id": f"id{bad}",
            "extractor": f"Ex{bad}", "tags": [f"t{bad}", bad, "ok"], "duration": 120}
    written = write_nfo(tmp_path / "clip.mp4", kind, info)
    root = ET.parse(written).getroot()  # raised "not well-formed" before
    assert root.findtext("title") == "abc"
    assert root.findtext("plot") == "line\none\ttab\x7f"
    assert root.findtext("showtitle" if kind == "tv" else "studio") == "up\x7f"
    unique = root.find("uniqueid")
    assert unique is not None and unique.text == "id\x7f" and unique.get("type") == "ex\x7f"
    assert [t.text for t in root.findall("tag")] == ["t\x7f", "\x7f", "ok"]


LONG = "b" * 300 + ".%(ext)s"


def test_a_template_with_a_name_no_file_could_have_is_refused_where_it_is_saved(
        client: TestClient) -> None:
    """Its fixed text alone is longer than a file name may be: every download of it failed
    "File name too long", showing the server's paths."""
    for method, path, body in (
            ("POST", "/api/presets", {"name": "too-long", "template": LONG}),
            ("POST", "/api/history", {"url": "http://127.0.0.1:9/v", "template": LONG}),
            ("POST", "/api/tasks", {"name": "too-long", "url": "http://127.0.0.1:9/feed.rss",
                                    "template": f"%(uploader)s/{LONG}"}),
            ("PUT", "/api/settings", {"output_template": LONG})):
        answer = client.simulate_request(method, path, json=body)
        assert answer.status_code == 400, (path, answer.text)
        assert "template" in answer.json["error"] and "301 bytes" in answer.json["error"]
    option = client.simulate_post("/api/presets", json={"name": "too-long", "cli": f"-o {LONG}"})
    assert option.status_code == 400 and "--output" in option.json["error"], option.text


@pytest.mark.parametrize(("template", "refused"), [
    ("b" * 255 + "%(ext)s", False), ("b" * 256 + "%(ext)s", True),
    ("é" * 127 + "%(ext)s", False), ("é" * 128, True),  # bytes, not characters
    ("%(title)s" * 100, False), ("a" * 200 + "%(title)s" + "a" * 56, True),
    ("a" * 255 + "/" + "b" * 255, False), ("%%" * 255, False), ("%%" * 256, True),
    ("%(upload_date>%Y|0)s/" + "c" * 256, True)])
def test_a_templates_fixed_text_is_measured_per_name(template: str, refused: bool) -> None:
    assert (template_length_problem(template) is not None) == refused


@pytest.mark.parametrize(("cli", "said"), [
    ("--match-filters 'title~=\"(?P<x>\"'", "'(?P<x>', which is not accepted: invalid"),
    ("--break-match-filters \"title~='[a-'\"", "'[a-', which is not accepted: invalid"),
    ("--match-filters 'duration>60 & title~=(' --match-filters is_live", "'(', which"),
    ("--match-filters 'title~=a{1000}{1000}'", "is not accepted"),
    ("--match-filters 'title=a&'", "cannot read as a filter"),
    ("--match-filters -", "asks on a terminal"),
    ("--reject-title '(x'", "--reject-title '(x' is not accepted")])
def test_a_presets_filters_yt_dlp_could_not_run_are_refused_when_saved(
        client: TestClient, cli: str, said: str) -> None:
    """yt-dlp reads a filter's expressions only when it filters a video: saved, the preset
    failed every item with a traceback."""
    answer = client.simulate_post("/api/presets", json={"name": "filters", "cli": cli})
    assert answer.status_code == 400 and said in answer.json["error"], answer.text


def test_a_presets_filters_yt_dlp_runs_are_saved(client: TestClient) -> None:
    cli = ("--match-filters '!is_live' --match-filters \"like_count>?100 & "
           "description~='(?i)\\bcats \\& dogs\\b'\" --break-match-filters 'title~=^(a|b)+$'")
    answer = client.simulate_post("/api/presets", json={"name": "good-filters", "cli": cli})
    assert answer.status_code == 200, answer.text
    assert client.simulate_delete(f"/api/presets/{answer.json['id']}").status_code == 200


def test_an_extraction_that_raises_fails_its_item_saying_why(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """The archive that decides on the item cannot be read (here: a folder where the file
    should be). The item stayed waiting for its info for good, without a word to the person;
    it fails now, saying what could not be done."""
    rt = start_runtime(YTP_KEEP_ARCHIVE="true")
    (rt.settings.config_path / DEFAULT_ARCHIVE).mkdir()
    [item] = rt.engine.add([{"url": origin.clip_url}])
    failed = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                      timeout=60, message="the item to fail")
    assert failed.status == "error"
    assert failed.error.startswith("Could not read the URL's info: IsADirectoryError: ")
    assert str(rt.settings.config_path / DEFAULT_ARCHIVE) in failed.error


def test_a_filter_that_backtracks_without_end_fails_its_item_at_once(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """The expression passes every check of its text when saved; on this title yt-dlp's
    re.search ran for minutes in the download process, the item "preparing" until the job's
    time bound. It fails now within seconds, saying which options and why."""
    rt = start_runtime()
    [item] = rt.engine.add([{"url": origin.watch_url("short", title="a" * 40 + "!"),
                             "cli": "--match-filters 'title~=(a+)+$'"}])
    failed = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                      timeout=45, message="the item to fail")
    assert failed.status == "error"
    assert "--match-filters, --match-title or --reject-title ran longer than 2 s" in \
        failed.error, failed.error
    assert rt.engine.active_items() == []


def test_a_sites_text_that_is_not_valid_is_mended_and_its_item_ends(
        rt: Runtime, origin: MediaOrigin) -> None:
    """A site's JSON may hold a lone surrogate ("\\udce9"). The title reached the database,
    which refused every write of the item: it never ended, and said nothing. The text is
    mended (U+FFFD) in the download process, and so is the file's name, which could not be
    opened or was written in bytes that are not UTF-8."""
    url = origin.watch_url("short", title="caf\udce9 au lait", uploader="\udcff")
    [item] = rt.engine.add([{"url": url}])
    done = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                    timeout=90, message="the item's end")
    try:
        assert done.status == "finished", done.error
        assert done.title == "caf\ufffd au lait" and done.info["uploader"] == "\ufffd"
        media = rt.settings.download_path / done.filename
        assert media.is_file() and "caf\ufffd au lait" in done.filename
        names = [path.name for path in rt.settings.download_path.rglob("*")]
        assert all(name.encode("utf-8") for name in names)  # none with a surrogate escape
    finally:
        rt.engine.delete_items([item.id])


def test_a_call_that_raises_in_a_download_process_is_its_error(rt: Runtime) -> None:
    """A function of the service run in a pooled process (a feed read, say) that raises: the
    caller gets its words as an AppError, and the process goes back to the pool."""
    with pytest.raises(AppError) as raised:
        rt.engine.call("appliance.engine.child:generic_id", 30, url=5)
    assert raised.value.code == "DOWNLOAD_ERROR"
    assert raised.value.message.startswith("AttributeError: ")
    assert rt.engine.call("appliance.engine.child:generic_id", 30,
                          url="https://x.invalid/a%20b.mp4") == "a b"


def test_an_item_yt_dlp_passes_over_is_skipped_saying_why(
        rt: Runtime, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    """yt-dlp's own filter refused it: the item was 'finished', without a file or a word."""
    caplog.set_level(logging.WARNING, logger="appliance.engine.jobs")
    [item] = rt.engine.add([{"url": origin.watch_url("clip"),
                             "cli": "--match-filters 'duration > 1000'"}])
    done = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                    timeout=90, message="the item's end")
    try:
        assert (done.status, done.filename, done.file_size) == ("skip", "", None)
        assert done.msg == "Not downloaded: Watch clip does not pass filter (duration > 1000)," \
                           " skipping."
        # what yt-dlp warned of on the way reaches the service's log, naming the item
        assert f"yt-dlp [{item.id}]: [generic] Falling back on generic information " \
               "extractor" in caplog.messages
    finally:
        rt.engine.delete_items([item.id])


def test_a_typed_metadata_value_is_bounded(rt: Runtime) -> None:
    created = rt.engine.dl_fields.create({"name": "Title", "field": "title", "kind": "text"})
    try:
        at_most = rt.engine.dl_fields.arguments({"title": "x" * MAX_METADATA_VALUE})
        assert at_most == metadata_arguments("title", "x" * MAX_METADATA_VALUE)
        with pytest.raises(AppError, match=f"Title is longer than {MAX_METADATA_VALUE} "):
            rt.engine.dl_fields.arguments({"title": "x" * (MAX_METADATA_VALUE + 1)})
    finally:
        rt.engine.dl_fields.delete(created["id"])


def test_a_requests_cookies_go_with_its_download(rt: Runtime, origin: MediaOrigin) -> None:
    """Written to the item's temp folder for yt-dlp, gone with it once the item ends."""
    cookies = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n"
    [item] = rt.engine.add([{"url": origin.clip_url, "cookies": cookies,
                             "template": "with cookies.%(ext)s"}])
    done = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                    timeout=90, message="the item's end")
    try:
        assert done.status == "finished", done.error
        assert done.to_dict()["has_cookies"] is True
        # The end is stored, then the temp folder removed, then the end announced.
        wait_for(lambda: not (rt.settings.temp_path / item.id).exists(), timeout=10,
                 message="the item's temp folder (its cookies) to go")
    finally:
        rt.engine.delete_items([item.id])
