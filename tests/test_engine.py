"""The engine on real parts: limits, stalls, crashes, the warm process pool."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest
from conftest import make_settings
from support.disk import DiskSyncs
from support.mounts import tmpfs
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import launcher
from appliance.engine.workers import WorkerPool
from appliance.events import Event
from appliance.runtime import Runtime


def item(rt: Runtime, item_id: str):
    found = rt.engine.get(item_id)
    assert found is not None
    return found


def test_per_site_limit_does_not_block_other_sites(
        start_runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = start_runtime(YTP_MAX_WORKERS="3", YTP_MAX_WORKERS_PER_EXTRACTOR="1")
    # The slow site stays busy (a trickle: minutes for the file) until the playlist is done;
    # then the test lets it go, and both of its downloads finish, one after the other.
    monkeypatch.setattr(origin, "slow_rate", 20_000)
    running: dict[str, set[str]] = {}
    peak: dict[str, int] = {}
    started: dict[str, str] = {}
    lock = threading.Lock()
    finished: dict[str, str] = {}

    def watch(event: Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if event.name == "item_completed":
            finished[data["url"]] = data["video_id"]
        if event.name != "item_updated" or event.progress or "extractor" not in data:
            return
        with lock:
            # the site an item was scheduled under (a finished item may report another)
            site_name = started.setdefault(data["id"], data["extractor"])
            site = running.setdefault(site_name, set())
            if data["status"] in {"preparing", "downloading", "postprocessing"}:
                site.add(data["id"])
            else:
                site.discard(data["id"])
            peak[site_name] = max(peak.get(site_name, 0), len(site))

    rt.bus.subscribe(watch)
    slow = rt.engine.add([{"url": origin.slow_url, "template": f"s{n}.%(ext)s"}
                          for n in range(2)])
    # playlist entries are another extractor (HTML5MediaEmbed): they must not wait
    rt.engine.add([{"url": origin.playlist_url}])
    wait_for(lambda: rt.store.count("done") >= 3 and item(rt, slow[1].id).kind == "queue",
             timeout=60, message="the playlist to finish while the slow site is busy")
    origin.slow_rate = 200_000_000
    wait_for(lambda: all(item(rt, s.id).status == "finished" for s in slow), timeout=120,
             message="slow downloads")
    assert peak["Generic"] == 1
    assert peak["HTML5MediaEmbed"] == 1
    # an entry is named by the playlist page ("playlist-2"); once downloaded, it records the
    # id of the video it got (what its archive entry says too)
    assert {url: finished[url] for url in origin.playlist_entry_urls} == {
        url: Path(url).stem for url in origin.playlist_entry_urls}


def test_stuck_download_is_stopped_and_marked(start_runtime, origin: MediaOrigin) -> None:
    rt = start_runtime(YTP_STALL_TIMEOUT="5")
    [added] = rt.engine.add([{"url": origin.stall_url()}])
    failed = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=60,
                      message="the stall to be noticed")
    assert failed.status == "error"
    assert "No progress for 5 s" in failed.error


def test_dead_download_process_is_an_error_not_a_hang(start_runtime,
                                                      origin: MediaOrigin) -> None:
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.slow_url}])
    run = wait_for(lambda: (r := rt.engine._runs.get(added.id)) and r.worker
                   and item(rt, added.id).status == "downloading" and r,
                   timeout=60, message="download to start")
    os.kill(run.worker.pid, signal.SIGKILL)
    failed = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=30,
                      message="the crash to be reported")
    assert failed.status == "error" and "SIGKILL" in failed.error


@pytest.mark.parametrize(("step", "expected"), [
    ("_on_message", "Unexpected error: RuntimeError: a bug"),
    ("_finish", "Unexpected error at the download's end: RuntimeError: a bug"),
])
def test_an_unexpected_error_in_a_download_ends_its_item_and_gives_its_slot_back(
        start_runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch, step: str,
        expected: str) -> None:
    """A bug on the download thread, reading what the process said or recording the end (its
    NFO file from site metadata, its archive, its history row), left the item 'downloading'
    for good, its slot and process held. The raise stands for one: no input is known to cause
    one any more."""
    rt = start_runtime(YTP_MAX_WORKERS="1")

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    with monkeypatch.context() as patched:
        patched.setattr(rt.engine, step, broken)
        [added] = rt.engine.add([{"url": origin.clip_url}])
        failed = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=60,
                          message="the item to end")
    assert failed.status == "error" and failed.error == expected
    [after] = rt.engine.add([{"url": origin.clip2_url}])  # the one slot is free again
    finished = wait_for(lambda: (i := item(rt, after.id)).kind == "done" and i, timeout=60,
                        message="the next download to end")
    assert finished.status == "finished"


def test_spawned_pool_keeps_a_spare_replaces_killed_and_retires_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a zygote to fork from (Linux before 5.3), spares are spawned ahead of need."""
    monkeypatch.setattr(launcher, "_pidfds_work", lambda: False)
    pool = WorkerPool(spare=1, idle_timeout=3, capacity=2, linger=1)
    try:
        worker = pool.acquire()
        # while in use, a spare is started ahead of need
        wait_for(lambda: pool.stats()["idle"] == 1, timeout=30, message="a warm spare")
        spare_pid = pool.pids()[0]
        worker.signal_kill()
        pool.discard(worker)
        again = pool.acquire()
        assert again.pid == spare_pid, "a warm process is handed out, not a cold one"
        wait_for(lambda: pool.stats()["idle"] == 1, timeout=30, message="a replacement spare")
        pool.release(again)
        # idle for longer than the timeout: every process is retired
        wait_for(lambda: pool.stats() == {"idle": 0, "busy": 0, "starting": 0}, timeout=30,
                 message="idle processes retired")
        wait_for(lambda: not _alive(spare_pid), timeout=10, message="the process to exit")
    finally:
        pool.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_restart_extracts_items_that_never_got_info(tmp_path: Path, origin: MediaOrigin) -> None:
    settings = make_settings(tmp_path, YTP_WARM_WORKERS="0")
    rt = Runtime(settings, websocket=False)
    rt.engine.set_paused(True)
    # stored but never started: as if the service died right after acknowledging
    [added] = rt.engine.add([{"url": origin.clip_url}])
    rt.stop()
    again = Runtime(settings, websocket=False)
    again.start()
    try:
        done = wait_for(lambda: (i := again.engine.get(added.id)) and i.kind == "done" and i,
                        timeout=60, message="the item to finish after restart")
        assert done.status == "finished"
    finally:
        again.stop()


