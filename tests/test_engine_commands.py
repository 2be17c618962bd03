"""The engine's commands on waiting, running and finished items, on one real runtime: edits,
start after pause, delete of a running item, and what a playlist's entries inherit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import events
from appliance.engine import downloading
from appliance.engine.plans import DEFAULT_ARCHIVE
from appliance.engine.workers import Worker
from appliance.errors import AppError
from appliance.runtime import Runtime
from appliance.store import Item


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    yield from runtime_of_module(tmp_path_factory, "commands")


def _waiting(rt: Runtime, url: str, **fields: str) -> Item:
    """An item with its info, held (auto_start false), stored: the engine's memory has the
    info a moment before its store does."""
    [added] = rt.engine.add([{"url": url, "auto_start": False, **fields}])
    return wait_for(lambda: (i := rt.engine.get(added.id)) and i.extractor
                    and rt.store.get(added.id).extractor and i, timeout=60, message="its info")


def _running(rt: Runtime, origin: MediaOrigin) -> Item:
    [added] = rt.engine.add([{"url": origin.stall_url()}])
    wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
             and r.item.status == "downloading", timeout=60, message="the download to run")
    return added


def _conflict(call) -> AppError:
    with pytest.raises(AppError) as caught:
        call()
    assert caught.value.code == "CONFLICT"
    return caught.value


def test_editing_a_waiting_item(rt: Runtime, origin: MediaOrigin) -> None:
    item = _waiting(rt, origin.clip_url)
    assert item.msg == "" and rt.store.get(item.id).msg == ""  # its info is read
    seen: list[dict] = []
    stop = rt.bus.subscribe(lambda e: e.name == events.ITEM_UPDATED
                            and e.data.get("id") == item.id and seen.append(e.data))
    try:
        edited, changed = rt.engine.update_item(item.id, {"title": "mine", "cli": "-f  best",
                                                          "folder": "sub"})
        assert changed and (edited.title, edited.cli, edited.folder) == ("mine", "-f best", "sub")
        stored = rt.store.get(item.id)
        assert (stored.title, stored.cli, stored.folder) == ("mine", "-f best", "sub")
        assert seen and seen[-1]["title"] == "mine"
        announced = len(seen)
        again, changed = rt.engine.update_item(item.id, {"title": "mine"})
        assert not changed and again.title == "mine" and len(seen) == announced
        with pytest.raises(AppError, match="must be a path inside"):
            rt.engine.update_item(item.id, {"folder": "../out"})
        # fields no edit may change, and values of the wrong type, are refused as invalid
        for changes, text in (({"status": "finished", "title": "x"},
                               "These fields cannot be changed: status. These can: title, extras "
                               "(any item); preset, folder, template, cli, cookies (an item "
                               "that waits)."),
                              ({"title": 5}, "title must be a string."),
                              ({"extras": []}, "extras must be an object.")):
            with pytest.raises(AppError) as refused:
                rt.engine.update_item(item.id, changes)
            assert (refused.value.code, refused.value.message) == ("INVALID_REQUEST", text)
        assert rt.store.get(item.id).title == "mine"
    finally:
        stop()
        rt.engine.delete_items([item.id])


def test_editing_a_finished_item_and_its_waiting_fields(
        rt: Runtime, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    told: list[events.Event] = []
    unsubscribe = rt.bus.subscribe(lambda e: told.append(e) if e.name == events.LOG_ERROR
                                   else None)
    try:
        [added] = rt.engine.add([{"url": origin.fail_url}])
        wait_for(lambda: (i := rt.store.get(added.id)) and i.kind == "done", timeout=60,
                 message="the item to fail")
        wait_for(lambda: any(e.data.get("id") == added.id for e in told), timeout=10,
                 message="the failure told to clients")
    finally:
        unsubscribe()
    failed = rt.store.get(added.id)
    assert (failed.status, failed.msg) == ("error", "") and "404" in failed.error
    # The person is told plainly: which download, and why (the reason yt-dlp gave).
    [message] = [e.data for e in told if e.data.get("id") == added.id]
    assert message["title"] == "Download failed"
    assert message["message"] == f"{failed.title or failed.url}: {failed.error}"
    assert any(r.levelname == "WARNING" and added.id in r.getMessage()
               and failed.error in r.getMessage() for r in caplog.records)
    edited, changed = rt.engine.update_item(added.id, {"title": "kept"})
    assert changed and edited.title == "kept" and rt.store.get(added.id).title == "kept"
    assert rt.engine.update_item(added.id, {"title": "kept"})[1] is False
    error = _conflict(lambda: rt.engine.update_item(added.id, {"cli": "-f best"}))
    assert error.message == "cli can only change while the item waits in the queue."
    with pytest.raises(AppError) as missing:
        rt.engine.update_item("no-such-item", {"title": "x"})
    assert missing.value.code == "NOT_FOUND"


def test_a_running_item_is_edited_by_its_run_and_restarts_after_a_pause(
        rt: Runtime, origin: MediaOrigin) -> None:
    added = _running(rt, origin)
    error = _conflict(lambda: rt.engine.update_item(added.id, {"template": "x.%(ext)s"}))
    assert "template can only change" in error.message
    edited, changed = rt.engine.update_item(added.id, {"title": "while it runs"})
    assert changed and edited.title == "while it runs"
    assert rt.engine.update_item(added.id, {"title": "while it runs"})[1] is False
    wait_for(lambda: rt.store.get(added.id).title == "while it runs", timeout=10,
             message="the run to apply the edit")
    run = rt.engine._runs[added.id]
    rt.engine.pause_items([added.id])
    assert rt.engine.start_items([added.id]) == {added.id: "started"}  # before it stopped
    run.thread.join(timeout=30)
    again = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r is not run
                     and r.worker and r, timeout=60, message="the item to start again")
    stored = rt.store.get(added.id)
    assert stored.auto_start is True and stored.msg != "Paused"
    rt.engine.delete_items([added.id])
    again.thread.join(timeout=30)
    assert rt.store.get(added.id) is None
    assert added.id not in {i.id for i in rt.engine.queue_items()}


def test_start_clears_only_a_pause_message(rt: Runtime, origin: MediaOrigin) -> None:
    paused = _waiting(rt, origin.clip2_url)
    rt.engine.pause_items([paused.id])
    assert rt.store.get(paused.id).msg == "Paused"
    held = _waiting(rt, origin.short_url)
    with rt.engine._lock:  # a held item that says something else
        rt.engine._items[held.id].msg = "Look at me"
    rt.engine.set_paused(True)  # the queue holds: they stay waiting while we look
    try:
        rt.engine.start_items([held.id, paused.id])
        assert (rt.store.get(held.id).msg, rt.store.get(held.id).auto_start) == (
            "Look at me", True)
        assert (rt.store.get(paused.id).msg, rt.store.get(paused.id).auto_start) == ("", True)
    finally:
        rt.engine.set_paused(False)
    for item_id in (held.id, paused.id):
        wait_for(lambda i=item_id: rt.store.get(i).kind == "done", timeout=90,
                 message="the started items to finish")


def test_deleting_a_running_item_removes_it_everywhere(rt: Runtime,
                                                      origin: MediaOrigin) -> None:
    added = _running(rt, origin)
    deleted: list[str] = []
    stop = rt.bus.subscribe(lambda e: e.name == events.ITEM_DELETED
                            and deleted.append(e.data["id"]))
    try:
        run = rt.engine._runs[added.id]
        assert rt.engine.delete_items([added.id]) == {added.id: "deleted"}
        run.thread.join(timeout=30)
        assert rt.store.get(added.id) is None
        assert rt.engine.get(added.id) is None and added.id not in rt.engine._runs
        assert deleted == [added.id]
        assert not (rt.settings.temp_path / added.id).exists()
    finally:
        stop()


def test_playlist_entries_carry_the_batch_and_their_ids(rt: Runtime,
                                                        origin: MediaOrigin) -> None:
    announced: list[dict] = []
    deleted: list[dict] = []
    stop = rt.bus.subscribe(lambda e: e.name == events.ITEM_ADDED and announced.append(e.data))
    stop_deleted = rt.bus.subscribe(
        lambda e: e.name == events.ITEM_DELETED and deleted.append(e.data))
    try:
        [parent] = rt.engine.add([{"url": origin.playlist_url, "auto_start": False}])
        children = wait_for(
            lambda: [i for i in rt.engine.queue_items() if i.batch_id == parent.id],
            timeout=60, message="the playlist's entries")
    finally:
        stop()
        stop_deleted()
    assert rt.store.get(parent.id) is None  # the placeholder is replaced
    assert {"id": parent.id, "_id": parent.id} in deleted  # and clients are told
    # each entry later than the playlist and than the one before it: listed in its order
    stamps = [parent.created_at, *(c.created_at for c in sorted(
        children, key=lambda c: c.info["playlist_index"]))]
    assert stamps == sorted(set(stamps))
    # every entry is announced to clients as an item of its own
    assert {(d["id"], d["url"]) for d in announced if d.get("batch_id") == parent.id} == \
        {(c.id, c.url) for c in children}
    assert len(children) == len(origin.playlist_entry_urls)
    assert {c.url for c in children} == set(origin.playlist_entry_urls)
    for child in children:
        assert child.batch_name and child.batch_name != origin.playlist_url
        assert child.video_id and child.info["playlist_index"] >= 1
        assert child.info["playlist"] == child.batch_name  # the playlist's title
    rt.engine.delete_items([c.id for c in children])


def test_a_cancel_as_the_download_starts_ends_it_cancelled(rt: Runtime,
                                                           origin: MediaOrigin) -> None:
    item = _waiting(rt, origin.clip2_url, template="cancelled-at-start.%(ext)s")
    answers: list[dict[str, str]] = []

    def cancel_when_preparing(event: events.Event) -> None:
        # announced by the dispatcher before the run's thread asks the pool for a process
        if (event.name == events.ITEM_UPDATED and event.data.get("id") == item.id
                and event.data["status"] == "preparing" and not answers):
            answers.append(rt.engine.cancel_items([item.id]))

    stop = rt.bus.subscribe(cancel_when_preparing)
    try:
        rt.engine.start_items([item.id])
        ended = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                         timeout=30, message="the cancelled item to end")
    finally:
        stop()
    assert answers == [{item.id: "ok"}]
    assert (ended.status, ended.msg) == ("cancelled", "Cancelled")
    assert item.id not in {i.id for i in rt.engine.queue_items()}
    assert not list(rt.settings.download_path.rglob("cancelled-at-start*"))


def test_a_condition_reads_each_playlist_entry_before_it_applies(rt: Runtime,
                                                                 origin: MediaOrigin) -> None:
    condition = rt.engine.conditions.create(
        {"name": "clip2 as audio", "filter": "title *= clip2", "extras": {"preset": "audio-m4a"}})
    announced: list[dict] = []
    stop = rt.bus.subscribe(lambda e: e.name == events.ITEM_ADDED and announced.append(e.data))
    try:
        [parent] = rt.engine.add([{"url": origin.playlist_url, "auto_start": False}])
        children = wait_for(
            lambda: len(c := [i for i in rt.engine.queue_items() if i.batch_id == parent.id])
            == len(origin.playlist_entry_urls) and all(i.extractor for i in c) and c,
            timeout=60, message="the entries' info")
    finally:
        stop()
        rt.engine.conditions.delete(condition["id"])
    try:
        entries = [d for d in announced if d.get("batch_id") == parent.id]
        # the site of an entry is not known until its own info is read (the condition needs it)
        assert len(entries) == len(children) and all(d["extractor"] == "" for d in entries)
        by_url = {c.url: c for c in children}
        matched = by_url[origin.clip2_url]
        assert (matched.preset, matched.msg) == ("audio-m4a", "Condition 'clip2 as audio' applied.")
        # stored just after the item in memory changed (what the test waited on)
        wait_for(lambda: rt.store.get(matched.id).preset == "audio-m4a", timeout=10,
                 message="the condition's preset stored")
        for url in (origin.clip_url, origin.short_url):
            assert (by_url[url].preset, by_url[url].msg) == ("default", "")
    finally:
        rt.engine.delete_items([c.id for c in children])


def test_a_playlist_that_ignores_conditions_reads_no_entry_before_it_applies(
        rt: Runtime, origin: MediaOrigin) -> None:
    """With a condition on, each entry's info is read for it, unless the playlist was added
    to ignore conditions: then its entries are queued with their site at once."""
    condition = rt.engine.conditions.create(
        {"name": "clip2 as audio", "filter": "title *= clip2", "extras": {"preset": "audio-m4a"}})
    announced: list[dict] = []
    stop = rt.bus.subscribe(lambda e: e.name == events.ITEM_ADDED and announced.append(e.data))
    try:
        [parent] = rt.engine.add([{"url": origin.playlist_url, "auto_start": False,
                                   "extras": {"ignore_conditions": True}}])
        children = wait_for(
            lambda: [i for i in rt.engine.queue_items() if i.batch_id == parent.id],
            timeout=60, message="the playlist's entries")
    finally:
        stop()
        rt.engine.conditions.delete(condition["id"])
    try:
        entries = [d for d in announced if d.get("batch_id") == parent.id]
        assert len(entries) == len(children) == len(origin.playlist_entry_urls)
        assert all(d["extractor"] for d in entries)
        assert {(c.preset, c.msg) for c in children} == {("default", "")}
    finally:
        rt.engine.delete_items([c.id for c in children])


def test_a_feeds_entries_are_queued_without_an_id_they_do_not_have(
        rt: Runtime, origin: MediaOrigin) -> None:
    """A feed's entries name their media, not its id (read with its info, at the download):
    an id made up for them would be one archive line for all of them."""
    [parent] = rt.engine.add([{"url": origin.feed_url, "auto_start": False}])
    children = wait_for(lambda: [i for i in rt.engine.queue_items() if i.batch_id == parent.id],
                        timeout=60, message="the feed's entries")
    rt.engine.delete_items([c.id for c in children])
    assert len(children) == len(origin.playlist_entry_urls)
    assert {c.video_id for c in children} == {""}


def test_a_playlists_entry_in_its_archive_is_skipped_as_it_is_queued(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    rt = start_runtime(YTP_KEEP_ARCHIVE="true")
    archived = origin.playlist_entry_urls[0]
    # the line its download from this playlist wrote (the page's first video)
    (rt.settings.config_path / DEFAULT_ARCHIVE).write_text("html5mediaembed playlist-1\n")
    [parent] = rt.engine.add([{"url": origin.playlist_url, "auto_start": False}])
    entries = wait_for(lambda: len(found := rt.store.batch(parent.id))
                       == len(origin.playlist_entry_urls) and found,
                       timeout=60, message="the playlist's entries")
    by_url = {i.url: i for i in entries}
    skipped = by_url.pop(archived)
    assert (skipped.kind, skipped.status) == ("done", "skip")
    assert "is in the archive" in skipped.msg
    assert {(i.kind, i.status) for i in by_url.values()} == {("queue", "pending")}
    assert skipped.id not in {i.id for i in rt.engine.queue_items()}


def test_a_download_is_said_to_postprocess_before_it_is_finished(
        rt: Runtime, origin: MediaOrigin) -> None:
    """Its last step (yt-dlp's move of the file home, a merge, a conversion) is shown as such,
    not as more downloading."""
    item = _waiting(rt, origin.short_url, template="postprocessed.%(ext)s")
    statuses: list[str] = []
    stop = rt.bus.subscribe(lambda e: e.name == events.ITEM_UPDATED and not e.progress
                            and e.data.get("id") == item.id
                            and statuses.append(e.data["status"]))
    try:
        rt.engine.start_items([item.id])
        # (its end is announced after it is stored: wait for the announcement)
        wait_for(lambda: statuses and statuses[-1] in ("finished", "error"), timeout=60,
                 message="the download's end announced")
    finally:
        stop()
    said = [s for n, s in enumerate(statuses) if not n or statuses[n - 1] != s]
    assert said[-2:] == ["postprocessing", "finished"], statuses
    assert "downloading" in said[:-2]


def test_a_download_that_reports_its_progress_is_not_looked_at(
        rt: Runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its processes' work (read from /proc) is looked at only while the job is silent, a few
    times per stall bound: not at each tick, nor after each of its hundreds of messages."""
    looks: list[int] = []
    real = downloading.group_signs

    def group_signs(pid: int, temp: Path | None) -> object:
        looks.append(pid)
        return real(pid, temp)

    monkeypatch.setattr(downloading, "group_signs", group_signs)
    item = _waiting(rt, origin.short_url, template="unwatched.%(ext)s")
    rt.engine.start_items([item.id])
    done = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                    timeout=60, message="the download to end")
    assert done.status == "finished"
    assert rt.settings.stall_timeout / 5 >= downloading.SIGNS_EVERY  # looks 30 s apart
    assert looks == []


