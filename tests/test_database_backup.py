"""A damaged database stops the start with one line and exit 2 (systemd does not restart on 2),
and rolling backups (SQLite's online backup API) can be restored with ``appliance db restore``.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.mounts import fill, tmpfs
from support.server import Server, wait_for

from appliance.store.backups import (
    BackupSchedule,
    DatabaseProblem,
    backups,
    check_database,
    make_backup,
    restore,
)

ROOT = Path(__file__).resolve().parent.parent


def _cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=server.env,
                          capture_output=True, text=True, timeout=120)


def _database(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    with db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE IF NOT EXISTS items (n INTEGER)")  # the history's table
        db.executemany("INSERT INTO items VALUES (?)", [(n,) for n in range(rows)])
    db.close()
    return path


def _rows(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM items").fetchone()[0]
    finally:
        db.close()


@pytest.mark.e2e
def test_damaged_database_backup_and_restore_end_to_end(
        make_server: Callable[..., Server]) -> None:
    server = make_server()
    created = server.post("/api/conditions", {"name": "kept", "filter": "title"})
    assert created.status_code == 200, created.text
    database = server.root / "config" / "appliance.db"

    # A backup while the service runs; a restore and a second service are refused meanwhile.
    made = _cli(server, "db", "backup")
    assert made.returncode == 0, made.stderr
    assert len(backups(database)) == 1 and backups(database)[0].name in made.stdout
    refused = _cli(server, "db", "restore")
    assert refused.returncode == 1 and "the service is running" in refused.stderr
    second = _cli(server, "serve", "--port", str(server.port + 10))
    assert second.returncode == 2 and "the service is running" in second.stderr
    assert server.get("/api/conditions").json()["items"][0]["name"] == "kept"
    server.stop()

    garbage = os.urandom(64 * 1024)
    database.write_bytes(garbage)
    started = _cli(server, "serve")
    assert started.returncode == 2
    lines = started.stderr.splitlines()
    assert len(lines) == 1, started.stderr
    assert str(database) in lines[0] and "damaged" in lines[0]
    assert "`appliance db restore`" in lines[0]

    restored = _cli(server, "db", "restore")
    assert restored.returncode == 0, restored.stderr
    # (with its -wal and -shm when a thread's connection outlived the stop: they go with it)
    aside = [p for p in database.parent.iterdir()
             if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert str(aside[0]) in restored.stdout

    server.start()
    names = [c["name"] for c in server.get("/api/conditions").json()["items"]]
    assert names == ["kept"]


def test_page_damage_is_found_too(tmp_path: Path) -> None:
    """A file that is a database but has damaged pages (not only a wrong header)."""
    database = _database(tmp_path / "appliance.db", 5000)
    data = bytearray(database.read_bytes())
    page = 4096
    data[2 * page:3 * page] = b"\xff" * page  # a table page
    database.write_bytes(bytes(data))
    with pytest.raises(DatabaseProblem, match="damaged") as raised:
        check_database(database)
    # SQLite's own words, in the one line a failed start prints (its report spans two).
    assert "Page 3" in str(raised.value) and "\n" not in str(raised.value)


def test_backups_roll_and_restore_takes_the_newest_sound_one(tmp_path: Path) -> None:
    database = _database(tmp_path / "appliance.db", 3)
    first = make_backup(database, keep=3)
    folder = first.parent
    # Older ones, as earlier days left them.
    for day in ("20200101", "20200102", "20200103"):
        shutil.copy(first, folder / f"appliance-{day}-000000.db")
    # What else a person keeps in the folder is no backup: never restored, never rolled away.
    notes = folder / "notes.txt"
    notes.write_text("moved the old ones to the NAS")
    (folder / "appliance-20300101-000000.db").mkdir()
    newest = make_backup(database, keep=3)
    assert backups(database)[0].name == newest.name
    assert len(backups(database)) == 3  # the oldest two were deleted
    assert notes.exists() and (folder / "appliance-20300101-000000.db").is_dir()
    assert not list(folder.glob("*-wal")) and not list(folder.glob(".*tmp"))

    newest.write_bytes(b"not a database at all" * 100)  # the newest one went bad
    _database(database, 10)  # the live file moved on
    chosen, aside = restore(database)
    assert chosen != newest and _rows(database) == 3
    assert aside is not None and ".replaced-" in aside.name and _rows(aside) == 13
    with pytest.raises(DatabaseProblem, match="not usable"):
        restore(database, newest)


def test_restore_leaves_the_old_log_aside(tmp_path: Path) -> None:
    """A write-ahead log of the old file must not be replayed into the restored one."""
    database = _database(tmp_path / "appliance.db", 2)
    make_backup(database, keep=3)
    holder = sqlite3.connect(database)  # keeps the log from being folded in on close
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.executemany("INSERT INTO items VALUES (?)", [(n,) for n in range(50)])
    holder.commit()
    wal = database.with_name(database.name + "-wal")
    assert wal.stat().st_size > 0
    log_copy, db_copy = wal.read_bytes(), database.read_bytes()
    holder.close()
    database.write_bytes(db_copy)
    wal.write_bytes(log_copy)  # as a crash leaves them
    restore(database)
    assert not wal.exists() or wal.stat().st_size == 0
    assert _rows(database) == 2


def test_daily_backup_runs_in_its_own_thread(tmp_path: Path) -> None:
    database = _database(tmp_path / "appliance.db", 4)
    schedule = BackupSchedule(database, keep=2, interval=3600, first_delay=0.01,
                              check_every=0.01)
    schedule.start()
    try:
        made = wait_for(lambda: backups(database), timeout=30, message="a backup")
        assert _rows(made[0]) == 4
        assert not schedule.due()  # the next one waits for the interval
    finally:
        schedule.stop()
    assert "db-backup" not in {t.name for t in threading.enumerate()}
    off = BackupSchedule(tmp_path / "other.db", keep=0, first_delay=0)
    off.start()  # 0 backups kept: no thread at all
    assert "db-backup" not in {t.name for t in threading.enumerate()}
    off.stop()


def test_the_backup_module_leaves_the_orm_out() -> None:
    """The command line and the gunicorn master check and back up the database with it; it
    brought Pony in (~0.1 s and its memory in the master) once it took the disk's words from
    the ORM's module."""
    probe = ("import sys, appliance.store.backups; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pony'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_a_damaged_database_names_the_newest_backup_to_restore(tmp_path: Path) -> None:
    database = _database(tmp_path / "appliance.db", 3)
    folder = make_backup(database, keep=5).parent
    older = folder / "appliance-20200101-000000.db"
    shutil.copy(backups(database)[0], older)
    newest = backups(database)[0]
    database.write_bytes(os.urandom(8192))
    with pytest.raises(DatabaseProblem) as raised:
        check_database(database)
    assert f"restore the newest backup ({newest.name})" in str(raised.value)
    assert older.name not in str(raised.value)


def test_a_database_the_service_cannot_open_says_what_to_check(tmp_path: Path) -> None:
    database = tmp_path / "appliance.db"
    database.mkdir()  # in place of the file: opened by no one, whoever the user is
    with pytest.raises(DatabaseProblem) as raised:
        check_database(database)
    assert str(raised.value) == (
        f"the database {database} cannot be opened (unable to open database file): check "
        "that the service's user may read and write it and its folder")


def test_a_restore_takes_no_damaged_backup(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    database = _database(tmp_path / "appliance.db", 3)
    with pytest.raises(DatabaseProblem, match=r"there is no backup in .*backups$"):
        restore(database)
    first = make_backup(database, keep=5)
    second = first.with_name("appliance-20200101-000000.db")
    for backup in (first, second):
        backup.write_bytes(b"not a database at all" * 100)
    with caplog.at_level(logging.WARNING, logger="appliance.store.backups"), \
            pytest.raises(DatabaseProblem, match=r"no backup in .* is sound"):
        restore(database)
    assert [r.getMessage() for r in caplog.records] == [
        f"backup {b} is not usable: file is not a database" for b in (first, second)]
    assert _rows(database) == 3 and backups(database) == [first, second]  # all left as is
    missing = first.with_name("appliance-20190101-000000.db")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="appliance.store.backups"), \
            pytest.raises(DatabaseProblem) as raised:
        restore(database, missing)
    assert str(raised.value) == f"the backup {missing} is not usable (no such file)"
    assert caplog.records == []  # the one asked for is said once (`db restore` printed it twice)


def test_a_restore_over_a_damaged_database_keeps_it_and_its_log_aside(tmp_path: Path) -> None:
    database = _database(tmp_path / "appliance.db", 3)
    make_backup(database, keep=3)
    garbage, log = os.urandom(64 * 1024), os.urandom(4096)
    database.write_bytes(garbage)
    database.with_name(database.name + "-wal").write_bytes(log)  # as a crash leaves it
    chosen, aside = restore(database)
    assert chosen == backups(database)[0] and _rows(database) == 3
    assert aside is not None and aside.name.startswith("appliance.db.corrupt-")
    assert aside.read_bytes() == garbage
    assert aside.with_name(aside.name + "-wal").read_bytes() == log
    assert not database.with_name(database.name + "-wal").exists()


def test_a_restore_takes_no_empty_file_and_no_other_programs_database(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite reads an empty file (a copy cut short at its first write: a full disk, a pulled
    USB stick) and another program's database as sound: either was restored, the newest first,
    and the service started on an empty history."""
    database = _database(tmp_path / "appliance.db", 3)
    good = make_backup(database, keep=5)
    later = [time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() + m)) for m in (120, 60)]
    empty = good.with_name(f"appliance-{later[0]}.db")  # the newest
    empty.write_bytes(b"")
    foreign = good.with_name(f"appliance-{later[1]}.db")
    with sqlite3.connect(foreign) as other:
        other.execute("CREATE TABLE photos (name TEXT)")
    other.close()
    _database(database, 10)
    with caplog.at_level(logging.WARNING, logger="appliance.store.backups"):
        chosen, aside = restore(database)
    assert chosen == good and _rows(database) == 3
    assert aside is not None and _rows(aside) == 13
    assert [r.getMessage() for r in caplog.records] == [
        f"backup {empty} is not usable: the file is empty",
        f"backup {foreign} is not usable: it is no database of this service: it has no "
        "items table"]
    for refused, why in ((empty, "the file is empty"),
                         (foreign, "it is no database of this service: it has no items table")):
        with pytest.raises(DatabaseProblem) as raised:
            restore(database, refused)
        assert str(raised.value) == f"the backup {refused} is not usable ({why})"
    assert _rows(database) == 3 and empty.read_bytes() == b""  # left as they were


def test_a_backup_made_while_the_clock_was_years_ahead_stops_nothing(tmp_path: Path) -> None:
    """A box whose clock was once set years ahead (a bad RTC, a typo in `date -s`) made a
    backup stamped then. Newest by its name, it kept the daily backup waiting for its date,
    for good, and every later backup was the one rolled away at once."""
    database = _database(tmp_path / "appliance.db", 3)
    schedule = BackupSchedule(database, keep=2)
    made = make_backup(database, keep=2)
    two_days_ago = time.time() - 2 * 24 * 3600
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(two_days_ago))
    real = made.with_name(f"appliance-{stamp}.db")
    made.rename(real)
    os.utime(real, (two_days_ago, two_days_ago))
    ahead = real.with_name("appliance-20991231-120000.db")
    shutil.copy(real, ahead)
    os.utime(ahead, (4102401600, 4102401600))  # (what its clock said: 2099-12-31)
    assert backups(database) == [real, ahead]  # the wrong clock's counts as the oldest
    assert schedule.due()
    newest = make_backup(database, keep=2)
    assert backups(database) == [newest, real]  # the wrong clock's rolled away first
    assert not schedule.due()
    restored, _ = restore(database)
    assert restored == newest


def test_what_a_backup_cut_short_left_is_swept(tmp_path: Path) -> None:
    """A kill -9 or a power cut while a backup was written left its temporary file, as large
    as the database, hidden in the backups folder for good: one more at each such stop."""
    database = _database(tmp_path / "appliance.db", 3)
    first = make_backup(database, keep=3)
    cut_short = first.parent / f".{first.name}.4242.0badf00d.tmp"  # as replace_with names it
    shutil.copy(first, cut_short)
    days_ago = time.time() - 3 * 24 * 3600
    os.utime(cut_short, (days_ago, days_ago))
    being_written = first.parent / f".{first.name}.4343.feedf00d.tmp"  # another process's
    being_written.write_bytes(b"")
    mine = first.parent / ".appliance-notes.txt.tmp"  # no backup's
    mine.write_bytes(b"")
    os.utime(mine, (days_ago, days_ago))
    make_backup(database, keep=3)
    assert not cut_short.exists()
    assert being_written.exists() and mine.exists()


def test_a_restore_the_disk_cannot_take_leaves_the_database_where_it_was(
        tmp_path: Path) -> None:
    """The old file was moved aside before the copy: on a full disk the copy failed and the
    database was gone from its place, so the next start made an empty one."""
    folder = tmp_path / "config"
    with tmpfs(folder, "size=2m"):
        database = _database(folder / "appliance.db", 20_000)
        make_backup(database, keep=3)
        _database(database, 5)
        filler = fill(folder)
        with pytest.raises(OSError) as raised:
            restore(database)
        assert raised.value.errno == errno.ENOSPC
        assert sorted(p.name for p in folder.iterdir()) == [
            "appliance.db", "backups", "filler"]  # nothing aside, no copy left
        filler.unlink()
        assert _rows(database) == 20_005  # (a read on a full disk cannot make its -shm)
        _, aside = restore(database)  # once there is room
        assert _rows(database) == 20_000 and aside is not None and _rows(aside) == 20_005


def test_a_log_left_without_its_database_is_not_replayed_into_the_restored_one(
        tmp_path: Path) -> None:
    """`rm appliance.db` leaves its -wal beside: SQLite replayed that log, another file's
    pages, into the restored database."""
    database = _database(tmp_path / "appliance.db", 3)
    make_backup(database, keep=3)
    holder = sqlite3.connect(database)
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.executemany("INSERT INTO items VALUES (?)", [(n,) for n in range(50)])
    holder.commit()
    wal = database.with_name(database.name + "-wal")
    log = wal.read_bytes()
    holder.close()
    database.unlink()
    wal.write_bytes(log)  # as the person's rm left it
    _, aside = restore(database)
    assert aside is None and _rows(database) == 3
    [kept] = tmp_path.glob("appliance.db.left-*-wal")
    assert kept.read_bytes() == log


def test_a_daily_backup_the_disk_cannot_take_is_said_and_made_once_there_is_room(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The log said "database backup failed: database or disk is full", naming no folder."""
    folder = tmp_path / "config"
    with tmpfs(folder, "size=2m"):
        database = _database(folder / "appliance.db", 20_000)
        filler = fill(folder)
        schedule = BackupSchedule(database, keep=2, interval=3600, first_delay=0.01,
                                  check_every=0.05)
        with caplog.at_level(logging.ERROR, logger="appliance.store.backups"):
            schedule.start()
            try:
                said = wait_for(lambda: caplog.records, timeout=30, message="the failure")
                filler.unlink()
                made = wait_for(lambda: backups(database), timeout=30,
                                message="the backup once there is room")
            finally:
                schedule.stop()
        assert said[0].getMessage().startswith(
            f"The database backup into {folder / 'backups'} failed: ")
        assert "free). The backups made before are kept; it is tried again in " in \
            said[0].getMessage()
        assert _rows(made[0]) == 20_000


def test_a_database_damaged_while_the_service_runs_rolls_no_sound_backup_away(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLite's backup copies pages as they are: a database damaged behind the running
    service was backed up each day as it was, and each such copy rolled a sound backup away;
    after YTP_DB_BACKUPS days there was none left to restore."""
    database = _database(tmp_path / "config" / "appliance.db", 20_000)
    sound = make_backup(database, keep=2)
    data = bytearray(database.read_bytes())
    page = 4096
    data[3 * page:4 * page] = b"\xa5" * page  # a table page, the header sound
    database.write_bytes(bytes(data))
    with pytest.raises(DatabaseProblem) as raised:
        make_backup(database, keep=1)
    assert str(raised.value).startswith(f"the database {database} is damaged (")
    assert str(raised.value).endswith(
        "): no backup was made of it and the backups made before are kept; stop the service "
        "and restore the newest sound one with `appliance db restore`")
    assert backups(database) == [sound] and _rows(sound) == 20_000
    assert [p.name for p in sound.parent.iterdir()] == [sound.name]  # no copy left behind
    # The daily thread says so and lives on: the next look (here at once) tries again.
    schedule = BackupSchedule(database, keep=1, interval=0.01, first_delay=0.01,
                              check_every=0.05)
    with caplog.at_level(logging.ERROR, logger="appliance.store.backups"):
        schedule.start()
        try:
            said = wait_for(lambda: len(caplog.records) >= 2 and caplog.records, timeout=30,
                            message="two tries, each said")
            thread = schedule._thread
            assert thread is not None and thread.is_alive()
        finally:
            schedule.stop()
    assert not thread.is_alive()  # its stop ends it, and no try comes after
    tries = len(caplog.records)
    assert "is damaged (" in said[0].getMessage()
    assert backups(database) == [sound] and _rows(sound) == 20_000
    assert len(caplog.records) == tries