def test_configured_default_options_apply_and_items_override(start_runtime,
                                                             origin: MediaOrigin) -> None:
    rt = start_runtime(YTP_YTDLP_CLI="-o '%(id)s-default.%(ext)s'")
    plain, own = rt.engine.add([{"url": origin.clip_url},
                                {"url": origin.clip2_url, "template": "%(id)s-own.%(ext)s"}])
    for added, name in ((plain, "clip-default.mp4"), (own, "clip2-own.mp4")):
        done = wait_for(lambda a=added: (i := item(rt, a.id)).kind == "done" and i,
                        timeout=60, message="download")
        assert done.filename == name


COOKIES = "# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n"


def test_cookies_live_in_a_private_file_removed_after_use(start_runtime,
                                                          origin: MediaOrigin) -> None:
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.slow_url, "cookies": COOKIES}])
    cookie_file = rt.settings.temp_path / added.id / "cookies.txt"
    wait_for(lambda: item(rt, added.id).status == "downloading", timeout=60,
             message="download to start")
    assert cookie_file.read_text() == COOKIES
    assert cookie_file.stat().st_mode & 0o777 == 0o600
    rt.engine.cancel_items([added.id])
    wait_for(lambda: item(rt, added.id).kind == "done", message="cancel")
    # Removed as the run ends, which is after the item is shown cancelled.
    wait_for(lambda: not cookie_file.exists(), message="the cookie file removed")


@pytest.mark.parametrize("cookies", ["session=abc", "a\tb\tc\n", "h\tF\t/\tF\tsoon\tn\tv"])
def test_cookies_not_in_netscape_format_are_refused(start_runtime, cookies: str) -> None:
    from appliance.errors import AppError

    rt = start_runtime()
    with pytest.raises(AppError, match="Netscape format"):
        rt.engine.add([{"url": "http://127.0.0.1:9/x", "cookies": cookies}])
    assert rt.engine.queue_items() == []


def test_hls_stream_downloads(start_runtime, origin: MediaOrigin) -> None:
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.hls_url}])
    done = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=90,
                    message="HLS download")
    assert done.status == "finished", done.error
    assert (rt.settings.download_path / done.filename).stat().st_size > 10_000


