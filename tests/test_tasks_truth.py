"""What a task's run says and does is what happened, whatever the feed, the site or a person
did meanwhile: a date past any calendar costs its entry's date, not the feed; retention says
which files it removed, left or did not find; a task deleted while it runs queues nothing;
the channel's metadata never makes a folder outside the download folder, nor fails on a year
made of other digits. Real feeds from the local origin, the real runtime in process."""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from support.aged_tasks import aged_task
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import execution_log, run_now

from appliance.engine.plans import DEFAULT_ARCHIVE
from appliance.errors import AppError
from appliance.runtime import Runtime
from appliance.store.records import Item, new_id
from appliance.tasks import feeds, service
from appliance.tasks.metadata import write_metadata
from appliance.tasks.runner import batch_id

Client = falcon.testing.TestClient
# An RFC 822 date whose year no datetime holds (OverflowError, not ValueError).
PAST_ANY_CALENDAR = "Mon, 01 Jan 99999999999 00:00:00 +0000"


# --- dates past any calendar ----------------------------------------------------------------


def _rss(origin: MediaOrigin, dates: list[str]) -> bytes:
    items = "".join(f"<item><title>e{n}</title><link>{origin.watch_url(name)}</link>"
                    f"<pubDate>{when}</pubDate></item>"
                    for n, (name, when) in enumerate(zip(("clip", "clip2"), dates,
                                                         strict=True)))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Dates</title>{items}'
            "</channel></rss>").encode()


def test_a_date_past_any_calendar_costs_its_entry_the_date_not_the_feed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """One entry's pubDate of year 99999999999 raised OverflowError out of the parser: the
    whole feed failed, its other entries never queued, every run."""
    good = "Tue, 02 Jan 2024 00:00:00 +0000"
    feed = feeds.read_feed(_rss(origin, [PAST_ANY_CALENDAR, good]))
    assert [i.published for i in feed.items] == [None, 1704153600.0]
    atom = (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><title>x'
            b'</title><link href="https://site.invalid/x"/><published>' +
            PAST_ANY_CALENDAR.encode() + b"</published></entry></feed>")
    assert [(i.link, i.published) for i in feeds.read_feed(atom).items] == [
        ("https://site.invalid/x", None)]

    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.junk("dates", _rss(origin, [PAST_ANY_CALENDAR, good]))
    made = client.simulate_post("/api/tasks", json={
        "name": "dates", "url": f"{origin.base_url}/feeds/dates.rss", "auto_start": False})
    assert made.status_code == 200, made.text
    run = run_now(runtime, made.json)
    assert (run["status"], run["found"], run["queued"]) == ("success", 2, 2), run
    # A date that is none is no reason to skip the entry: published_after keeps it.
    dated = client.simulate_patch(f"/api/tasks/{made.json['id']}",
                                  json={"published_after": "2023-01-01"})
    assert dated.status_code == 200, dated.text


# --- retention tells what it did ------------------------------------------------------------


def test_retention_says_which_files_it_left_and_which_it_did_not_find(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The engine leaves a file that is no longer the one the download wrote, and cannot
    remove one moved away; the run said "retention removed 1 file(s)" all the same."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "edited")
    edited = Path(old.download_folder) / old.filename
    with edited.open("ab") as handle:  # a person's edit: no longer the download's file
        handle.write(b"tagged by hand")
    run = run_now(runtime, task)
    assert run["status"] == "success"
    assert edited.is_file()
    lines = execution_log(runtime, run)
    assert any(" WARNING retention left 1 file(s) as they are" in line for line in lines), lines
    # Said where the person looks too, not only in the log (the run is still a success).
    assert run["error"].startswith("retention left 1 file(s) as they are: "), run
    assert runtime.tasks.get(task["id"])["last_error"] == run["error"]
    assert any(line.endswith(" INFO retention removed 0 file(s)") for line in lines), lines
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]

    task2, (gone, _) = aged_task(runtime, client, origin, "moved")
    moved = Path(gone.download_folder) / gone.filename
    os.rename(moved, runtime.settings.download_path / "moved-away.mp4")
    lines = execution_log(runtime, run_now(runtime, task2))
    assert any(" INFO retention found 1 file(s) no longer there" in line for line in lines), lines
    assert any(line.endswith(" INFO retention removed 0 file(s)") for line in lines), lines
    assert not any("retention left" in line for line in lines), lines
    assert (runtime.settings.download_path / "moved-away.mp4").is_file()


