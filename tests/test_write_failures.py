"""A read-only disk and a folder the service may not write, end to end: a real download from
the local origin fails on the real error, and the item says so in words, naming the folders.
A full disk under the database: the API says so (507), a running download waits for the disk
and goes on by itself once there is space.

The download's temp folder is made unwritable before it starts: as root (here and in CI) a
read-only tmpfs is mounted on it, or it is made immutable (root ignores permission bits);
as another user, its permission bits are enough for the second case.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.disk_waits import queued_while_the_disk_is_missing
from support.mounts import fill, removable, tmpfs, unplug
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import disk_waits, folder_disk, storing
from appliance.engine.folder_disk import FolderDisk
from appliance.runtime import Runtime
from appliance.store import Item, database
from appliance.store.backups import DatabaseProblem, check_database
from appliance.systemd import status_line

ROOT = os.geteuid() == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    if not ROOT:
        pytest.skip("a read-only mount needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def not_writable(folder: Path) -> Iterator[None]:
    if not ROOT:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if immutable.returncode != 0:
        pytest.skip(f"cannot make a folder immutable here: {immutable.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def fail_in_unwritable_temp(rt: Runtime, origin: MediaOrigin,
                            unwritable: Callable[[Path], contextlib.AbstractContextManager]
                            ) -> Item:
    [added] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
    wait_for(lambda: rt.engine.get(added.id).extractor,  # type: ignore[union-attr]
             timeout=30, message="the item's info")
    temp = rt.settings.temp_path / added.id
    temp.mkdir(parents=True, exist_ok=True)
    with unwritable(temp):
        rt.engine.start_items([added.id])
        failed = wait_for(lambda: (i := rt.engine.get(added.id)) and i.kind == "done" and i,
                          timeout=60, message="the download to fail")
    assert failed.status == "error"
    assert not list(rt.settings.download_path.rglob("*.mp4"))
    return failed


def folders(rt: Runtime) -> str:
    return re.escape(f"{rt.settings.temp_path} (partial files) and {rt.settings.download_path}")


def test_a_read_only_disk_is_said_plainly(start_runtime: Callable[..., Runtime],
                                          origin: MediaOrigin) -> None:
    rt = start_runtime()
    failed = fail_in_unwritable_temp(rt, origin, read_only)
    assert re.fullmatch(
        rf"The disk is read-only: {folders(rt)} must be on a writable disk\. "
        r"\(.*\[Errno 30\] Read-only file system.*\)", failed.error), failed.error


def test_a_folder_the_service_may_not_write_is_said_plainly(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    rt = start_runtime()
    failed = fail_in_unwritable_temp(rt, origin, not_writable)
    errno = r"\[Errno 1\] Operation not permitted" if ROOT else r"\[Errno 13\] Permission denied"
    assert re.fullmatch(
        rf"The service may not write there: check that the user it runs as owns {folders(rt)}"
        rf"\. \(.*{errno}.*\)", failed.error), failed.error


def test_a_full_disk_under_the_database_is_said_and_waited_out(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A download thread whose state write failed died holding its download process; the item
    stayed in the queue as it was until a restart, and the API answered 500."""
    monkeypatch.setattr(storing, "RETRY_SECONDS", 0.5)
    config = tmp_path / "config"
    with tmpfs(config, "size=8m"):
        rt, client = app_with()
        [held] = rt.engine.add([{"url": origin.clip2_url, "auto_start": False}])
        # Its info read and stored before the disk fills: read later, the engine holds it in
        # memory while the write waits for room (storing.py), and the comparison of memory
        # with the store below saw that wait, not the edit's outcome.
        wait_for(lambda: (s := rt.store.get(held.id)) and s.title != origin.clip2_url,
                 timeout=60, message="the held item's info to be stored")
        monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
        [queued] = client.simulate_post("/api/history", json={"url": origin.slow_url}).json
        wait_for(lambda: (rt.engine.get(queued["id"]).downloaded_bytes or 0) > 0,
                 timeout=60, message="the download to begin")
        filler = fill(config)
        # A change the disk refused has not happened: the held item does not start (it did,
        # though the answer said it failed). The first write after the disk filled up.
        start = client.simulate_post("/api/history/start", json={"ids": [held.id]})
        assert (start.status_code, start.json["code"]) == (507, "INSUFFICIENT_STORAGE")
        kept = rt.engine.get(held.id)
        assert (kept.auto_start, kept.status) == (False, "pending")
        refused = client.simulate_post("/api/history", json={"url": origin.clip_url})
        assert refused.status_code == 507, refused.text
        assert refused.json["code"] == "INSUFFICIENT_STORAGE"
        assert refused.json["error"].startswith(
            f"The database in {config} could not be written: the disk is full (")
        # A request's end the disk refused: the item stays in the queue, as stored.
        cancel = client.simulate_post("/api/history/cancel", json={"ids": [held.id]})
        assert (cancel.status_code, cancel.json["code"]) == (507, "INSUFFICIENT_STORAGE")
        delete = client.simulate_delete("/api/history", json={"type": "queue",
                                                              "ids": [held.id]})
        assert (delete.status_code, delete.json["code"]) == (507, "INSUFFICIENT_STORAGE")
        kept = rt.engine.get(held.id)
        assert kept is not None and (kept.kind, kept.status) == ("queue", "pending")
        # SQLite may still commit a small change into its log's room without asking the
        # disk: whatever the answer, the item in memory is the one stored.
        edit = client.simulate_post(f"/api/history/{held.id}", json={"title": "renamed"})
        assert edit.status_code in (200, 507), edit.text
        assert rt.engine.get(held.id).title == rt.store.get(held.id).title
        said = wait_for(lambda: [r for r in caplog.records if r.levelno == logging.ERROR],
                        timeout=30, message="the download's write to be refused")
        origin.slow_rate = 200_000_000
        assert "Downloads wait until their state can be stored" in said[0].getMessage()
        assert rt.store.get(queued["id"]).status != "finished"
        filler.unlink()
        done = wait_for(lambda: (i := rt.store.get(queued["id"])) and i.status == "finished"
                        and i, timeout=60, message="the download to end once there is space")
        assert (rt.settings.download_path / done.filename).stat().st_size == \
            origin.path_for(origin.slow_url).stat().st_size
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
        assert len([r for r in caplog.records if "written again" in r.getMessage()]) == 1
        assert client.simulate_post("/api/history/cancel", json={"ids": [held.id]}).json == {
            held.id: "ok"}
        assert rt.store.get(held.id).status == "cancelled"
        # Its download process went back to the pool: the next download runs.
        [after] = rt.engine.add([{"url": origin.clip_url}])
        wait_for(lambda: (i := rt.store.get(after.id)) and i.status == "finished",
                 timeout=60, message="a download after the disk was freed")



