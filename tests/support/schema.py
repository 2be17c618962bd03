"""A database's schema as text (what a snapshot in tests/data/schemas holds) and as a shape
to compare (columns as sets: a migration's ALTER TABLE adds a column at the end).

``.venv/bin/python tests/support/schema.py > tests/data/schemas/<YYYY-MM-DD>.sql`` saves the
schema a new database has now, once its migration for older databases is written (a second
change on one day: ``<YYYY-MM-DD>T<HH>.sql``, which sorts after the day's first)."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

# Tables SQLite makes itself: for AUTOINCREMENT, and the full-text index's shadow tables.
MADE_BY_SQLITE = ("sqlite_", "items_search_")


def _objects(db: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL"
                      " ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END,"
                      " name").fetchall()
    return [row for row in rows if not (row[0] == "table" and row[1].startswith(MADE_BY_SQLITE))]


def schema_sql(path: Path) -> str:
    with sqlite3.connect(path) as db:
        return "".join(f"{sql};\n" for *_, sql in _objects(db))


def shape(path: Path) -> dict[str, Any]:
    """Each table's columns (name, type, not null, key; not the default, which a column a
    migration adds NOT NULL must have) and indexes, each trigger's and virtual table's text,
    whitespace folded."""
    with sqlite3.connect(path) as db:
        found: dict[str, Any] = {}
        for kind, name, table, sql in _objects(db):
            if kind == "table" and not sql.upper().startswith("CREATE VIRTUAL"):
                found[f"table {name}"] = {(column, kind, not_null, key) for _, column, kind,
                                          not_null, _default, key in
                                          db.execute(f'PRAGMA table_info("{name}")')}
                # What its own UNIQUE and PRIMARY KEY make (their indexes have no SQL of
                # their own, so the list above misses them: a name no longer unique passed)
                found[f"keys {name}"] = sorted(
                    (origin, tuple(row[2] for row in db.execute(
                        f'PRAGMA index_info("{index}")')))
                    for _, index, _unique, origin, _partial in
                    db.execute(f'PRAGMA index_list("{name}")') if origin != "c")
            elif kind == "index":
                columns = tuple(row[2] for row in db.execute(f'PRAGMA index_info("{name}")'))
                found[f"index {name}"] = (table, columns, "UNIQUE" in sql.upper())
            else:
                found[f"{kind} {name}"] = " ".join(sql.split())
        return found


def new_database(folder: Path) -> Path:
    from appliance.store.database import open_database

    path = folder / "new.db"
    db, _ = open_database(path)
    db.disconnect()
    return path


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        sys.stdout.write(schema_sql(new_database(Path(scratch))))