def test_retention_counts_what_it_removed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, _) = aged_task(runtime, client, origin, "plain")
    lines = execution_log(runtime, run_now(runtime, task))
    assert not (Path(old.download_folder) / old.filename).exists()
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not any("retention left" in line or "no longer there" in line for line in lines)


def test_retention_applies_when_the_feed_is_gone_and_with_the_handler_off(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Retention ran only after a listing that worked: a channel gone for good (its feed a
    404 at every run) kept every file past the task's rule for ever, and a task whose
    handler is off (the URL itself queued at each run) never had its rule applied."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "vanished")
    origin.feeds.fail("vanished", 404)
    run = run_now(runtime, task)
    assert run["status"] == "failed", run
    assert run["error"].endswith("(HTTP 404 Not Found): the link is wrong, or what it led to "
                                 "was removed or made private. Check the link in a browser."), run
    assert (run["found"], run["failed"]) == (0, 1), run  # the listing is the one failure
    assert any(line.endswith(f" ERROR {run['error']}") for line in execution_log(runtime, run))
    assert any(line.endswith(" INFO retention removed 1 file(s)")
               for line in execution_log(runtime, run))
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]
    assert not (Path(old.download_folder) / old.filename).exists()

    off, (old, recent) = aged_task(runtime, client, origin, "off")
    changed = client.simulate_patch(f"/api/tasks/{off['id']}", json={
        "handler_enabled": False, "auto_start": False})
    assert changed.status_code == 200, changed.text
    run = run_now(runtime, changed.json)
    assert (run["status"], run["handler"], run["queued"]) == ("success", "none", 1), run
    assert any(line.endswith(" INFO retention removed 1 file(s)")
               for line in execution_log(runtime, run))
    assert not (Path(old.download_folder) / old.filename).exists()
    assert (Path(recent.download_folder) / recent.filename).is_file()


def test_retention_waits_while_the_download_folders_disk_is_gone(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Its files out of sight (a USB disk unplugged), retention deleted the items and left
    the files, which stayed on the disk for good once it was back, out of its reach."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "unplugged")
    downloads = runtime.settings.download_path
    away = downloads.with_name("unplugged-disk")
    os.rename(downloads, away)
    try:
        runtime.engine.folder_disk.check()
        assert runtime.engine.folder_disk.problem is not None
        waited = run_now(runtime, task)
        lines = execution_log(runtime, waited)
        assert any(" WARNING retention waits for the download folder: " in line
                   for line in lines), lines
        assert waited["error"].startswith("retention waits for the download folder: ")
        assert len(runtime.tasks.items(task["id"], 0, 10)[0]) == 2
    finally:
        os.rename(away, downloads)
    runtime.engine.folder_disk.check()
    assert runtime.engine.folder_disk.problem is None
    done = run_now(runtime, task)
    lines = execution_log(runtime, done)
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]
    assert not (Path(old.download_folder) / old.filename).exists()
    assert (done["error"], runtime.tasks.get(task["id"])["last_error"]) == ("", "")


# --- a task deleted while it runs -----------------------------------------------------------


def deleted_while_read(client: Client, origin: MediaOrigin, feed: str, task_id: int,
                       action: Callable[[], Any]) -> Any:
    """What ``action()`` ends with, its task deleted while it read ``feed`` (held till then)."""
    gate = origin.feeds.hold(feed)
    ended: list[Any] = []
    thread = threading.Thread(target=lambda: ended.append(action()))
    thread.start()
    try:
        # read in a download process: under a load of 23 (four mutation runs on two cores)
        # one took longer than wait_for's 30 s to start
        wait_for(lambda: origin.feeds.waiting.get(feed), timeout=120,
                 message=f"{feed} to be read")
        assert client.simulate_delete(f"/api/tasks/{task_id}").status_code == 200
    finally:
        gate.set()
        thread.join(60)
    assert ended, "it did not end"
    return ended[0]