def test_site_is_asked_once_for_info(start_runtime, origin: MediaOrigin) -> None:
    """The info read when the item was added is reused by its download (not read again)."""
    rt = start_runtime()
    origin.clear_requests()
    [added] = rt.engine.add([{"url": origin.watch_url("clip"), "template": "once.%(ext)s"}])
    done = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=60,
                    message="download")
    assert done.status == "finished", done.error
    pages = [r for r in origin.requests if r.path == "/watch/clip.html"]
    assert len(pages) == 1, pages


def test_a_download_waits_for_the_disk_only_where_a_person_asked(
        start_runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """The add, the delete, a pause and an edit are on the disk before they are acknowledged;
    the engine's transitions in between (preparing ... finished) do not wait for it."""
    rt = start_runtime()
    wal = str(rt.settings.database_file) + "-wal"
    syncs = DiskSyncs(monkeypatch, under=rt.settings.config_path)
    [added] = rt.engine.add([{"url": origin.clip_url, "template": "durable.%(ext)s"}])
    assert syncs.take() == [wal]
    done = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=60,
                    message="download")
    assert done.status == "finished", done.error
    assert syncs.take() == []
    assert rt.engine.delete_items([added.id]) == {added.id: "deleted"}
    assert syncs.take() == [wal]
    # a pause and an edit a person asked for are on the disk before they are acknowledged
    [held] = rt.engine.add([{"url": origin.clip2_url, "auto_start": False}])
    wait_for(lambda: item(rt, held.id).extractor, timeout=30, message="the item's info")
    syncs.take()
    assert rt.engine.pause_items([held.id]) == {held.id: "paused"}
    assert syncs.take() == [wal]
    assert rt.engine.update_item(held.id, {"title": "mine"})[1]
    assert syncs.take() == [wal]


def test_a_full_disk_is_said_plainly(start_runtime, origin: MediaOrigin) -> None:
    """The item's temp folder is a 16 KiB disk: the part file fills it (ENOSPC). The
    service's folders have room, so it is tried again at once (a full disk it can see is
    waited out: test_disk_room.py), and fails once it has filled it too often."""
    rt = start_runtime()
    [added] = rt.engine.add([{"url": origin.clip_url, "template": "full.%(ext)s",
                              "auto_start": False}])
    wait_for(lambda: item(rt, added.id).extractor, timeout=30, message="the item's info")
    with tmpfs(rt.settings.temp_path / added.id, "size=16k"):
        rt.engine.start_items([added.id])
        failed = wait_for(lambda: (i := item(rt, added.id)).kind == "done" and i, timeout=60,
                          message="the download to fail")
    assert failed.status == "error"
    assert re.fullmatch(
        r"The disk filled up 4 times while this download ran: it needs more room than the "
        r"disk has free\. Free some space, then start it again\. "
        r"\(.*\[Errno 28\] No space left on device\)", failed.error), failed.error


def test_a_downloads_events_carry_the_time_of_its_last_stored_change(
        start_runtime, origin: MediaOrigin) -> None:
    """Progress events went on with the stamp of the change before the last one: a client
    saw a download's `updated_at` go back in time after each state change (and fanout's
    bench, which reads it, a state event 800 ms late)."""
    rt = start_runtime()
    seen: list[tuple[str, bool, float]] = []
    # About two seconds of download: progress a few times after its state change.
    size = origin.path_for(origin.slow_url).stat().st_size
    [added] = rt.engine.add([{"url": origin.slow_url_at(size // 2)}])

    def watch(event: Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if data.get("id") == added.id and event.name in {"item_updated", "item_completed"}:
            seen.append((data["status"], event.progress, data["updated_at"]))

    rt.bus.subscribe(watch)
    wait_for(lambda: item_status(rt, added.id) == "finished", timeout=60,
             message="the download to finish")
    stamps = [stamp for _, _, stamp in seen]
    assert stamps == sorted(stamps), seen
    # (with teeth: progress came after the download's own state change)
    downloading = next(i for i, (status, progress, _) in enumerate(seen)
                       if status == "downloading" and not progress)
    assert any(progress for _, progress, _ in seen[downloading:]), seen


def item_status(rt: Runtime, item_id: str) -> str | None:
    found = rt.engine.get(item_id) or rt.store.get(item_id)
    return found.status if found is not None else None
