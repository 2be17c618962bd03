"""A database made by an earlier version opens in this one as if it were new, its downloads
all there: people upgrade a service they run for years, and its database is their history.

tests/data/schemas holds the schema of each version that changed it. A new database must
have the newest one: a change to the schema fails here until a migration for the databases
made before it is written (appliance/store/database.py, ``open_database``) and the new schema
is saved as a snapshot (tests/support/schema.py says how). Every snapshot, opened by this
version, must then have the schema of a new database and keep its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support.schema import new_database, schema_sql, shape

from appliance.store import ItemStore
from appliance.store.search import TextSearch

SNAPSHOTS = sorted((Path(__file__).parent / "data" / "schemas").glob("*.sql"))
# Values for the NOT NULL columns a snapshot's items table has without a default.
FILLING = {"TEXT": "", "INTEGER": 0, "BIGINT": 0, "REAL": 0.0, "BOOLEAN": 0, "JSON": "{}"}
ITEM = {"id": "from-an-old-version", "kind": "done", "status": "finished",
        "url": "https://example.com/watch?v=old", "title": "An old download",
        "filename": "old.mp4", "created_at": 1_700_000_000.0, "updated_at": 1_700_000_000.0}


def test_a_new_database_has_the_newest_snapshot_of_the_schema(tmp_path: Path) -> None:
    new = new_database(tmp_path)
    newest = tmp_path / "newest.db"
    with sqlite3.connect(newest) as db:
        db.executescript(SNAPSHOTS[-1].read_text())
    assert shape(new) == shape(newest), (
        f"The database's schema is no longer {SNAPSHOTS[-1].name}'s. Databases made before "
        "must be migrated: write the migration in appliance/store/database.py (open_database), "
        "then save the new schema: .venv/bin/python tests/support/schema.py > "
        "tests/data/schemas/<YYYY-MM-DD>.sql")
    assert schema_sql(newest) == SNAPSHOTS[-1].read_text()  # the snapshot as SQLite keeps it


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=[s.stem for s in SNAPSHOTS])
def test_a_database_of_an_earlier_version_opens_as_a_new_one_with_its_items(
        snapshot: Path, tmp_path: Path) -> None:
    old = tmp_path / "appliance.db"
    with sqlite3.connect(old) as db:
        db.executescript(snapshot.read_text())
        columns = db.execute("PRAGMA table_info(items)").fetchall()
        row = {name: ITEM.get(name, FILLING[kind]) for _, name, kind, not_null, default, _ in
               columns if name in ITEM or (not_null and default is None)}
        db.execute(f"INSERT INTO items ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                   list(row.values()))
    store = ItemStore(old, tmp_path / "downloads")
    item = store.get(ITEM["id"])
    assert item is not None
    assert (item.url, item.title, item.filename) == (ITEM["url"], ITEM["title"], "old.mp4")
    found = store.page("done", 1, 10, search=TextSearch.parse("old download"))
    assert [i.id for i in found.items] == [ITEM["id"]]  # in the search index too
    store.close()
    assert shape(old) == shape(new_database(tmp_path))