def test_a_folder_too_long_under_a_new_download_folder_fails_its_item_at_start(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin, tmp_path: Path) -> None:
    """Its folder fitted the kernel's path limit under the download folder it was added to,
    not under the one the settings name when it starts: it fails saying so, its slot and its
    process given back (the next download runs)."""
    rt = start_runtime()
    folder = "/".join(c * 200 for c in "abcdefghijklmnopqrs")  # 3,818 characters
    item = _waiting(rt, origin.clip_url, folder=folder)
    deeper = tmp_path / ("d" * 250) / ("e" * 250)
    deeper.mkdir(parents=True)
    rt.settings_holder.change(lambda s: s.replace(download_path=deeper))
    rt.engine.start_items([item.id])
    failed = wait_for(lambda: (i := rt.store.get(item.id)) and i.kind == "done" and i,
                      timeout=60, message="the item to fail")
    assert failed.status == "error"
    assert f"folder '{folder[:100]}'" in failed.error, failed.error
    wait_for(lambda: not rt.engine._runs and rt.engine.pool.stats()["busy"] == 0,
             timeout=30, message="its slot and process given back")


def test_a_folder_outside_is_refused_when_added(rt: Runtime) -> None:
    with pytest.raises(AppError):
        rt.engine.add([{"url": "http://127.0.0.1:9/x", "folder": "/etc"}])


