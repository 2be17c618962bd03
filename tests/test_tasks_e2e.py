"""Scheduled tasks end to end: the real service, its real scheduler and download processes,
against feeds, a YouTube-like channel feed and a playlist page served by the local origin."""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.procs import processes, thread_niceness
from support.server import Server, wait_for
from test_e2e import Feed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tasks_e2e")]

_names = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, origin: MediaOrigin) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tasks-server")
    server = Server(root, {"YTP_YOUTUBE_BASE_URL": origin.base_url,
                           "YTP_TASKS_SPREAD": "0"}).start()
    yield server
    server.stop()


def entries(origin: MediaOrigin, *names: str) -> list[FeedEntry]:
    """Feed entries for the origin's watch pages (clip, clip2, short); a name may carry a
    suffix (``clip-2``) to make a distinct entry of the same clip."""
    made = []
    for name in names:
        clip, _, tag = name.partition("-")
        url = origin.watch_url(clip, title=name) if tag else origin.watch_url(clip)
        made.append(FeedEntry(id=name.ljust(11, "x")[:11], url=url, title=name))
    return made


def create(server: Server, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", f"task {next(_names)}")
    fields.setdefault("auto_start", False)  # the entries wait: counting them is the point
    response = server.post("/api/tasks", fields)
    assert response.status_code == 200, response.text
    return response.json()


def run(server: Server, task_id: int) -> dict[str, Any]:
    response = server.post(f"/api/tasks/{task_id}/execute")
    assert response.status_code == 202, response.text
    execution_id = response.json()["id"]
    return wait_for(lambda: (e := server.get(f"/api/executions/{execution_id}").json())
                    ["status"] != "running" and e, timeout=60, message="the run to finish")


def task_items(server: Server, name: str) -> list[dict[str, Any]]:
    body = server.get("/api/history", params={"type": "all"}).json()
    return [i for i in body["queue"] + body["history"] if i["extras"].get("task") == name]


def test_rss_feed_queues_each_new_entry_once(server: Server, origin: MediaOrigin) -> None:
    origin.feeds.set("rss-once", entries(origin, "clip", "clip2"))
    task = create(server, url=f"{origin.base_url}/feeds/rss-once.rss")
    first = run(server, task["id"])
    assert (first["status"], first["handler"], first["found"], first["queued"]) == \
        ("success", "RssHandler", 2, 2)
    again = run(server, task["id"])
    assert (again["queued"], again["skipped"]) == (0, 2)
    origin.feeds.add("rss-once", entries(origin, "short")[0])
    third = run(server, task["id"])
    assert (third["found"], third["queued"]) == (3, 1)
    urls = [i["url"] for i in task_items(server, task["name"])]
    assert sorted(urls) == sorted(e.url for e in entries(origin, "clip", "clip2", "short"))
    state = server.get(f"/api/tasks/{task['id']}").json()
    assert (state["last_status"], state["last_found"], state["last_queued"]) == \
        ("success", 3, 1)
    assert state["last_run_at"] is not None and state["failures"] == 0


def test_a_run_works_below_the_threads_that_answer_requests(server: Server,
                                                            origin: MediaOrigin) -> None:
    """A round of runs (and the extractions of what it queues) does not take the CPU from the
    API: their threads stand below the worker's main thread, which hands requests out."""
    origin.feeds.set("rss-below", entries(origin, "clip"))
    task = create(server, url=f"{origin.base_url}/feeds/rss-below.rss")
    assert run(server, task["id"])["queued"] == 1
    assert server.proc is not None
    # gunicorn names its worker "gunicorn: worker" when setproctitle is installed
    worker = next(p.pid for p in processes().values() if p.ppid == server.proc.pid
                  and p.comm.startswith(("python", "gunicorn: worke")))
    threads = thread_niceness(worker)
    main = threads[worker]
    assert main == os.getpriority(os.PRIO_PROCESS, server.proc.pid)  # as the service started
    assert sorted(set(threads.values())) == [main, min(main + 10, 19)], threads


def test_atom_feed_and_published_after(server: Server, origin: MediaOrigin) -> None:
    old, new = entries(origin, "clip-old", "clip-new")
    old.published = "2020-01-01T00:00:00+00:00"
    origin.feeds.set("atom-dates", [new, old])
    task = create(server, url=f"{origin.base_url}/feeds/atom-dates.atom",
                  published_after="2023-06-01")
    first = run(server, task["id"])
    assert (first["handler"], first["found"], first["queued"]) == ("RssHandler", 2, 1)
    assert [i["url"] for i in task_items(server, task["name"])] == [new.url]
    assert run(server, task["id"])["queued"] == 0


def test_youtube_channel_and_handle_read_the_channel_feed(server: Server,
                                                          origin: MediaOrigin) -> None:
    channel = "UC" + "a1b2c3d4e5f6g7h8i9j0kL"
    origin.feeds.set(channel, entries(origin, "clip-yt1", "clip-yt2"))
    task = create(server, url=f"https://www.youtube.com/channel/{channel}")
    first = run(server, task["id"])
    assert (first["handler"], first["queued"]) == ("YoutubeHandler", 2), first
    assert run(server, task["id"])["queued"] == 0
    items = task_items(server, task["name"])
    assert {i["extras"]["task_entry"] for i in items} == {"youtube clip-yt1xxx",
                                                          "youtube clip-yt2xxx"}
    origin.feeds.handles["@someone"] = channel
    by_handle = create(server, url="https://www.youtube.com/@someone")
    assert run(server, by_handle["id"])["queued"] == 2
    origin.feeds.set("PLlist1", entries(origin, "clip-pl1"))
    playlist = create(server, url="https://www.youtube.com/playlist?list=PLlist1")
    assert run(server, playlist["id"])["queued"] == 1


def test_playlist_page_through_ytdlp_flat_listing(server: Server, origin: MediaOrigin) -> None:
    task = create(server, url=origin.playlist_url)
    first = run(server, task["id"])
    assert (first["handler"], first["found"], first["queued"]) == ("GenericTaskHandler", 3, 3)
    assert run(server, task["id"])["queued"] == 0


def test_mark_then_run_queues_only_what_comes_later(server: Server,
                                                    origin: MediaOrigin) -> None:
    origin.feeds.set("marked", entries(origin, "clip", "clip2"))
    task = create(server, url=f"{origin.base_url}/feeds/marked.rss", mark=True)
    assert run(server, task["id"])["queued"] == 0
    origin.feeds.add("marked", entries(origin, "short")[0])
    assert run(server, task["id"])["queued"] == 1
    unmark = server.request("DELETE", f"/api/tasks/{task['id']}/mark")
    assert unmark.status_code == 200 and "message" in unmark.json()
    assert run(server, task["id"])["queued"] == 2  # the back catalogue, now wanted
    again = server.post(f"/api/tasks/{task['id']}/mark")
    assert again.status_code == 200 and "Marked 3" in again.json()["message"]


def test_handler_off_queues_the_url_as_one_item(server: Server, origin: MediaOrigin) -> None:
    task = create(server, url=origin.playlist_url, handler_enabled=False)
    first = run(server, task["id"])
    assert (first["handler"], first["queued"]) == ("none", 1)


def test_failures_are_recorded_and_do_not_stop_other_tasks(server: Server,
                                                           origin: MediaOrigin) -> None:
    origin.feeds.set("down", [])
    origin.feeds.fail("down", 500)
    origin.feeds.set("junk", [])
    origin.feeds.junk("junk", b"\x00\x01 this is not xml <<<")
    origin.feeds.set("fine", entries(origin, "clip"))
    down = create(server, url=f"{origin.base_url}/feeds/down.rss")
    junk = create(server, url=f"{origin.base_url}/feeds/junk.rss")
    fine = create(server, url=f"{origin.base_url}/feeds/fine.rss")
    failed = run(server, down["id"])
    assert failed["status"] == "failed" and "HTTP 500" in failed["error"]
    assert "not a feed" in run(server, junk["id"])["error"]
    assert run(server, fine["id"])["queued"] == 1
    run(server, down["id"])
    state = server.get(f"/api/tasks/{down['id']}").json()
    assert (state["last_status"], state["failures"]) == ("failed", 2)
    assert "HTTP 500" in state["last_error"]
    log = server.get(f"/api/executions/{failed['id']}/log").json()
    assert any("HTTP 500" in line for line in log["lines"])


def _plain(error: str) -> bool:
    """An error a person can read: one short paragraph, no traceback."""
    return bool(error) and len(error) < 1000 and "Traceback" not in error


def test_hostile_feeds_fail_their_run_not_the_service(server: Server,
                                                      origin: MediaOrigin) -> None:
    """Read in a download process (tasks/isolated.py): a feed too big, one with an entry
    that leads off the web, one whose titles are huge and broken -- each fails, refuses or
    bounds its own, and the service answers throughout."""
    origin.feeds.set("huge", [])
    origin.feeds.junk("huge", b"<rss><channel>" + b"<item>x</item>" * 800_000)  # 11 MB
    origin.feeds.set("offweb", [FeedEntry("evil", "file:///etc/passwd", "passwd"),
                                *entries(origin, "clip-ow")])
    garbage = "<script>alert(1)</script>\x01" + "A" * 100_000  # \x01: not XML, feedparser's
    origin.feeds.set("titles", [FeedEntry("t1", origin.watch_url("clip", title="t1"), garbage)])
    huge = run(server, create(server, url=f"{origin.base_url}/feeds/huge.rss")["id"])
    assert huge["status"] == "failed" and "larger than 10 MiB" in huge["error"]
    offweb = create(server, url=f"{origin.base_url}/feeds/offweb.rss")
    refused = run(server, offweb["id"])  # the entry off the web only: the rest is queued
    assert (refused["status"], refused["queued"], refused["failed"]) == ("success", 1, 1)
    assert "1 entry refused, not queued" in refused["error"] and "http(s)" in refused["error"]
    state = server.get(f"/api/tasks/{offweb['id']}").json()
    assert _plain(state["last_error"])
    assert [i["url"] for i in task_items(server, offweb["name"])] == \
        [e.url for e in entries(origin, "clip-ow")]
    preview = server.post("/api/tasks/inspect", {"url": f"{origin.base_url}/feeds/titles.rss"})
    assert preview.status_code == 200, preview.text
    assert [len(i["title"]) for i in preview.json()["items"]] == [1000]
    assert run(server, create(server, url=f"{origin.base_url}/feeds/titles.rss")["id"])[
        "queued"] == 1
    assert server.get("/api/tasks").status_code == 200


def test_a_feed_of_thousands_comes_back_bounded(server: Server, origin: MediaOrigin) -> None:
    origin.feeds.set("thousands", [FeedEntry(f"e{n}", f"{origin.clip_url}?n={n}")
                                   for n in range(6000)])
    preview = server.post("/api/tasks/inspect",
                          {"url": f"{origin.base_url}/feeds/thousands.rss"})
    assert preview.status_code == 200, preview.text
    items = preview.json()["items"]
    assert len(items) == 5000 and items[0]["url"].endswith("?n=0")  # the newest kept


def test_a_feed_that_never_answers_is_cut_off(make_server: Any, origin: MediaOrigin) -> None:
    """A listing is bounded by the extract timeout: its process is killed, the run fails
    with the reason, and the next listing gets a fresh process."""
    server = make_server(YTP_EXTRACT_INFO_TIMEOUT="3", YTP_TASKS_SPREAD="0")
    origin.feeds.set("stuck", entries(origin, "clip"))
    origin.feeds.set("after", entries(origin, "clip2"))
    gate = origin.feeds.hold("stuck")
    try:
        stuck = run(server, create(server, url=f"{origin.base_url}/feeds/stuck.rss")["id"])
    finally:
        gate.set()
    assert stuck["status"] == "failed" and "no answer within 3 s" in stuck["error"]
    assert _plain(stuck["error"])
    assert run(server, create(server, url=f"{origin.base_url}/feeds/after.rss")["id"])[
        "queued"] == 1


def test_dispatch_is_announced_on_the_websocket(server: Server, origin: MediaOrigin) -> None:
    origin.feeds.set("told", entries(origin, "clip-told"))
    task = create(server, url=f"{origin.base_url}/feeds/told.rss")
    feed = Feed(server.ws_url)
    try:
        run(server, task["id"])
        event = feed.until(lambda e: e["event"] == "task_dispatched"
                           and e["data"]["name"] == task["name"])
        assert (event["data"]["queued"], event["data"]["found"]) == (1, 1)
        change = feed.until(lambda e: e["event"] == "config_update"
                            and e["data"]["feature"] == "tasks")
        assert change["data"]["action"] in {"create", "update"}
    finally:
        feed.close()


def test_a_run_is_announced_when_it_starts_and_when_it_ends(server: Server,
                                                             origin: MediaOrigin) -> None:
    origin.feeds.set("announced", entries(origin, "clip-announced"))
    task = create(server, url=f"{origin.base_url}/feeds/announced.rss")
    feed = Feed(server.ws_url)
    gate = origin.feeds.hold("announced")

    def task_change(e: dict[str, Any]) -> bool:
        return (e["event"] == "config_update" and e["data"]["feature"] == "tasks"
                and e["data"]["data"]["id"] == task["id"])

    try:
        assert server.post(f"/api/tasks/{task['id']}/execute").status_code == 202
        started = feed.until(task_change)
        assert started["data"]["action"] == "update"
        assert started["data"]["data"]["running"] is True
        assert started["data"]["data"]["last_status"] == ""  # the run has not ended
        gate.set()
        ended = feed.until(lambda e: task_change(e) and e["data"]["data"]["last_status"])
        assert ended["data"]["data"]["running"] is False
        assert ended["data"]["data"]["last_status"] == "success"
    finally:
        gate.set()
        feed.close()


def test_schedules_and_executions_list(server: Server, origin: MediaOrigin) -> None:
    task = create(server, url=f"{origin.base_url}/feeds/none.rss", timer="0 3 * * *")
    schedules = server.get("/api/schedules").json()["items"]
    mine = next(s for s in schedules if s["task_id"] == task["id"])
    assert mine["timer"] == "0 3 * * *" and mine["next_run_at"] > time.time()
    run(server, task["id"])
    listed = server.get("/api/executions", params={"task_id": task["id"]})
    assert listed.status_code == 200 and listed.headers["Total-Count"] == "1"
    assert listed.json()["items"][0]["status"] == "failed"  # the feed does not exist: 404


def _due(config: Path, task_id: int, seconds_ago: float) -> None:
    """Make the task's last run lie far in the past (as after a long stop)."""
    with sqlite3.connect(config / "appliance.db") as db:
        db.execute("UPDATE tasks SET last_run_at = ? WHERE id = ?",
                   (time.time() - seconds_ago, task_id))


def test_kill_during_a_run_then_restart(make_server: Any, origin: MediaOrigin) -> None:
    """kill -9 while a run reads its feed; the restart runs it once and queues each entry
    once; a slot missed while down runs once, not once per missed slot."""
    server = make_server(YTP_YOUTUBE_BASE_URL=origin.base_url, YTP_TASKS_SPREAD="0")
    origin.feeds.set("killed", entries(origin, "clip", "clip2"))
    task = create(server, url=f"{origin.base_url}/feeds/killed.rss", timer="0 * * * *")
    assert run(server, task["id"])["queued"] == 2
    origin.feeds.add("killed", entries(origin, "short")[0])
    gate = origin.feeds.hold("killed")
    assert server.post(f"/api/tasks/{task['id']}/execute").status_code == 202
    wait_for(lambda: origin.feeds.waiting.get("killed"), message="the run to read the feed")
    server.kill_hard()
    gate.set()
    # Down for three hours: three hourly slots missed.
    _due(server.root / "config", task["id"], 3 * 3600)
    server.start()
    done = wait_for(lambda: [e for e in server.get("/api/executions", params={
        "task_id": task["id"]}).json()["items"] if e["trigger"] == "startup"
        and e["status"] != "running"], timeout=60, message="the start-up run")
    assert len(done) == 1 and done[0]["queued"] == 1
    statuses = [e["status"] for e in server.get("/api/executions", params={
        "task_id": task["id"]}).json()["items"]]
    assert statuses.count("interrupted") == 1
    urls = [i["url"] for i in task_items(server, task["name"])]
    assert len(urls) == len(set(urls)) == 3
    assert server.get(f"/api/tasks/{task['id']}").json()["next_run_at"] > time.time()


def test_a_running_execution_streams_its_log(server: Server, origin: MediaOrigin) -> None:
    from support.sse import SseClient

    origin.feeds.set("streamed", entries(origin, "clip-streamed"))
    task = create(server, url=f"{origin.base_url}/feeds/streamed.rss")
    gate = origin.feeds.hold("streamed")
    try:
        started = server.post(f"/api/tasks/{task['id']}/execute").json()
        wait_for(lambda: origin.feeds.waiting.get("streamed"), message="the feed read")
        stream = SseClient(server.get(f"/api/executions/{started['id']}/log", stream=True,
                                      headers={"Accept": "text/event-stream"}))
        first = stream.until(lambda e: e["event"] == "log")
        assert task["url"] in first["data"]
        gate.set()
        rest = stream.rest(timeout=60)
        lines = [e["data"] for e in rest if e["event"] == "log"]
        assert any("queued 1" in line for line in lines)
        assert rest[-1]["event"] == "end"
    finally:
        gate.set()
    finished = server.get(f"/api/executions/{started['id']}/log").json()
    assert finished["status"] == "success" and any("queued 1" in x for x in finished["lines"])
    page = server.get(f"/api/tasks/{task['id']}/items").json()
    assert [i["url"] for i in page["items"]] == [entries(origin, "clip-streamed")[0].url]
    assert page["pagination"]["total"] == 1


HTML_DEFINITION = {
    "match_url": ["*/pages/shows*"],
    "request": {"method": "GET"},
    "response": {"type": "html"},
    "parse": {"items": {"type": "css", "expression": "article.video", "fields": {
        "url": {"type": "css", "expression": "a.watch::attr(href)"},
        "title": {"type": "xpath", "expression": "string(.//h2)"},
        "published": {"type": "css", "expression": "time::attr(datetime)"},
        "description": {"type": "regex", "expression": "<p>(.*?)</p>"}}}},
}


def _page(origin: MediaOrigin, names: list[str]) -> bytes:
    articles = "".join(
        f'<article class="video"><h2>{name}</h2><p>about {name}</p>'
        f'<time datetime="2024-05-0{n + 1}T10:00:00+00:00"></time>'
        f'<a class="watch" href="/watch/{name.partition("-")[0]}.html?title={name}">go</a>'
        f"</article>" for n, name in enumerate(names))
    return f"<html><body>{articles}<article>no link</article></body></html>".encode()


def test_definition_parses_a_page(server: Server, origin: MediaOrigin) -> None:
    created = server.post("/api/tasks/definitions", {"name": "shows", "description": "html",
                                                     "definition": HTML_DEFINITION})
    assert created.status_code == 201, created.text
    origin.feeds.pages["shows"] = (_page(origin, ["clip-d1", "clip2-d2"]), "text/html")
    preview = server.post("/api/tasks/inspect", {"url": f"{origin.base_url}/pages/shows"})
    assert preview.status_code == 200, preview.text
    assert preview.json()["handler"] == "DefinitionHandler"
    assert [i["title"] for i in preview.json()["items"]] == ["clip-d1", "clip2-d2"]
    task = create(server, url=f"{origin.base_url}/pages/shows")
    assert run(server, task["id"])["queued"] == 2
    origin.feeds.pages["shows"] = (_page(origin, ["short-d3", "clip-d1", "clip2-d2"]),
                                   "text/html")
    assert run(server, task["id"])["queued"] == 1
    listed = server.get("/api/tasks/definitions").json()["items"]
    assert "definition" not in listed[0]
    full = server.get("/api/tasks/definitions", params={"include": "definition"}).json()
    assert full["items"][0]["definition"]["match_url"] == ["*/pages/shows*"]


def test_channel_metadata_for_media_servers(server: Server, origin: MediaOrigin) -> None:
    picture = b"\xff\xd8\xff\xe0 not really a jpeg"
    origin.feeds.pages["poster.jpg"] = (picture, "image/jpeg")
    page = (f'<html><head><title>../../Evil / Channel</title>'
            f'<meta property="og:image" content="{origin.base_url}/pages/poster.jpg">'
            f'</head><body><video><source src="{origin.clip_url}" type="video/mp4"></video>'
            f'<video><source src="{origin.clip2_url}" type="video/mp4"></video></body></html>')
    origin.feeds.pages["channel"] = (page.encode(), "text/html")
    task = create(server, url=f"{origin.base_url}/pages/channel", folder="tv/Evil")
    answer = server.post(f"/api/tasks/{task['id']}/metadata")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    home = server.download_path / "tv" / "Evil"
    assert body["nfo_file"] == "tv/Evil/tvshow.nfo"
    # The origin is on loopback: its pictures are refused unless YTP_FETCH_PRIVATE_ADDRESSES
    # (test_tasks_hostile shows them written when it is on).
    assert body["thumbnails"] == {} and not (home / "poster.jpg").exists()
    assert "is not allowed" in body["thumbnails_refused"]["poster"]
    nfo = (home / "tvshow.nfo").read_text()
    assert "<tvshow>" in nfo and "Evil / Channel" in nfo
    info_file = server.download_path / body["json_file"]
    assert info_file.parent == home and info_file.name.endswith("[channel].info.json")
    assert not (server.download_path.parent / "etc").exists()
    broken = create(server, url=origin.fail_url)
    failed = server.post(f"/api/tasks/{broken['id']}/metadata")
    assert failed.status_code == 400 and failed.json()["error"]