def test_a_task_deleted_while_it_runs_queues_nothing(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The run was reading its feed when the person deleted the subscription: it queued the
    feed's entries anyway, downloads of a task that was no more; and a chat message said
    the deleted task had failed."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("deleted", [FeedEntry("a", origin.clip_url, "a"),
                                 FeedEntry("b", origin.clip2_url, "b")])
    made = client.simulate_post("/api/tasks", json={
        "name": "deleted", "url": f"{origin.base_url}/feeds/deleted.rss",
        "auto_start": False})
    assert made.status_code == 200, made.text
    task = made.json
    messages: list[Any] = []
    runtime.bus.subscribe(lambda e: messages.append(e.data) if e.name.startswith("log_") else None)
    run = deleted_while_read(client, origin, "deleted", task["id"], lambda: run_now(runtime, task))
    assert (run["status"], run["queued"]) == ("failed", 0), run
    assert run["error"] == "the task was deleted while it ran: nothing was queued."
    assert runtime.engine.store.history(50) == [] and runtime.engine.queue_items() == []
    stored = client.simulate_get(f"/api/executions/{run['id']}").json
    assert (stored["status"], stored["error"]) == ("failed", run["error"])
    assert [m for m in messages if "deleted" in str(m)] == []
    # The next task takes the runner's word afresh: nothing of the deletion is left over.
    again = client.simulate_post("/api/tasks", json={
        "name": "again", "url": f"{origin.base_url}/feeds/deleted.rss", "auto_start": False})
    assert run_now(runtime, again.json)["queued"] == 2