def test_commands_on_unknown_items(rt: Runtime, origin: MediaOrigin) -> None:
    for command in (rt.engine.start_items, rt.engine.pause_items, rt.engine.cancel_items):
        with pytest.raises(AppError) as caught:
            command(["no-such-item"])
        assert caught.value.code == "NOT_FOUND"
    item = _waiting(rt, origin.clip_url)
    assert rt.engine.pause_items([item.id, "no-such-item"]) == {
        item.id: "paused", "no-such-item": "not found"}
    assert rt.engine.cancel_items([item.id, "no-such-item"]) == {
        item.id: "ok", "no-such-item": "not found"}


def test_a_postprocessor_that_renames_the_file_is_recorded(rt: Runtime,
                                                          origin: MediaOrigin) -> None:
    told: list[events.Event] = []
    stop = rt.bus.subscribe(lambda e: told.append(e) if e.name == events.LOG_SUCCESS else None)
    try:
        [added] = rt.engine.add([{"url": origin.clip_url, "template": "remuxed.%(ext)s",
                                  "cli": "--remux-video mkv"}])
        done = wait_for(lambda: (i := rt.store.get(added.id)) and i.kind == "done" and i,
                        timeout=120, message="the download to finish")
        wait_for(lambda: any(e.data.get("id") == added.id for e in told), timeout=10,
                 message="the success told to clients")
    finally:
        stop()
    assert done.status == "finished", done.error
    # the item names the file the remux left, not the one yt-dlp downloaded
    assert done.filename == "remuxed.mkv"
    assert (Path(done.download_folder) / "remuxed.mkv").is_file()
    assert not (Path(done.download_folder) / "remuxed.mp4").exists()
    [message] = [e.data for e in told if e.data.get("id") == added.id]
    assert message["title"] == "Download completed"
    assert message["message"] == done.title