def test_a_database_another_program_holds_is_said_and_waited_out(
        app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An admin's sqlite3 shell in a transaction holds the database's write lock. Every write
    past the busy timeout was a 500, and a download's state write raised: its thread died
    holding its download process, the item stayed "downloading" until a restart."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(storing, "RETRY_SECONDS", 0.5)
    rt, client = app_with()
    monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
    [queued] = client.simulate_post("/api/history", json={"url": origin.slow_url}).json
    wait_for(lambda: (rt.engine.get(queued["id"]).downloaded_bytes or 0) > 0, timeout=60,
             message="the download to begin")
    shell = sqlite3.connect(rt.settings.database_file, isolation_level=None)
    try:
        shell.execute("BEGIN IMMEDIATE")
        refused = client.simulate_post("/api/history", json={"url": origin.clip_url})
        assert (refused.status_code, refused.json["code"]) == (503, "UNAVAILABLE"), refused.text
        assert refused.json["error"] == (
            f"The database in {rt.settings.config_path} could not be written: another program "
            "holds a lock on it (an sqlite3 shell, a backup tool). Nothing of this change was "
            "stored; what was stored before is kept. Close that program or end its "
            "transaction; the service goes on by itself then.")
        assert [i.url for i in rt.engine.queue_items()] == [origin.slow_url]
        origin.slow_rate = 200_000_000  # its end's state write meets the lock
        said = wait_for(lambda: [r for r in caplog.records if r.levelno == logging.ERROR],
                        timeout=60, message="the download's write to be refused")
        assert "another program holds a lock" in said[0].getMessage()
        assert "Downloads wait until their state can be stored" in said[0].getMessage()
        assert rt.store.get(queued["id"]).status != "finished"
    finally:
        shell.execute("ROLLBACK")
        shell.close()
    done = wait_for(lambda: (i := rt.store.get(queued["id"])) and i.status == "finished"
                    and i, timeout=60, message="the download to end once the lock is gone")
    assert (rt.settings.download_path / done.filename).stat().st_size == \
        origin.path_for(origin.slow_url).stat().st_size
    assert len([r for r in caplog.records if "written again" in r.getMessage()]) == 1
    [after] = rt.engine.add([{"url": origin.clip_url}])  # its download process came back
    wait_for(lambda: (i := rt.store.get(after.id)) and i.status == "finished", timeout=60,
             message="a download after the lock")


def test_a_database_on_a_full_disk_is_said_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    with tmpfs(folder, "size=8m"):
        database = folder / "appliance.db"
        with contextlib.closing(sqlite3.connect(database)) as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("CREATE TABLE t (x)")
        fill(folder)
        with pytest.raises(DatabaseProblem, match=re.escape(
                f"the database {database} cannot be opened (disk I/O error): the disk "
                f"holding it is full (")):
            check_database(database)


def test_downloads_wait_while_the_download_folders_disk_is_unplugged(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Unplugged, a USB disk leaves its mount point: an empty folder on the system's disk.
    Downloads went on there, filling the system's disk, hidden once the disk came back. A
    download running then goes back to the queue, its partial file kept, and resumes."""
    downloads = tmp_path / "downloads"
    with removable(downloads, "size=8m") as plug_back:
        rt, client = app_with(YTP_BROWSER_CONTROL_ENABLED="true")
        said: list[Any] = []
        rt.bus.subscribe(lambda e: e.name == "download_folder" and said.append(e.data))
        [first] = rt.engine.add([{"url": origin.clip_url}])
        landed = wait_for(lambda: (i := rt.engine.get(first.id)) and i.status == "finished"
                          and i, timeout=60, message="a download onto the disk")
        monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
        [running] = rt.engine.add([{"url": origin.slow_url}])
        wait_for(lambda: (rt.engine.get(running.id).downloaded_bytes or 0) > 0, timeout=60,
                 message="a download to be running")
        unplug(downloads)
        problem = wait_for(lambda: rt.engine.stats()["download_folder_problem"], timeout=30,
                           message="the periodic check to notice")
        assert problem.startswith(f"The download folder {downloads} is on the disk mounted "
                                  f"at {downloads}, which is not mounted any more")
        assert status_line(rt.engine.stats()).endswith(", waiting for the download folder's disk")
        waiting = wait_for(lambda: (i := rt.engine.get(running.id)) and i.status == "pending"
                           and i, timeout=30, message="the running download back in the queue")
        assert waiting.msg == disk_waits.disk_wait(problem)  # (its words: test_losses18_disk_waits)
        assert waiting.auto_start
        assert list((rt.settings.temp_path / running.id).rglob("*.part"))
        health = client.simulate_get("/api/health")
        assert health.status_code == 200 and health.json["download_folder"] == problem
        # The bare mount point is not listed as if the files were gone.
        for gone in ("/api/file/browser/", f"/api/download/{landed.filename}"):
            answer = client.simulate_get(gone)
            assert (answer.status_code, answer.json["error"]) == (503, problem), gone
        for gone, body in (("/api/file/actions", [{"action": "directory", "path": "/",
                                                   "new_dir": "made-while-unplugged"}]),
                           ("/api/file/download", [landed.filename])):
            answer = client.simulate_post(gone, json=body)
            assert (answer.status_code, answer.json["error"]) == (503, problem), gone
        [second] = rt.engine.add([{"url": origin.clip2_url}])
        wait_for(lambda: (i := rt.engine.get(second.id)) and i.extractor, timeout=60,
                 message="the second item's info")
        assert rt.engine.alive(10)  # the dispatcher ran a round with the item ready
        assert rt.engine.get(second.id).status == "pending"
        assert list(downloads.iterdir()) == []  # nothing under the bare mount point
        origin.clear_requests()
        origin.slow_rate = 200_000_000  # the rest, once resumed
        plug_back()
        done = wait_for(lambda: (i := rt.engine.get(second.id)) and i.status == "finished"
                        and i, timeout=60, message="the download once the disk is back")
        resumed = wait_for(lambda: (i := rt.engine.get(running.id)) and i.status == "finished"
                           and i, timeout=60, message="the waiting download to resume")
        assert (downloads / resumed.filename).read_bytes() == \
            origin.path_for(origin.slow_url).read_bytes()
        ranges = [r.range for r in origin.requests_for("/slow.mp4") if r.range]
        assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges
        assert rt.engine.stats()["download_folder_problem"] is None
        assert (downloads / done.filename).stat().st_dev == os.stat(downloads).st_dev != \
            os.stat(tmp_path).st_dev
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [problem]
        assert said == [{"problem": problem}, {"problem": None}]  # the websocket's event


def test_a_start_without_the_download_folders_disk_waits_for_it(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]],
        origin: MediaOrigin) -> None:
    """A USB disk slower to mount than the service to start: the folder found then is the bare
    mount point, on the system's disk, and (under the systemd unit) a mount point itself. The
    service knows it by its missing mark: no download lands there, the queue waits, and goes
    on once the disk is plugged."""
    downloads = tmp_path / "downloads"
    with removable(downloads, "size=8m") as plug_back:
        before, _ = app_with()
        before.stop()
        unplug(downloads)
        downloads.mkdir(exist_ok=True)  # the bare mount point (the service makes it if not)
        rt, client = app_with()
        problem = rt.engine.stats()["download_folder_problem"]  # at once: no download started
        record = rt.settings.config_path / folder_disk.RECORD
        assert problem == (
            f"The download folder {downloads} is not the folder downloads went to until now "
            f"(the file .appliance-folder the service keeps in it is missing): is its disk "
            f"mounted? Downloads wait until it is back. To use this folder from now on, "
            f"remove {record}.")
        assert client.simulate_get("/api/health").json["download_folder"] == problem
        task = client.simulate_post("/api/tasks", json={
            "name": "channel", "url": f"{origin.base_url}/feeds/channel.rss",
            "auto_start": False}).json
        metadata = client.simulate_post(f"/api/tasks/{task['id']}/metadata")
        assert (metadata.status_code, metadata.json["error"]) == (503, problem)
        item = queued_while_the_disk_is_missing(rt, origin, downloads)
        plug_back()
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "finished"
                        and i, timeout=60, message="the download once the disk is plugged")
        assert (downloads / done.filename).stat().st_dev != os.stat(tmp_path).st_dev
        assert rt.engine.stats()["download_folder_problem"] is None


def test_downloads_wait_while_the_download_folders_disk_is_read_only(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]],
        origin: MediaOrigin) -> None:
    """A disk the system made read-only after write errors (ext4's errors=remount-ro, a
    failing USB disk): every queued download failed at its end, one after another, and none
    went on once the disk was writable again. They wait, and go on."""
    downloads = tmp_path / "downloads"
    with tmpfs(downloads, "size=8m"):
        rt, client = app_with()
        subprocess.run(["mount", "-o", "remount,ro", str(downloads)], check=True)
        problem = wait_for(lambda: rt.engine.stats()["download_folder_problem"], timeout=30,
                           message="the periodic check to notice")
        assert problem == (
            f"The download folder {downloads} is on a disk that is read-only (mounted so, or "
            "made so by the system after write errors: check the disk): downloads wait until "
            "it can be written.")
        assert client.simulate_get("/api/health").json["download_folder"] == problem
        # Its files are there: listed, as on any disk (a disk gone is a 503 instead).
        listing = client.simulate_get("/api/file/browser/")
        assert listing.status_code == 200, listing.json
        [item] = rt.engine.add([{"url": origin.clip_url}])
        wait_for(lambda: (i := rt.engine.get(item.id)) and i.extractor, timeout=60,
                 message="the item's info")
        assert rt.engine.alive(10)  # the dispatcher ran a round with the item ready
        assert rt.engine.get(item.id).status == "pending"
        subprocess.run(["mount", "-o", "remount,rw", str(downloads)], check=True)
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "finished"
                        and i, timeout=60, message="the download once the disk is writable")
        assert (downloads / done.filename).is_file()
        assert rt.engine.stats()["download_folder_problem"] is None


def test_a_new_download_folder_is_taken_once_its_record_is_removed(tmp_path: Path) -> None:
    """The way out the text gives: the record removed, the folder as it is now is the one."""
    folder, config = tmp_path / "downloads", tmp_path / "config"
    config.mkdir()
    folder.mkdir()
    changes: list[str | None] = []
    first = FolderDisk(lambda: folder, lambda: None, config)
    first.note()
    (folder / folder_disk.MARKER).unlink()  # the folder emptied, or another disk's
    disk = FolderDisk(lambda: folder, lambda: changes.append(disk.problem), config)
    disk.note()
    disk.check()
    assert changes and changes[-1] is not None and "is not the folder" in changes[-1]
    (config / folder_disk.RECORD).unlink()
    disk.check()
    assert changes[-1] is None
    assert (folder / folder_disk.MARKER).read_text().strip() == \
        json.loads((config / folder_disk.RECORD).read_text())["token"]


def test_a_disk_gone_as_a_download_ends_keeps_its_files_back(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The periodic check looks every few seconds; a download that ends in between would move
    its files onto the bare mount point. The download process looks at the folder's mark
    right before the move: the files stay in the temporary folder, the item waits, and
    finishes once the folder is back."""
    monkeypatch.setattr(folder_disk, "CHECK_SECONDS", 3600)  # only the check at start
    rt, _ = app_with()
    downloads = rt.settings.download_path
    mark = downloads / folder_disk.MARKER
    token = mark.read_text()
    mark.unlink()  # the disk gone since the last check, as the service sees it
    [item] = rt.engine.add([{"url": origin.clip_url}])
    waiting = wait_for(lambda: (i := rt.engine.get(item.id)) and i.msg.endswith("itself.")
                       and i, timeout=60, message="the download to end")
    problem = rt.engine.stats()["download_folder_problem"]
    assert problem.startswith(f"The download folder {downloads} is not the folder downloads "
                              "went to")
    assert (waiting.status, waiting.msg) == ("pending", disk_waits.disk_wait(problem))
    assert list(downloads.iterdir()) == []
    mark.write_text(token)  # the disk back
    rt.engine.folder_disk.check()  # as the next periodic check
    done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "finished" and i,
                    timeout=60, message="the download once the folder is back")
    assert (downloads / done.filename).read_bytes() == \
        origin.path_for(origin.clip_url).read_bytes()


@pytest.mark.parametrize("planted", ["fifo", "link to /dev/zero", "link to the real mark",
                                     "huge file"])
def test_a_mark_planted_by_someone_else_is_no_mark_and_no_hang(tmp_path: Path,
                                                                planted: str) -> None:
    """Whoever can write in a shared download folder can put anything where the mark goes:
    it is not the mark (downloads wait, said plainly), and nothing blocks or fills memory."""
    folder, config = tmp_path / "downloads", tmp_path / "config"
    config.mkdir()
    folder.mkdir()
    FolderDisk(lambda: folder, lambda: None, config).note()
    mark = folder / folder_disk.MARKER
    token = mark.read_text().strip()
    real = tmp_path / "elsewhere"
    real.write_text(token)
    mark.unlink()
    if planted == "fifo":
        os.mkfifo(mark)
    elif planted == "link to /dev/zero":
        mark.symlink_to("/dev/zero")
    elif planted == "link to the real mark":
        mark.symlink_to(real)
    else:
        mark.write_bytes(b"x" * (64 << 20))
    disk = FolderDisk(lambda: folder, lambda: None, config)
    disk.note()
    disk.check()
    assert disk.problem is not None and "is not the folder downloads went to" in disk.problem
    assert folder_disk.token_in(folder) in (None, "x" * folder_disk.MARK_BYTES)


def test_a_link_planted_before_the_first_start_is_replaced_not_written_through(
        tmp_path: Path) -> None:
    """The first mark is written where a link may already stand: the link is replaced, the
    file it points to (outside the download folder) is left as it was."""
    folder, config = tmp_path / "downloads", tmp_path / "config"
    config.mkdir()
    folder.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    (folder / folder_disk.MARKER).symlink_to(outside)
    disk = FolderDisk(lambda: folder, lambda: None, config)
    disk.note()
    disk.check()
    mark = folder / folder_disk.MARKER
    assert outside.read_text() == "not yours"
    assert not mark.is_symlink() and mark.read_text().strip() == \
        json.loads((config / folder_disk.RECORD).read_text())["token"]
    assert disk.problem is None
