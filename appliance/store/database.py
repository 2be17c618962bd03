"""The SQLite database: entities, pragmas, mapping, write sessions. The only module that
defines tables.

Entities are defined inside ``open_database`` so that each ``Database`` is independent: a test
can open several in one process, and the worker opens its own after fork.

Durability is chosen per write. Every commit is in the operating system before the change is
announced, so a crashed or killed service loses nothing. Surviving a power cut as well needs
the log on the disk itself (``fdatasync``), and under a download's writeback that wait was
0.1-0.7 s here, seconds on an SD card, often with the engine's lock held. So only writes that
record what a person asked for (an added URL, a deletion, an edited preset) wait for the
disk; the engine's own transitions (preparing, downloading, finished, ...) do not: a power
cut can take them back to an earlier state, and on restart the engine does that part again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import sqlite3
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pony import orm
from pony.orm.dbapiprovider import DBException

from ..errors import INSUFFICIENT_STORAGE, UNAVAILABLE, AppError
from .backups import FOLDER as BACKUPS
from .space import free_space

log = logging.getLogger(__name__)

# How long a write waits for another connection's write lock before SQLite gives up
# ("database is locked"). The service is the only writer but for a person's tools.
BUSY_TIMEOUT_MS = 10_000
# What a stop waits for a writer before it leaves the log as it is (see fold_log).
FOLD_WAIT = 2.0
_FIX_THE_DISK = "Free some space or fix the disk, then try again."


@dataclasses.dataclass(frozen=True)
class _Fault:
    """What SQLite (or the disk under it) says when the request itself is not at fault: the
    words for it, whether it is a full disk (507) or one that cannot be used now (503), and
    what to do."""

    said: str
    words: str
    full: bool = False
    remedy: str = _FIX_THE_DISK
    disk: bool = True  # (the free space is worth saying)


# A file damaged or replaced behind the service: only a backup brings its history back.
_RESTORE = ("Stop the service and put a backup in its place with `appliance db restore` (the "
            "backups are in {backups}), then start it again.")
_DISK_FAULTS = (
    _Fault("database or disk is full", "the disk is full", full=True),
    _Fault("disk I/O error", "the disk failed (an I/O error)"),
    _Fault("readonly database", "the disk or the database file is read-only"),
    # A write lock held past BUSY_TIMEOUT_MS by another program (an admin's sqlite3 shell in
    # a transaction, a backup tool). It was a 500, and a download thread's state write
    # raised: the thread died holding its download process, the item stuck until a restart.
    _Fault("database is locked", "another program holds a lock on it (an sqlite3 shell, a "
           "backup tool)", remedy="Close that program or end its transaction; the service "
           "goes on by itself then.", disk=False),
    # What reads meet too (they were a 500 with a traceback, at every request): a file
    # damaged, cut short or overwritten behind the service, or a folder whose disk went.
    _Fault("database disk image is malformed", "the file is damaged (SQLite finds it "
           "malformed)", remedy=_RESTORE, disk=False),
    _Fault("file is not a database", "the file is no longer a database (overwritten or cut "
           "short behind the service)", remedy=_RESTORE, disk=False),
    _Fault("no such table", "its tables are gone (the file was emptied or replaced behind "
           "the service)", remedy=_RESTORE, disk=False),
    _Fault("unable to open database file", "the file cannot be opened (its folder or its "
           "disk is gone)", remedy="Mount its disk again or put the folder back, then restart "
           "the service.", disk=False),
)
# The file at the database's path is not the one opened: every fault follows from that.
_NOT_THE_FILE = _Fault("", "the file is not the one the service opened (its disk was "
                       "unmounted, or the file was moved, deleted or replaced behind the "
                       "service)", remedy="Mount its disk again or put the file back, then "
                       "restart the service; if it is lost, restore a backup with `appliance "
                       "db restore` (the backups are in {backups}).", disk=False)
_DISK_ERRNOS = {errno.ENOSPC: _DISK_FAULTS[0], errno.EDQUOT: _DISK_FAULTS[0],
                errno.EIO: _DISK_FAULTS[1], errno.EROFS: _DISK_FAULTS[2]}


# A unique index refusing a row: at an explicit flush (the driver's error) or at the commit.
# A name checked free, then taken by another request before this one's write, ends here.
UNIQUE_REFUSED = (orm.IntegrityError, orm.TransactionIntegrityError)


class StorageFailure(AppError):
    """A write the database's disk refused (full, read-only or failing) or that another
    program's lock kept out: nothing of the refused write was stored; what was stored before
    is kept. Or a read of a file that is damaged or gone."""

# The write-ahead log of each open database (see write_session).
_WAL_FILES: weakref.WeakKeyDictionary[orm.Database, Path] = weakref.WeakKeyDictionary()
# The (device, inode) of each open database's file: a disk unmounted under the service left
# an empty folder where SQLite made a new, empty database ("no such table") at the next
# connection, which is no damaged file to restore but the file's disk gone.
_OPENED: weakref.WeakKeyDictionary[orm.Database, tuple[int, int]] = weakref.WeakKeyDictionary()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _define_entities(db: orm.Database) -> SimpleNamespace:
    from .tasks import define_task_entities  # tasks.py uses write_session from here

    class ItemRow(db.Entity):
        _table_ = "items"
        id = orm.PrimaryKey(str)
        # 'queue' while the item is waiting or running, 'done' once it is history.
        kind = orm.Required(str)
        status = orm.Required(str)
        url = orm.Required(str)
        title = orm.Optional(str)
        preset = orm.Optional(str)
        folder = orm.Optional(str)
        template = orm.Optional(str)
        cookies = orm.Optional(orm.LongStr, lazy=False)
        cli = orm.Optional(str)
        auto_start = orm.Required(bool, default=True)
        extractor = orm.Optional(str)
        video_id = orm.Optional(str)
        batch_id = orm.Optional(str, index=True)
        batch_name = orm.Optional(str)
        created_at = orm.Required(float)
        updated_at = orm.Required(float)
        started_at = orm.Optional(float)
        finished_at = orm.Optional(float)
        filename = orm.Optional(str)
        file_size = orm.Optional(int, size=64)
        file_mtime_ns = orm.Optional(int, size=64)
        downloaded_bytes = orm.Optional(int, size=64)
        total_bytes = orm.Optional(int, size=64)
        error = orm.Optional(str)
        msg = orm.Optional(str)
        info = orm.Optional(orm.Json)
        extras = orm.Optional(orm.Json)
        removed_options = orm.Optional(orm.Json)
        download_folder = orm.Optional(str)

    class DownloadFolderRow(db.Entity):
        """Every folder the settings have named as the download folder: files of items may
        be there, and nowhere else."""
        _table_ = "download_folders"
        path = orm.PrimaryKey(str)

    class PresetRow(db.Entity):
        _table_ = "presets"
        id = orm.PrimaryKey(int, auto=True)
        name = orm.Required(str, unique=True)
        description = orm.Optional(str)
        folder = orm.Optional(str)
        template = orm.Optional(str)
        cookies = orm.Optional(orm.LongStr, lazy=False)
        cli = orm.Optional(orm.LongStr, lazy=False)
        nfo = orm.Optional(str)
        builtin = orm.Required(bool, default=False)
        priority = orm.Required(int, default=0)

    class DlFieldRow(db.Entity):
        _table_ = "dl_fields"
        id = orm.PrimaryKey(int, auto=True)
        name = orm.Required(str, unique=True)
        description = orm.Optional(str)
        field = orm.Required(str)
        kind = orm.Required(str)
        order = orm.Required(int, default=0)
        value = orm.Optional(str)
        icon = orm.Optional(str)
        extras = orm.Optional(orm.Json)

    class ConditionRow(db.Entity):
        _table_ = "conditions"
        id = orm.PrimaryKey(int, auto=True)
        name = orm.Required(str, unique=True)
        filter = orm.Required(orm.LongStr, lazy=False)
        cli = orm.Optional(orm.LongStr, lazy=False)
        extras = orm.Optional(orm.Json)
        enabled = orm.Required(bool, default=True)
        priority = orm.Required(int, default=0)
        description = orm.Optional(str)

    class NotificationTargetRow(db.Entity):
        _table_ = "notification_targets"
        id = orm.PrimaryKey(int, auto=True)
        name = orm.Required(str, unique=True)
        on = orm.Optional(orm.Json)  # event names; empty: all
        presets = orm.Optional(orm.Json)  # preset names; empty: all
        enabled = orm.Required(bool, default=True)
        # {type: json|form, method: POST|PUT, url, data_key, headers: [{key, value}]}
        request = orm.Required(orm.Json)
        last_status = orm.Optional(str)  # ok | failed; empty until the first delivery
        last_error = orm.Optional(orm.LongStr, lazy=False)
        last_sent_at = orm.Optional(float)

    class NotificationOutboxRow(db.Entity):
        """A notice waiting for a target until it is delivered or given up (store/outbox.py)."""
        _table_ = "notification_outbox"
        id = orm.PrimaryKey(int, auto=True)  # ascends: the order the notices came in
        target = orm.Required(str, index=True)  # the target's key: db:<id> or file:<digest>
        delivery = orm.Required(str)  # its delivery id, the same at every try
        notice = orm.Required(orm.LongStr, lazy=False)  # JSON, read back by notify/outbox.py
        attempts = orm.Required(int, default=0)
        next_at = orm.Optional(float)  # Unix time the next try is due, after a failure

    return SimpleNamespace(Item=ItemRow, DownloadFolder=DownloadFolderRow, Preset=PresetRow,
                           DlField=DlFieldRow, Condition=ConditionRow,
                           NotificationTarget=NotificationTargetRow,
                           NotificationOutbox=NotificationOutboxRow,
                           **define_task_entities(db))


# Every list the API offers filters on kind (+ status) and sorts by creation time, then id
# (store/order.py: the id breaks a tie). Pony refuses float columns in composite_index, so
# these are declared in SQL. The status rides at the end of the (kind, created_at, id) index
# so that "status != x" pages are answered from the index alone, without reading every row
# they skip. The indexes of the order by creation time alone are replaced (an upgrade builds
# these once: 0.7 s at 100,000 items, on the shared 2-core box at a load of 15).
_INDEXES = (
    "DROP INDEX IF EXISTS idx_items_kind_created",
    "DROP INDEX IF EXISTS idx_items_kind_created_status",
    "DROP INDEX IF EXISTS idx_items_kind_status_created",
    "DROP INDEX IF EXISTS idx_items_kind_batch_created",
    "CREATE INDEX IF NOT EXISTS idx_items_kind_created_id_status "
    "ON items (kind, created_at, id, status)",
    "CREATE INDEX IF NOT EXISTS idx_items_kind_status_created_id "
    "ON items (kind, status, created_at, id)",
    # The items of a file or a folder's files (the file browser's actions, a delete's check of
    # who else records a file): a scan of 100,000 rows for each file was ~0.3 s.
    "CREATE INDEX IF NOT EXISTS idx_items_filename ON items (filename)",
    # Flasharr's display rows page the history's items of no batch (batch_id ''): through
    # the (kind, created_at) index every row it passed was read for its batch_id, 40 ms at
    # page 100 of 100,000 items.
    "CREATE INDEX IF NOT EXISTS idx_items_kind_batch_created_id ON items (kind, batch_id, "
    "created_at, id)",
)


# Search over titles and URLs (store/search.py): an FTS5 trigram index whose content is the
# items table itself, kept by triggers. It names rows by rowid, which SQLite keeps as long as
# the table is not VACUUMed (a VACUUM must be followed by the index's 'rebuild').
_SEARCH_INDEX = (
    "CREATE VIRTUAL TABLE items_search USING fts5(title, url, content='items', "
    "content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER items_search_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_search (rowid, title, url) VALUES (new.rowid, new.title, new.url); END",
    "CREATE TRIGGER items_search_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_search (items_search, rowid, title, url) "
    "VALUES ('delete', old.rowid, old.title, old.url); END",
    "CREATE TRIGGER items_search_update AFTER UPDATE OF title, url ON items BEGIN "
    "INSERT INTO items_search (items_search, rowid, title, url) "
    "VALUES ('delete', old.rowid, old.title, old.url); "
    "INSERT INTO items_search (rowid, title, url) VALUES (new.rowid, new.title, new.url); END",
    "INSERT INTO items_search (items_search) VALUES ('rebuild')",  # the rows already there
)


def _create_search_index(db: orm.Database) -> None:
    """Once per database (100,000 items: ~1 s). An SQLite without FTS5's trigram tokenizer
    (before 3.34) gets none: searches then read every row (``LIKE``)."""
    with orm.db_session:
        if db.exists("SELECT 1 FROM sqlite_master WHERE name = 'items_search'"):
            return
        try:
            for statement in _SEARCH_INDEX:
                db.execute(statement)
        except orm.dbapiprovider.OperationalError:
            orm.rollback()
            log.warning("this SQLite has no FTS5 trigram index: searches read every item")
            return
    log.info("search index built")


def has_search_index(db: orm.Database) -> bool:
    with orm.db_session:
        return db.exists("SELECT 1 FROM sqlite_master WHERE name = 'items_search'")


def _add_download_folder(db: orm.Database, download_folder: Path | None) -> None:
    """Databases made before items recorded their download folder get the column. Their
    rows are taken to be in the folder configured now, at the migration: the only folder
    the service knows, and the one their ``filename`` was joined to until then."""
    with orm.db_session:
        columns = {row[1] for row in db.execute("PRAGMA table_info(items)").fetchall()}
        if not columns or "download_folder" in columns:
            return  # a new database, or one already migrated
        db.execute("ALTER TABLE items ADD COLUMN download_folder TEXT NOT NULL DEFAULT ''")
        if download_folder is not None:
            db.execute("UPDATE items SET download_folder = $folder WHERE filename != ''",
                       {"folder": str(download_folder)})
    log.info("database migrated: items record their download folder")


def _add_column(db: orm.Database, table: str, column: str, definition: str, said: str
                ) -> None:
    """A database made before ``table`` had ``column`` gets it; ``said``: what the log
    says it now has."""
    with orm.db_session:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})").fetchall()}
        if not columns or column in columns:
            return  # a new database, or one already migrated
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    log.info("database migrated: %s", said)


# What rows of earlier versions hold that they must not, made right once each, in order:
# PRAGMA user_version counts the fixes a database has had. (what it says, the statement, its
# values: Pony reads "$name" in a statement as one)
_ROW_FIXES = (
    # yt-dlp's cookies for a site, kept in an item's info before engine/credentials.py.
    ("items' info holds no site cookies",
     "UPDATE items SET info = json_remove(info, $field) WHERE CASE WHEN json_valid(info) "
     "THEN json_type(info, $field) IS NOT NULL ELSE 0 END", {"field": "$.cookies"}),
)


def _fix_rows(db: orm.Database) -> None:
    with orm.db_session:
        done = db.execute("PRAGMA user_version").fetchone()[0]
        for number, (said, statement, values) in enumerate(_ROW_FIXES[done:], start=done + 1):
            changed = db.execute(statement, values).rowcount
            db.execute(f"PRAGMA user_version = {number}")
            log.info("database migrated: %s (%d rows)", said, changed)


def open_database(path: Path, download_folder: Path | None = None
                  ) -> tuple[orm.Database, SimpleNamespace]:
    """``download_folder``: the folder configured now (see ``_add_download_folder``)."""
    db = orm.Database()
    entities = _define_entities(db)

    @db.on_connect(provider="sqlite")
    def _pragmas(_db: orm.Database, connection: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode = WAL")
        # Commits reach the OS, not the disk; write_session(durable=True) adds the disk.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
        cursor.execute("PRAGMA foreign_keys = ON")

    path.parent.mkdir(parents=True, exist_ok=True)
    db.bind(provider="sqlite", filename=str(path), create_db=True)
    _WAL_FILES[db] = path.with_name(path.name + "-wal")
    _OPENED[db] = _identity(path) or (-1, -1)
    _add_download_folder(db, download_folder)
    # (empty: a delete of their files checks the size alone)
    _add_column(db, "items", "file_mtime_ns", "BIGINT",
                "items record their file's modification time")
    _add_column(db, "presets", "priority", "INTEGER NOT NULL DEFAULT 0",
                "presets have YTPTube's priority")
    _add_column(db, "tasks", "mark_pending", "BOOLEAN NOT NULL DEFAULT 0",
                "tasks keep a mark still to be made")
    db.generate_mapping(create_tables=True)
    with orm.db_session:
        for statement in _INDEXES:
            db.execute(statement)
    _fix_rows(db)
    _create_search_index(db)
    log.debug("database open at %s", path)
    return db, entities


@contextlib.contextmanager
def write_session(db: orm.Database, *, durable: bool = True, **options: Any) -> Iterator[None]:
    """A ``db_session`` for writes. Durable: once it returns, its commit survives a power cut
    (what ``synchronous = FULL`` does for every commit). A disk that refuses the write is a
    ``StorageFailure``."""
    with disk_faults_said(db), orm.db_session(**options):
        yield
    if durable:
        sync_to_disk(db)


@contextlib.contextmanager
def read_session(db: orm.Database) -> Iterator[None]:
    """A ``db_session`` for reads: a file or disk that fails them is a ``StorageFailure``
    (503), logged once (see ``_READ_FAULTS``)."""
    with disk_faults_said(db, reading=True), orm.db_session:
        yield


# The fault each database's reads last met and when it was said: said once in the log, not at
# every request a client repeats (and again only after SAY_AGAIN, while it lasts). Reads that
# work do not clear it: a thread whose connection still holds the pages it read works while
# the others fail, and each turn would be said again.
_READ_FAULTS: weakref.WeakKeyDictionary[orm.Database, tuple[str, float]] = (
    weakref.WeakKeyDictionary())
SAY_AGAIN = 600.0  # seconds


@contextlib.contextmanager
def disk_faults_said(db: orm.Database, *, reading: bool = False) -> Iterator[None]:
    """Turn the error of a write (or, ``reading``, a read) the disk or the file refused into a
    ``StorageFailure`` that says so in words, naming the folder and what to do; any other
    error passes as it is."""
    try:
        yield
    # (sqlite3's own: what a new connection's pragmas meet, before Pony wraps anything)
    except (orm.core.OrmError, DBException, sqlite3.Error, OSError) as exc:
        if isinstance(exc, OSError):
            fault = _DISK_ERRNOS.get(exc.errno or 0)
        else:
            fault = next((f for f in _DISK_FAULTS if f.said in str(exc)), None)
        if fault is None:
            raise
        wal = _WAL_FILES[db]
        if _identity(wal.with_name(wal.name.removesuffix("-wal"))) != _OPENED[db]:
            fault = _NOT_THE_FILE
        folder = wal.parent
        space = f" ({free_space(folder)})" if fault.disk else ""
        remedy = fault.remedy.format(backups=folder / BACKUPS)
        if reading:
            message = f"The database in {folder} could not be read: {fault.words}{space}. "
        else:
            message = (f"The database in {folder} could not be written: {fault.words}{space}. "
                       "Nothing of this change was stored; what was stored before is kept. ")
        said, at = _READ_FAULTS.get(db, ("", 0.0))
        if reading and (said != fault.words or time.monotonic() - at >= SAY_AGAIN):
            _READ_FAULTS[db] = (fault.words, time.monotonic())
            log.error("%s%s (SQLite: %s)", message, remedy, exc)
        raise StorageFailure(message + remedy,
                             INSUFFICIENT_STORAGE if fault.full else UNAVAILABLE) from exc


def fold_log(db: orm.Database) -> None:
    """Move every committed transaction from the write-ahead log into the database file and
    empty the log, as a service's stop does: a thread's connection left open (Pony keeps one
    per thread) kept SQLite from doing it at the last close, and the file alone, copied by a
    person while the service was stopped, lacked the last changes. Said, not raised: the log
    is replayed at the next start all the same."""
    wal = _WAL_FILES[db]
    path = wal.with_name(wal.name.removesuffix("-wal"))
    if _identity(path) != _OPENED[db]:  # moved or replaced behind the service: not ours
        return
    try:
        connection = sqlite3.connect(path, timeout=FOLD_WAIT)
        try:
            busy, *_ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        log.warning("the database's log %s could not be folded into it at the stop (%s): "
                    "it is read again at the next start", wal, exc)
        return
    if busy:
        log.warning("the database's log %s could not be folded into it at the stop (a "
                    "connection was still writing): it is read again at the next start", wal)


def sync_to_disk(db: orm.Database) -> None:
    """Put the write-ahead log on the disk: every transaction committed so far survives a
    power cut. No log means a checkpoint moved it all into the database file, and a
    checkpoint syncs that file itself."""
    try:
        fd = os.open(_WAL_FILES[db], os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