def test_progress_and_a_finished_download_record_its_bytes_and_title(
        rt: Runtime, origin: MediaOrigin, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO, logger="appliance.engine")
    progress: list[dict] = []
    completed: list[dict] = []
    # Trickled (origin.slow_rate, followed live) while the test renames it, then at once.
    monkeypatch.setattr(origin, "slow_rate", 400_000)
    [added] = rt.engine.add([{"url": origin.slow_url, "template": "bytes.%(ext)s"}])

    def seen(event: events.Event) -> None:
        if event.data.get("id") != added.id:
            return
        if event.progress:
            progress.append(event.data)
        elif event.name == events.ITEM_COMPLETED:
            completed.append(event.data)

    stop = rt.bus.subscribe(seen)
    try:
        wait_for(lambda: progress, timeout=60, message="progress")
        assert rt.engine.update_item(added.id, {"title": "named while running"})[1]
        origin.slow_rate = 200_000_000
        done = wait_for(lambda: (i := rt.store.get(added.id)) and i.kind == "done" and i,
                        timeout=120, message="the download to finish")
        wait_for(lambda: completed, timeout=10, message="the end told to clients")
    finally:
        stop()
    assert done.status == "finished", done.error
    size = (Path(done.download_folder) / done.filename).stat().st_size
    assert done.file_size == done.downloaded_bytes == done.total_bytes == size
    # clients are told the same figures the item is stored with
    [told] = completed
    assert (told["file_size"], told["downloaded_bytes"], told["total_bytes"]) == (size,) * 3
    assert done.video_id == "slow"  # from the download's own info
    assert done.title == "named while running"  # a person's title wins over the site's
    seen_bytes = [p for p in progress if p["downloaded_bytes"] is not None]
    assert seen_bytes and all(0 < p["downloaded_bytes"] <= size for p in seen_bytes)
    # each progress says how much of how much, in which file, and how long is left
    assert all(p["total_bytes"] == size for p in seen_bytes)
    assert all(p["percent"] == round(100 * p["downloaded_bytes"] / size, 2)
               for p in seen_bytes)
    assert all(p["filename"] == "bytes.mp4" for p in seen_bytes)
    assert any(p["eta"] is not None and p["speed"] for p in seen_bytes)
    # logged once it is announced, by the download's thread
    logged = f"download finished: item={added.id} file=bytes.mp4"
    wait_for(lambda: logged in [r.getMessage() for r in caplog.records], timeout=10,
             message="the end logged")


def test_a_stop_asked_as_the_job_ends_spares_the_process_given_back(
        rt: Runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the job's end and the run's, the process is back in the pool, perhaps already
    another item's: a pause arriving then must not kill it (that item's download would die)."""
    item = _waiting(rt, origin.clip_url, template="paused-as-it-ended.%(ext)s")
    given_back: list[int] = []
    killed: list[int] = []
    pool, release, kill = rt.engine.pool, rt.engine.pool.release, Worker.signal_kill

    def release_then_pause(worker: Worker) -> None:
        release(worker)
        if worker.jobs and not given_back:
            given_back.append(worker.pid)
            rt.engine.pause_items([item.id])

    def recorded_kill(worker: Worker) -> None:
        killed.append(worker.pid)
        kill(worker)

    monkeypatch.setattr(pool, "release", release_then_pause)
    monkeypatch.setattr(Worker, "signal_kill", recorded_kill)
    rt.engine.start_items([item.id])
    ended = wait_for(lambda: (i := rt.engine.get(item.id)) and i.msg == "Paused" and i,
                     timeout=60, message="the pause to end the run")
    assert given_back and given_back[0] not in killed
    assert ended.status == "pending"  # the first stop reason decides, as for any pause
