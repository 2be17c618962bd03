"""The SQLite database: entities, pragmas, mapping. The only module that defines tables.

Entities are defined inside ``open_database`` so that each ``Database`` is independent: a test
can open several in one process, and the worker opens its own after fork.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

from pony import orm

log = logging.getLogger(__name__)


def _define_entities(db: orm.Database) -> SimpleNamespace:
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
        downloaded_bytes = orm.Optional(int, size=64)
        total_bytes = orm.Optional(int, size=64)
        error = orm.Optional(str)
        msg = orm.Optional(str)
        info = orm.Optional(orm.Json)
        extras = orm.Optional(orm.Json)
        removed_options = orm.Optional(orm.Json)

    return SimpleNamespace(Item=ItemRow)


# Every list the API offers filters on kind (+ status) and sorts by creation time. Pony refuses
# float columns in composite_index, so these are declared in SQL.
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS idx_items_kind_created ON items (kind, created_at)",
    "CREATE INDEX IF NOT EXISTS idx_items_kind_status_created ON items (kind, status, created_at)",
)


def open_database(path: Path) -> tuple[orm.Database, SimpleNamespace]:
    db = orm.Database()
    entities = _define_entities(db)

    @db.on_connect(provider="sqlite")
    def _pragmas(_db: orm.Database, connection: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a record the API acknowledged survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA foreign_keys = ON")

    path.parent.mkdir(parents=True, exist_ok=True)
    db.bind(provider="sqlite", filename=str(path), create_db=True)
    db.generate_mapping(create_tables=True)
    with orm.db_session:
        for statement in _INDEXES:
            db.execute(statement)
    log.debug("database open at %s", path)
    return db, entities