def test_a_task_deleted_while_its_entries_are_marked_gets_no_marks(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Its marks were written after the deletion had removed the task's: rows of no task,
    which a new task given the same id (SQLite reuses it) took for its own."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    origin.feeds.set("unmarked", [FeedEntry("a", origin.watch_url("clip"), "a")])
    task = client.simulate_post("/api/tasks", json={
        "name": "unmarked", "url": f"{origin.base_url}/feeds/unmarked.rss"}).json
    answer = deleted_while_read(client, origin, "unmarked", task["id"], lambda: (
        client.simulate_post(f"/api/tasks/{task['id']}/mark")))
    assert (answer.status_code, answer.json["error"]) == (
        404, "Task not found: it was deleted while its entries were listed; nothing was "
             "marked."), answer.text
    assert runtime.tasks.store.marked(task["id"]) == set()
    assert _archive(runtime) == set()


def test_deleting_a_task_that_does_not_run_leaves_its_next_run_alone(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("idle", [FeedEntry("a", origin.clip_url, "a")])
    made = client.simulate_post("/api/tasks", json={
        "name": "idle", "url": f"{origin.base_url}/feeds/idle.rss", "auto_start": False})
    task = made.json
    assert client.simulate_delete(f"/api/tasks/{task['id']}").status_code == 200
    assert client.simulate_delete(f"/api/tasks/{task['id']}").status_code == 404
    # SQLite may give the id to the next task: a deletion noted for the old one would stop it.
    reused = client.simulate_post("/api/tasks", json={
        "name": "idle", "url": f"{origin.base_url}/feeds/idle.rss", "auto_start": False}).json
    assert run_now(runtime, reused)["queued"] == 1


def test_a_run_that_begins_as_its_task_is_deleted_queues_nothing(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A run (``/execute``, the scheduler) reads the task, then begins: the task deleted in
    between was run all the same, its feed queued for no task, an execution of no task
    recorded. The deletion and the start of a run are one after the other now."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("stale", [FeedEntry("a", origin.clip_url, "a")])
    task = client.simulate_post("/api/tasks", json={
        "name": "stale", "url": f"{origin.base_url}/feeds/stale.rss", "auto_start": False}).json
    read = runtime.tasks.store.get(task["id"])
    assert read is not None
    assert client.simulate_delete(f"/api/tasks/{task['id']}").status_code == 200
    before = origin.feeds.hits.get("stale", 0)
    with pytest.raises(AppError, match=r"^Task not found: it was deleted\.$") as refused:
        runtime.tasks.runner.execute(read, "manual")
    assert refused.value.status == 404
    assert origin.feeds.hits.get("stale", 0) == before
    assert runtime.engine.queue_items() == []
    assert client.simulate_get("/api/executions").json["items"] == []
    assert not runtime.tasks.runner.running(task["id"])


# --- a task's items, years of them ---------------------------------------------------------


def test_a_tasks_items_are_paged_from_the_store_newest_first(
        app_with: Callable[..., tuple[Runtime, Client]]) -> None:
    """A page read the task's whole batch (2 s a page at 20,000 items): the store pages it
    now, newest first as before, with the total."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    task = client.simulate_post("/api/tasks", json={
        "name": "years", "url": "http://127.0.0.1:9/feeds/years.rss"}).json
    store = runtime.engine.store
    made = []
    for n in range(30):
        stamp = store.stamp()
        made.append(Item(id=new_id(), url=f"https://media.invalid/{n}", kind="done",
                         status="finished", batch_id=batch_id(task), batch_name="years",
                         created_at=stamp, updated_at=stamp))
    store.insert(made)
    page = client.simulate_get(f"/api/tasks/{task['id']}/items",
                               params={"per_page": 7, "page": 3})
    assert page.status_code == 200, page.text
    assert page.json["pagination"]["total"] == 30
    assert [i["url"] for i in page.json["items"]] == [
        f"https://media.invalid/{n}" for n in range(15, 8, -1)]
    assert [i.url for i in store.batch(batch_id(task))] == [i.url for i in made]


# --- marks: all or nothing, and said as they are -----------------------------------------


def _archive(runtime: Runtime) -> set[str]:
    archive = runtime.settings.config_path / DEFAULT_ARCHIVE
    return set(archive.read_text().splitlines()) if archive.exists() else set()


def test_an_array_refused_for_one_listing_marks_nothing(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The first task's entries went into the archive (which every download of the preset
    reads) before the second's listing failed the request: no task was made, and those
    entries were never downloaded by anyone afterwards."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    origin.feeds.set("first", [FeedEntry("a", origin.watch_url("clip"), "a")])
    refused = client.simulate_post("/api/tasks", json=[
        {"name": "first", "url": f"{origin.base_url}/feeds/first.rss", "mark": True},
        {"url": f"{origin.base_url}/feeds/missing.rss"}])
    assert refused.status_code == 400, refused.text
    assert refused.json["error"].startswith("Could not list the task's entries: ")
    assert _archive(runtime) == set()
    assert client.simulate_get("/api/tasks").json["pagination"]["total"] == 0
    made = client.simulate_post("/api/tasks", json={
        "name": "first", "url": f"{origin.base_url}/feeds/first.rss", "auto_start": False})
    assert run_now(runtime, made.json)["queued"] == 1


def test_unmarking_a_task_whose_feed_is_gone_says_the_archive_was_left(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    origin.feeds.set("gone", [FeedEntry("a", origin.watch_url("clip"), "a"),
                              FeedEntry("b", origin.watch_url("clip2"), "b")])
    task = client.simulate_post("/api/tasks", json={
        "name": "gone", "url": f"{origin.base_url}/feeds/gone.rss", "mark": True}).json
    archived = _archive(runtime)
    assert len(archived) == 2
    origin.feeds.fail("gone", 404)
    unmark = client.simulate_delete(f"/api/tasks/{task['id']}/mark")
    assert unmark.status_code == 200, unmark.text
    # it said "Removed 4 entries of task 'gone' from the archive.": two marks an entry,
    # and none of them out of the archive
    assert unmark.json["message"] == (
        "Forgot the marks of task 'gone', but its entries could not be listed "
        f"(could not read {origin.base_url}/feeds/gone.rss: The site has nothing at this "
        "address (HTTP 404 Not Found): the link is wrong, or what it led to was removed or "
        "made private. Check the link in a browser.): the archive was left as it is.")
    assert _archive(runtime) == archived
    assert runtime.tasks.store.marked(task["id"]) == set()


# --- channel metadata -----------------------------------------------------------------------


def _no_pictures(url: str) -> bytes:
    raise AssertionError(f"no picture is fetched here: {url}")


def test_metadata_never_makes_a_folder_outside_through_a_link(tmp_path: Path) -> None:
    """The folder was made first and checked after: a symlink in the task's folder (``link
    -> /somewhere``) had ``/somewhere/new/deeper`` made before the refusal."""
    downloads, outside = tmp_path / "downloads", tmp_path / "outside"
    downloads.mkdir()
    outside.mkdir()
    (downloads / "link").symlink_to(outside)
    with pytest.raises(AppError, match="leads outside the download folder") as refused:
        write_metadata(downloads, downloads / "link" / "new" / "deeper",
                       {"id": "c1", "title": "Channel"}, _no_pictures)
    assert (refused.value.status, refused.value.message) == (
        400, "The task's folder leads outside the download folder.")
    assert list(outside.iterdir()) == []
    # Inside, through a link that stays inside, it is made and written.
    (downloads / "shows").mkdir()
    (downloads / "inner").symlink_to(downloads / "shows")
    answer = write_metadata(downloads, downloads / "inner" / "Channel",
                            {"id": "c1", "title": "Channel"}, _no_pictures)
    assert answer["nfo_file"] == "shows/Channel/tvshow.nfo"
    assert (downloads / "shows" / "Channel" / "tvshow.nfo").is_file()


@pytest.mark.parametrize("field", ["upload_date", "release_date", "release_year"])
def test_a_year_of_digits_no_number_is_made_of_is_no_year(tmp_path: Path, field: str) -> None:
    """"²⁰²⁴" is digits to str.isdigit() and no number to int(): the metadata answered 500."""
    answer = write_metadata(tmp_path, tmp_path / "show",
                            {"id": "c1", "title": "Show", field: "²⁰²⁴0102"}, _no_pictures)
    assert answer["year"] is None
    assert "<year>" not in (tmp_path / answer["nfo_file"]).read_text()
    plain = write_metadata(tmp_path, tmp_path / "show",
                           {"id": "c1", "title": "Show", field: "20240102"}, _no_pictures)
    assert plain["year"] == 2024


@pytest.mark.parametrize(("tags", "kept"), [
    (5, []), ("tag", []), ({"a": 1}, []), (None, []),
    (["music", 2024, None, {"a": 1}, "", "live"], ["music", "2024", "live"])])
def test_tags_that_are_no_list_of_words_are_none(tmp_path: Path, tags: Any,
                                                 kept: list[str]) -> None:
    """A number where the site's tags go raised TypeError (a 500), a word was spelled out
    letter by letter, a dict gave its keys."""
    answer = write_metadata(tmp_path, tmp_path / "show",
                            {"id": "c1", "title": "Show", "tags": tags}, _no_pictures)
    assert answer["tags"] == kept
    nfo = (tmp_path / answer["nfo_file"]).read_text()
    assert [line.strip() for line in nfo.splitlines() if "<tag>" in line] == [
        f"<tag>{tag}</tag>" for tag in kept]


def test_an_array_reads_each_feed_once_for_its_name_and_its_marks(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Each feed was read twice, one after the other (for the task's name, then for its
    marks): a hundred feeds of a remote site held the request minutes. Now once, and the
    tasks are named and marked as before; a title no name may be names no task."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    feeds = [f"once{n}" for n in range(6)]
    for n, feed in enumerate(feeds):
        origin.feeds.set(feed, [FeedEntry(f"{feed}-{clip}", origin.watch_url(clip) + f"?n={n}",
                                          f"{feed} {clip}")
                                for clip in ("clip", "clip2", "short")])
    origin.feeds.junk(feeds[2], (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>AC/DC</title><item>'
        f'<title>x</title><link>{html.escape(origin.watch_url("clip"))}?n=x</link>'
        "<guid>x</guid></item></channel></rss>").encode())
    before = {feed: origin.feeds.hits.get(feed, 0) for feed in feeds}
    made = client.simulate_post("/api/tasks", json=[
        {"name": "first", "url": f"{origin.base_url}/feeds/{feeds[0]}.rss", "mark": True},
        *({"url": f"{origin.base_url}/feeds/{feed}.rss"} for feed in feeds[1:-1]),
        {"url": f"{origin.base_url}/feeds/{feeds[-1]}.rss", "mark": False}])
    assert made.status_code == 200, made.text
    assert [t["name"] for t in made.json] == [
        "first", "Feed once1", "task-3", "Feed once3", "Feed once4", "Feed once5"]
    assert {feed: origin.feeds.hits[feed] - before[feed] for feed in feeds} == \
        dict.fromkeys(feeds, 1)
    marked = [len(runtime.tasks.store.marked(t["id"])) for t in made.json]
    assert marked == [6, 6, 2, 6, 6, 0]  # an entry's URL and its archive id
    assert len(_archive(runtime)) == 3  # the three videos' ids
    assert [run_now(runtime, t)["queued"] for t in made.json[:-1]] == [0, 0, 0, 0, 0]


def test_the_names_of_an_array_are_read_within_one_bound_for_all(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each feed read for a name had its own time limit and none was set for all: 500 feeds
    of a site that answers slowly held the request 20 minutes (a client that gave up and
    asked again made every task twice). Past the bound for all, a task is ``task-{n}``
    without its feed being read; the tasks are made all the same."""
    monkeypatch.setattr(service, "NAME_TIMEOUT", 1.0)
    monkeypatch.setattr(service, "LISTINGS_TIMEOUT", 2.0)
    _, client = app_with(YTP_TASKS_SPREAD="0")  # two feeds read at once
    silent = [f"silent{n}" for n in range(10)]
    gates = [origin.feeds.hold(feed) for feed in silent]
    try:
        made = client.simulate_post("/api/tasks", json=[
            {"name": "first", "url": f"{origin.base_url}/feeds/first.rss"},
            *({"url": f"{origin.base_url}/feeds/{feed}.rss"} for feed in silent)])
    finally:
        for gate in gates:
            gate.set()
    assert made.status_code == 200, made.text
    assert [t["name"] for t in made.json] == ["first", *(f"task-{n}" for n in range(2, 12))]
    read = [feed for feed in silent if origin.feeds.hits.get(feed)]
    assert 0 < len(read) < len(silent), read


# --- names and metadata ---------------------------------------------------------------------


def test_a_name_made_unique_is_still_a_name_the_task_may_keep(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Two feeds of the same long title: the second task's name, made unique, was 104
    characters, and sending the task back as it was read (an edit) was refused."""
    _, client = app_with(YTP_TASKS_SPREAD="0")
    title = "Network Podcast " + "L" * 120
    for name in ("one.rss", "two.rss", "three.rss"):
        origin.feeds.pages[name] = (f"<rss><channel><title>{title}</title><item><title>a"
                                    f"</title><link>{origin.clip_url}</link></item></channel>"
                                    f"</rss>".encode(), "application/rss+xml")
    created = client.simulate_post("/api/tasks", json=[
        {"name": "first", "url": "http://127.0.0.1:9/x.rss"},
        *({"url": f"{origin.base_url}/pages/{name}"}
          for name in ("one.rss", "two.rss", "three.rss"))])
    assert created.status_code == 200, created.text
    names = [t["name"] for t in created.json[1:]]
    assert names == [title[:100], title[:96] + " (2)", title[:96] + " (3)"]
    for task in created.json[1:]:
        again = client.simulate_put(f"/api/tasks/{task['id']}", json=task)
        assert again.status_code == 200, again.text
        assert again.json["name"] == task["name"]


def test_the_tasks_preset_applies_to_its_metadata(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The channel is read for its metadata with the task's preset too (its cookies, its
    proxy), as its listing is."""
    _, client = app_with(YTP_TASKS_SPREAD="0")
    made = client.simulate_post("/api/presets", json={"name": "dead-proxy",
                                                      "cli": "--proxy http://127.0.0.1:9"})
    assert made.status_code in (200, 201), made.text
    proxied = client.simulate_post("/api/tasks", json={
        "name": "proxied", "url": origin.watch_url("clip"), "preset": "dead-proxy"}).json
    refused = client.simulate_post(f"/api/tasks/{proxied['id']}/metadata")
    assert refused.status_code >= 400 and refused.json["error"], refused.text
    direct = client.simulate_post("/api/tasks", json={
        "name": "direct", "url": origin.watch_url("clip"), "folder": "direct"}).json
    written = client.simulate_post(f"/api/tasks/{direct['id']}/metadata")
    assert written.status_code == 200, written.text
    assert written.json["nfo_file"] == "direct/tvshow.nfo"
