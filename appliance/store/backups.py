"""The database file's health and its rolling backups: checked before the service starts,
copied once a day with SQLite's online backup API, restored by ``appliance db restore``.

Plain ``sqlite3``, no Pony: the command line and the gunicorn master use this module, and
they should not load the ORM for it.

Backups are ``<config>/backups/appliance-YYYYmmdd-HHMMSS.db`` (UTC), written to a temporary
file and renamed, in rollback-journal mode so that opening one leaves no ``-wal`` beside it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from ..atomic import fsync_path, replace_with
from ..units import human_duration
from .space import disk_full, free_space

log = logging.getLogger(__name__)

FOLDER = "backups"
PREFIX = "appliance-"
SUFFIX = ".db"
DAY = 24 * 3600.0
# After a start, the first backup (if one is due) waits this long: a start is not slowed, and
# a service that crashes at once does not replace good backups with copies of a bad state.
FIRST_DELAY = 300.0
# A backup's name: its UTC time. Another file in the folder is no backup (a person's).
_NAME = re.compile(re.escape(PREFIX) + r"(\d{8}-\d{6})" + re.escape(SUFFIX))
# A backup stamped further ahead than this was made by a clock that was wrong (see backups).
AHEAD = DAY
# The table every database of the service holds (store/database.py): what a backup must have.
HISTORY_TABLE = "items"
# Files beside the database that belong to it: they move aside with it on a restore.
COMPANIONS = ("-wal", "-shm")


class DatabaseProblem(Exception):
    """The database cannot be used; the message is one line that names the file and what to
    do."""


def backup_folder(database: Path) -> Path:
    return database.parent / FOLDER


def backups(database: Path) -> list[Path]:
    """The backups of ``database``, newest first. One stamped more than ``AHEAD`` after now
    was made while the clock was wrong (set years ahead once, a bad RTC), and counts as the
    oldest: as the newest, the daily backup waited for its date (for good) and every later
    backup was the one rolled away."""
    folder = backup_folder(database)
    if not folder.is_dir():
        return []
    found = sorted(((m[1], p) for p in folder.iterdir()
                    if (m := _NAME.fullmatch(p.name)) and p.is_file()), reverse=True)
    later = _stamp(time.time() + AHEAD)
    return [p for s, p in found if s <= later] + [p for s, p in found if s > later]


def _stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).strftime(
        "%Y%m%d-%H%M%S")


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    # mode=rw/ro: never create a file that is not there. The live database is opened for
    # writing so that a log left by a crash is replayed, as the service would.
    return sqlite3.connect(f"file:{path}?mode={'ro' if readonly else 'rw'}", uri=True)


def _check(db: sqlite3.Connection, pragma: str) -> str | None:
    rows = db.execute(f"PRAGMA {pragma}(1)").fetchall()
    result = rows[0][0] if rows else "no answer"
    # SQLite's report spans lines ("*** in database main ***\nPage 3: ..."); the problem is
    # said in one line (see DatabaseProblem).
    return None if result == "ok" else " ".join(str(result).split())


def soundness(path: Path) -> str | None:
    """None when the backup ``path`` is a sound SQLite database, else what is wrong with it
    (``integrity_check``: every page, every index against its table)."""
    try:
        with contextlib.closing(_connect(path, readonly=True)) as db:
            return _check(db, "integrity_check")
    except sqlite3.DatabaseError as exc:
        return str(exc)


def backup_problem(path: Path) -> str | None:
    """None when ``path`` can stand in for the service's database, else why not: it must be
    sound and hold the history. SQLite reads an empty file (a copy cut short at its first
    write) and another program's database as sound ones, and a restore of either emptied the
    history."""
    if not path.is_file():
        return "no such file"
    if path.stat().st_size == 0:
        return "the file is empty"
    problem = soundness(path)
    if problem is not None:
        return problem
    try:
        with contextlib.closing(_connect(path, readonly=True)) as db:
            ours = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                              f"'{HISTORY_TABLE}'").fetchone()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if ours else f"it is no database of this service: it has no {HISTORY_TABLE} table"


def check_database(database: Path) -> None:
    """Raise DatabaseProblem when the database exists but cannot be used. A missing file is
    fine: the service creates it. ``quick_check`` reads every page (a second or two for a
    large history on a Raspberry Pi) but skips the index cross-checks."""
    if not database.exists():
        return
    try:
        with contextlib.closing(_connect(database, readonly=False)) as db:
            problem = _check(db, "quick_check")
    except sqlite3.OperationalError as exc:
        remedy = (f"the disk holding it is full ({free_space(database.parent)}): free some "
                  "space" if disk_full(database.parent) else "check that the service's user "
                  "may read and write it and its folder")
        raise DatabaseProblem(f"the database {database} cannot be opened ({exc}): {remedy}"
                              ) from None
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    if problem is None:
        return
    newest = backups(database)
    remedy = (f"stop the service and restore the newest backup ({newest[0].name}) with "
              "`appliance db restore`" if newest else
              f"there is no backup in {backup_folder(database)}; move the file aside to "
              "start with an empty database")
    raise DatabaseProblem(f"the database {database} is damaged ({problem}): {remedy}")


def make_backup(database: Path, keep: int) -> Path:
    """Copy the live database (the service may be writing) to a new backup; keep the newest
    ``keep`` and delete older ones. Returns the new backup. A copy that is not sound (the
    database damaged behind the service) is no backup: DatabaseProblem, and every backup
    made before is kept. (SQLite copies pages as they are: a damaged database was backed up
    each day, and each copy rolled a sound backup away, until none was left to restore.)"""
    target = backup_folder(database) / f"{PREFIX}{_stamp()}{SUFFIX}"

    def fill(temp: Path) -> None:
        with contextlib.closing(_connect(database, readonly=False)) as src, \
                contextlib.closing(sqlite3.connect(temp)) as dst:
            src.backup(dst)  # one step: a consistent snapshot; WAL writers are not blocked
            dst.execute("PRAGMA journal_mode = DELETE")
            # (every page read: a second or two for a large history on a Raspberry Pi)
            problem = _check(dst, "quick_check")
        if problem is not None:
            raise DatabaseProblem(
                f"the database {database} is damaged ({problem}): no backup was made of it "
                f"and the backups made before are kept; stop the service and restore the "
                f"newest sound one with `appliance db restore`")

    replace_with(target, fill)
    for old in backups(database)[max(keep, 1):]:
        with contextlib.suppress(OSError):
            old.unlink()
    _sweep(target.parent)
    return target


def _sweep(folder: Path) -> None:
    """Delete what backups cut short left (a kill -9 or a power cut while one was written:
    its temporary file, as large as the database, stayed hidden in the folder for good).
    Only those a day old: a younger one may be a backup another process is writing now."""
    for temp in folder.glob(f".{PREFIX}*{SUFFIX}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - temp.stat().st_mtime > DAY:
                temp.unlink()
                log.info("deleted %s, left by a backup cut short", temp)


def restore(database: Path, backup: Path | None = None) -> tuple[Path, Path | None]:
    """Put ``backup`` (else the newest sound one) in place of ``database``, which is kept
    aside as ``<name>.corrupt-<time>`` (``.replaced-<time>`` when it was sound). Returns
    (the backup restored, where the old file went). The service must not be running."""
    candidates = [backup] if backup is not None else backups(database)
    if not candidates:
        raise DatabaseProblem(f"there is no backup in {backup_folder(database)}")
    chosen = None
    for candidate in candidates:
        problem = backup_problem(candidate)
        if problem is None:
            chosen = candidate
            break
        if backup is not None:  # the one asked for: said once, by the error
            raise DatabaseProblem(f"the backup {candidate} is not usable ({problem})")
        log.warning("backup %s is not usable: %s", candidate, problem)
    if chosen is None:
        raise DatabaseProblem(f"no backup in {backup_folder(database)} is sound")
    aside: Path | None = None

    def fill(temp: Path) -> None:
        nonlocal aside
        shutil.copyfile(chosen, temp)
        # The copy whole on the disk before the old file moves: a restore that failed (a
        # full disk) had moved it aside already, and the next start made an empty one.
        fsync_path(temp)
        aside = _set_aside(database)

    replace_with(database, fill)
    return chosen, aside


def _set_aside(database: Path) -> Path | None:
    """Move ``database`` and its log aside (see ``restore``); where the database went. A log
    left without its database (the file deleted by hand) goes too: SQLite would replay it
    into the restored file, pages of another database."""
    label = "left"
    if database.exists():
        # Read-only: a check that may write replays the old log into the file it judges, or
        # deletes a log it cannot use, and the damaged file was kept aside without it.
        label = "replaced" if soundness(database) is None else "corrupt"
    aside = database.with_name(f"{database.name}.{label}-{_stamp()}")
    # The old log must not be replayed into the restored file: it goes aside too, named so
    # that SQLite finds it beside the kept file.
    for companion in COMPANIONS:
        old = database.with_name(database.name + companion)
        if old.exists():
            old.rename(aside.with_name(aside.name + companion))
    if not database.exists():
        return None
    database.rename(aside)
    return aside


class BackupSchedule:
    """A daily backup in a thread of its own (never a request thread): due when the newest
    backup is a day old; checked every hour, so a suspended or restarted box catches up."""

    def __init__(self, database: Path, keep: int, *, interval: float = DAY,
                 first_delay: float = FIRST_DELAY, check_every: float = 3600.0) -> None:
        self.database = database
        self.keep = keep
        self.interval = interval
        self.first_delay = first_delay
        self.check_every = check_every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self) -> bool:
        newest = backups(self.database)
        if not newest:
            return True
        age = time.time() - newest[0].stat().st_mtime
        return age >= self.interval or age < -AHEAD  # (made while the clock was ahead)

    def start(self) -> None:
        if self.keep <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="db-backup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        wait = self.first_delay
        while not self._stop.wait(wait):
            wait = min(self.check_every, self.interval)
            try:
                if not self.due():
                    continue
                path = make_backup(self.database, self.keep)
            except (OSError, sqlite3.Error, DatabaseProblem) as exc:
                # (due() too: a backup another process rolled away under it ended the thread,
                # and with it every backup until a restart)
                folder = backup_folder(self.database)
                log.error("The database backup into %s failed: %s (%s). The backups made "
                          "before are kept; it is tried again in %s.", folder, exc,
                          free_space(folder), human_duration(wait))
            else:
                log.info("database backed up to %s", path)
