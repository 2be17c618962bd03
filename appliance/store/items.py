"""Items: the queue and the history in one table, split by ``kind``."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pony import orm

from .batch_totals import BatchTotals, Row
from .columns import column_readers, read_columns
from .database import (
    disk_faults_said,
    fold_log,
    has_search_index,
    open_database,
    read_session,
    sync_to_disk,
)
from .lists import Page, StatusFilter
from .order import Anchor, order_by
from .records import ACTIVE_STATUSES, DONE, PENDING, PERSISTED, QUEUE, Item
from .search import TextSearch
from .shared_files import holders, sharing_a_file, sharing_with

log = logging.getLogger(__name__)


class _Changes:
    """What a write transaction changes of the kept counts: applied once it committed."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.history: list[tuple[int, Row]] = []

    def added(self, row: Any) -> None:
        self._change(1, row)

    def removed(self, row: Any) -> None:
        self._change(-1, row)

    def _change(self, sign: int, row: Any) -> None:
        self.counts[(row.kind, row.status)] += sign
        if row.kind == DONE:
            self.history.append((sign, Row.of(row)))


# The persisted columns, in PERSISTED order, for raw selects.
COLUMNS = ", ".join(f"items.{name}" for name in PERSISTED)
# A search with at most this many matches reads them from the index and sorts them (a few ms);
# with more, the (kind, created_at) index is walked and each row is looked up in the search
# index instead, which stops once the page is full.
SORT_MATCHES_UP_TO = 5000
MAX_SEARCH_TOTALS = 64


class ItemStore:
    def __init__(self, path: Path, download_folder: Path | None = None) -> None:
        self.db, self.entities = open_database(path, download_folder)
        self._row = self.entities.Item
        self._readers = column_readers(self._row, PERSISTED)
        self._clock_lock = threading.Lock()
        self._tally_lock = threading.RLock()
        self._tally: Counter[tuple[str, str]] | None = None
        self._batches: BatchTotals | None = None  # (read at the first ask)
        # The summaries of ``_batches`` as of the ``_writes``-th write (see batch_totals).
        self._summaries: tuple[int, list[dict[str, Any]]] | None = None
        # Totals of searches (a count reads every match), good until the next write: turning
        # the pages of one search counts once.
        self._search_totals: dict[tuple[Any, ...], int] = {}
        self._writes = 0
        self._last_stamp = 0.0
        self._search_indexed = has_search_index(self.db)

    def close(self) -> None:
        self.db.disconnect()
        fold_log(self.db)

    def release_thread(self) -> None:
        """Close this thread's connection. Pony keeps one per thread; a short-lived thread
        that does not call this leaves three descriptors behind."""
        self.db.disconnect()

    def read_check(self) -> None:
        """Read the database file: raises what SQLite raises when it cannot (the counts come
        from memory after their first read, so they say nothing of the file now)."""
        with read_session(self.db):
            self.db.exists("SELECT 1 FROM items")

    def stamp(self) -> float:
        """A creation time strictly greater than the last one, so order is total."""
        with self._clock_lock:
            self._last_stamp = max(time.time(), self._last_stamp + 1e-6)
            return self._last_stamp

    @staticmethod
    def _item(values: dict[str, Any]) -> Item:
        for name in ("info", "extras"):
            values[name] = values[name] or {}
        values["removed_options"] = values["removed_options"] or []
        return Item(**values)

    def _record(self, row: object) -> Item:
        """The record of an entity (a row Pony loaded)."""
        return self._item({name: getattr(row, name) for name in PERSISTED})

    def _record_of_columns(self, columns: Sequence[Any]) -> Item:
        """The record of a row read as plain columns (``SELECT {COLUMNS}``): a list page reads
        its rows so, because Pony builds an entity at ~90 us a row (a 1,000-item history took
        98 ms; as columns, 8 ms)."""
        return self._item(read_columns(self._readers, columns))

    @staticmethod
    def _columns(item: Item) -> dict[str, object]:
        values = item.persisted()
        for name in ("started_at", "finished_at", "file_size", "file_mtime_ns",
                     "downloaded_bytes", "total_bytes"):
            if values[name] is None:
                values.pop(name)
        return values

    # --- writes -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, durable: bool = True) -> Iterator[_Changes]:
        """A write transaction that also keeps the (kind, status) counts and the history's
        per-batch totals.

        Every paginated list needs its total; counting 100,000 rows costs milliseconds each
        time, so the counts are kept here, by the only writer, and changed only once a
        transaction has committed. ``durable``: see ``write_session``.
        """
        changes = _Changes()
        with self._tally_lock:
            with disk_faults_said(self.db), orm.db_session:
                yield changes
            if self._tally is not None:
                self._tally.update(changes.counts)
            if self._batches is not None:
                for sign, seen in changes.history:
                    self._batches.change(sign, seen)
            self._writes += 1
            self._search_totals.clear()
        if durable:  # other writers need not wait for this one's disk
            sync_to_disk(self.db)

    def insert(self, items: Sequence[Item]) -> None:
        """Insert records in one transaction: all are stored or none."""
        with self._write() as changes:
            for item in items:
                self._row(**self._columns(item))
                changes.added(item)

    def save(self, item: Item, *, durable: bool = True) -> None:
        """Write every persisted field of ``item`` (a state change). Not ``durable``: a
        transition the engine makes again if a power cut takes it back."""
        self.save_all([item], durable=durable)

    def save_all(self, items: Sequence[Item], *, durable: bool = True) -> None:
        """``save`` each of ``items``, in one transaction."""
        now = time.time()
        with self._write(durable) as changes:
            for item in items:
                item.updated_at = now
                row = self._row.get(id=item.id)
                if row is None:
                    self._row(**self._columns(item))
                else:
                    changes.removed(row)
                    row.set(**self._columns(item))
                changes.added(item)

    def replace(self, removed: Iterable[str], added: Sequence[Item]) -> None:
        """Swap records atomically (a playlist placeholder for its entries)."""
        with self._write() as changes:
            for item_id in dict.fromkeys(removed):  # an id twice is one row (see delete)
                row = self._row.get(id=item_id)
                if row is not None:
                    changes.removed(row)
                    row.delete()
            for item in added:
                self._row(**self._columns(item))
                changes.added(item)

    def delete(self, ids: Iterable[str], kind: str | None = None) -> list[Item]:
        """The records deleted, each once; only those of ``kind`` when given. An id given
        twice names one row: counted twice, it took one more from the kept totals than was
        deleted, and the history's last page lost an item that was still there."""
        wanted = [i for i in dict.fromkeys(ids) if self._possible(i)]
        of_kind = "" if kind is None else " AND +kind = $kind"  # (+: by id, not by kind)
        with self._write() as changes:
            # In SQL, as plain columns: through Pony (an entity loaded, then deleted, per id)
            # a history of 20,000 failed items took 35 s to delete, the write lock and the
            # engine's state writes held the while.
            rows = self._rows_of_ids(wanted, f"DELETE FROM items WHERE id IN ({{marks}})"
                                             f"{of_kind} RETURNING {', '.join(PERSISTED)}",
                                     write=True, kind=kind)
            for row in rows:
                changes.removed(SimpleNamespace(**dict(zip(PERSISTED, row, strict=True))))
        # Made once the write lock is given back: their info read for 20,000 items held it
        # another second.
        records = [self._record_of_columns(row) for row in rows]
        order = {item_id: n for n, item_id in enumerate(wanted)}
        return sorted(records, key=lambda record: order[record.id])

    def requeue_interrupted(self) -> int:
        """After a crash, items that were running go back to waiting (their files resume)."""
        with self._write() as changes:
            rows = orm.select(
                r for r in self._row if r.kind == QUEUE and r.status in ACTIVE_STATUSES
            )[:]
            for row in rows:  # (queue items: no batch totals change)
                changes.counts[(row.kind, row.status)] -= 1
                changes.counts[(QUEUE, PENDING)] += 1
                row.set(status=PENDING, msg="Interrupted; will resume", updated_at=time.time())
        return len(rows)

    # --- reads --------------------------------------------------------------------------

    @staticmethod
    def _possible(item_id: str) -> bool:
        # Pony strips str values and refuses empty ones: an id of only whitespace or control
        # characters would raise instead of simply not existing.
        return bool(item_id) and item_id == item_id.strip() and len(item_id) <= 64

    def get(self, item_id: str) -> Item | None:
        if not self._possible(item_id):
            return None
        with read_session(self.db):
            row = self._row.get(id=item_id)
            return self._record(row) if row is not None else None

    def queue(self) -> list[Item]:
        """Every item of the queue, oldest first: what the engine holds from its start. Read
        as plain columns: as entities, a back catalogue of 3,000 queued items held the
        start 0.5 s (20,000: 3 s)."""
        with read_session(self.db):
            rows = self.db.select(f"SELECT {COLUMNS} FROM items WHERE items.kind = $kind "
                                  f"ORDER BY {order_by('ASC')}", globals={},
                                  locals={"kind": QUEUE})
        return [self._record_of_columns(r) for r in rows]

    def _query(self, kind: str, status: StatusFilter | None) -> orm.core.Query:
        query = orm.select(r for r in self._row if r.kind == kind)
        if status is not None and status.exclude:
            query = query.filter(lambda r: r.status != status.status)
        elif status is not None:
            query = query.filter(lambda r: r.status == status.status)
        return query

    def count(self, kind: str, status: StatusFilter | None = None) -> int:
        return self._count(kind, status)

    def page(
        self,
        kind: str,
        page: int,
        per_page: int,
        *,
        newest_first: bool = True,
        status: StatusFilter | None = None,
        search: TextSearch | None = None,
        after: Anchor | None = None,
    ) -> Page:
        """``after``: only the items that follow the one created then, in this order (an
        anchor a walk through the pages keeps: by offset, an item added or deleted between
        two requests shifted the next page by one, skipping or repeating an item). The total
        is the whole list's all the same."""
        conditions, scope = ["items.kind = $kind"], {"kind": kind}
        if status is not None:
            scope["value"] = status.status
            conditions.append("items.status != $value" if status.exclude
                              else "items.status = $value")
        if after is not None:
            condition, values = after.condition(newest_first)
            conditions.append(condition)
            scope.update(values)
        match = ""
        if search is not None:
            match, more, words = search.indexed(self._search_indexed)
            conditions += more
            scope.update(words, match=match)
        offset = (page - 1) * per_page
        with read_session(self.db):
            if search is None:
                total = self._count(kind, status)
            else:
                total = self._search_total((kind, status, search), match, conditions, scope)
            if offset >= total:  # past the end: the index walk would find nothing, slowly
                return Page([], total, page, per_page)
            # (after an anchor, one more tells whether the walk goes on; the total is not
            # what follows the anchor, so the walk is from the anchor's end)
            items = self._ordered(conditions, scope, newest_first,
                                  per_page + (after is not None), offset, match=match,
                                  matches=total, of=None if after is not None else total)
        return Page(items[:per_page], total, page, per_page, more=len(items) > per_page)

    def _ordered(self, conditions: list[str], scope: dict[str, Any], newest_first: bool,
                 limit: int, offset: int, *, match: str = "", matches: int = 0,
                 of: int | None = None) -> list[Item]:
        """``limit`` items meeting ``conditions`` from ``offset``, by creation time; with a
        search's ``match``, of which there are ``matches``. ``of``: how many items meet
        ``conditions``, when known. A page past the middle is then read from the other end:
        SQLite walks every entry an OFFSET skips, and the last page of 100,000 items walked
        99,950 of them (18-35 ms; page 1: 3-5 ms)."""
        if of is not None and of - offset - limit < offset:
            limit = max(0, min(limit, of - offset))
            backwards = self._ordered(conditions, scope, not newest_first, limit,
                                      of - offset - limit, match=match, matches=matches)
            return backwards[::-1]
        direction = "DESC" if newest_first else "ASC"
        scope = {**scope, "limit": limit, "offset": offset}
        order = f"ORDER BY {order_by(direction)} LIMIT $limit OFFSET $offset"
        if match and matches <= SORT_MATCHES_UP_TO:
            sql = self._matching(match, COLUMNS, conditions) + f" {order}"
        else:
            if match:
                conditions = [*conditions, "items.rowid IN (SELECT rowid FROM items_search "
                              "WHERE items_search MATCH $match)"]
            # The page is chosen by rowid from the index alone, then only its rows are
            # read: with a deep OFFSET, SQLite would otherwise read every row it skips.
            sql = (f"SELECT {COLUMNS} FROM items WHERE rowid IN (SELECT rowid FROM items "
                   f"WHERE {' AND '.join(conditions)} {order}) "
                   f"ORDER BY {order_by(direction)}")
        rows = self.db.select(sql, globals={}, locals=scope)
        return [self._record_of_columns(r) for r in rows]

    def _search_total(self, key: tuple[Any, ...], match: str, conditions: list[str],
                      scope: dict[str, Any]) -> int:
        with self._tally_lock:
            known, writes = self._search_totals.get(key), self._writes
        if known is not None:
            return known
        total = self.db.select(self._matching(match, "count(*)", conditions),
                               globals={}, locals=scope)[0]
        with self._tally_lock:
            if writes == self._writes:  # no write since it was counted
                if len(self._search_totals) >= MAX_SEARCH_TOTALS:
                    self._search_totals.clear()
                self._search_totals[key] = total
        return total

    @staticmethod
    def _matching(match: str, columns: str, conditions: list[str]) -> str:
        """``SELECT columns`` of the rows meeting ``conditions``; with a ``match``, read from
        the search index's matches (CROSS JOIN keeps SQLite from walking ``items`` instead)."""
        if not match:
            return f"SELECT {columns} FROM items WHERE {' AND '.join(conditions)}"
        return (f"SELECT {columns} FROM items_search CROSS JOIN items "
                f"ON items.rowid = items_search.rowid WHERE items_search MATCH $match AND "
                + " AND ".join(conditions))

    def _counts(self) -> Counter[tuple[str, str]]:
        with self._tally_lock:
            if self._tally is None:
                with read_session(self.db):
                    rows = orm.select((r.kind, r.status, orm.count(r)) for r in self._row)[:]
                self._tally = Counter({(kind, status): n for kind, status, n in rows})
            return Counter(self._tally)

    def _count(self, kind: str, status: StatusFilter | None) -> int:
        tally = self._counts()
        total = sum(n for (k, _), n in tally.items() if k == kind)
        if status is None:
            return total
        matching = tally[(kind, status.status)]
        return total - matching if status.exclude else matching

    def history(self, limit: int) -> list[Item]:
        return self.page(DONE, 1, limit).items

    def ids_matching(self, kind: str, status: StatusFilter) -> list[str]:
        with read_session(self.db):
            return list(orm.select(r.id for r in self._query(kind, status)))

    def batch(self, batch_id: str) -> list[Item]:
        """The batch's items, oldest first. Read as plain columns: a task's batch grows for
        years, and as entities 20,000 items took 2 s, at each of its runs."""
        with read_session(self.db):
            rows = self.db.select(f"SELECT {COLUMNS} FROM items WHERE items.batch_id = "
                                  f"$batch_id ORDER BY {order_by('ASC')}", globals={},
                                  locals={"batch_id": batch_id})
        return [self._record_of_columns(r) for r in rows]

    def batch_ids(self, batch_id: str) -> list[str]:
        """The ids of the batch's items (queue and history), oldest first, from the index
        alone: a delete of a subscription's batch read its 20,000 rows whole for them."""
        with read_session(self.db):
            return list(self.db.select(
                "SELECT items.id FROM items WHERE items.kind IN ($queue, $done) AND "
                f"items.batch_id = $batch_id ORDER BY {order_by('ASC')}", globals={},
                locals={"batch_id": batch_id, "queue": QUEUE, "done": DONE}))

    def batch_page(self, batch_id: str, offset: int, limit: int, *,
                   newest_first: bool = True) -> tuple[list[Item], int]:
        """A page of the batch's items (queue and history), newest first or oldest first, and
        how many it holds (a task's items page read the whole batch: 2 s a page at 20,000).
        The page is chosen from the (kind, batch_id, created_at, id) index alone, then only
        its rows are read: sorting the batch's rows read every one of them, whole."""
        direction = "DESC" if newest_first else "ASC"
        scope = {"batch_id": batch_id, "limit": limit, "offset": offset, "queue": QUEUE,
                 "done": DONE}
        with read_session(self.db):
            total = self.db.select("SELECT count(*) FROM items WHERE items.batch_id = "
                                   "$batch_id", globals={}, locals=scope)[0]
            if offset >= total:
                return [], total
            rows = self.db.select(
                f"SELECT {COLUMNS} FROM items WHERE rowid IN (SELECT rowid FROM items WHERE "
                "items.kind IN ($queue, $done) AND items.batch_id = $batch_id "
                f"ORDER BY {order_by(direction)} LIMIT $limit OFFSET $offset) "
                f"ORDER BY {order_by(direction)}", globals={}, locals=scope)
        return [self._record_of_columns(r) for r in rows], total

    def sharing_a_file(self, leaving: Sequence[Item]) -> set[str]:
        """The ids of ``leaving`` items whose file an item not among them records too
        (``shared_files``)."""
        return sharing_a_file(self.db, leaving)

    def holders(self, items: Sequence[Item]) -> dict[str, set[str]]:
        """For each of ``items`` whose file other items record too, their ids
        (``shared_files``)."""
        return holders(self.db, items)

    def sharing_with(self, item: Item) -> set[str]:
        """The ids of the other items that record ``item``'s file (``shared_files``)."""
        return sharing_with(self.db, item)

    def follow_rename(self, folders: Iterable[str], old: str, new: str) -> list[str]:
        """Finished items whose file is ``old``, or lies under it (a folder), in one of
        ``folders`` (a download folder's forms), name it ``new`` now: the file browser renamed
        or moved it. Their ids. Where the download put the file stays known (the first name,
        ``extras["downloaded_as"]``): a file a person moved out of that place is theirs,
        not a task's retention's."""
        if not new:
            return []
        return self._update_files(
            folders, old, "filename = $new || substr(filename, $cut), extras = json_set("
            "coalesce(nullif(extras, ''), '{}'), '$$.downloaded_as', "
            "coalesce(json_extract(extras, '$$.downloaded_as'), filename))",
            {"new": new, "cut": len(old) + 1})

    def forget_files(self, folders: Iterable[str], path: str) -> list[str]:
        """Finished items whose file is ``path``, or lies under it, in one of ``folders``
        name no file any more: the file browser deleted it. Their history stays (and the
        archive keeps them from being downloaded again); a later file of that name is not
        theirs; their ``msg`` says so (a finished item naming no file, read years later, said
        nothing of why). Their ids."""
        return self._update_files(
            folders, path, "filename = '', file_size = NULL, file_mtime_ns = NULL, msg = $msg",
            {"msg": f"Its file was deleted in the file browser ('{path}')."})

    def _update_files(self, folders: Iterable[str], path: str, change: str,
                      values: dict[str, Any]) -> list[str]:
        forms = {f"folder{n}": folder for n, folder in enumerate(sorted(set(folders)))}
        if not forms or not path:
            return []
        named = ", ".join(f"${name}" for name in forms)
        with self._write():
            return [row[0] for row in self.db.execute(
                f"UPDATE items SET {change} "
                # '+kind': the planner took the kind index and read every finished item
                f"WHERE +kind = $done AND download_folder IN ({named}) "
                # under the folder: a range of the index ('0' follows '/' in every order)
                "AND (filename = $old OR (filename > $under AND filename < $past)) "
                "RETURNING id",
                {"done": DONE, "old": path, "under": path + "/",
                 "past": path + "0", **forms, **values},
            ).fetchall()]

    def records(self, ids: Sequence[str]) -> list[Item]:
        """The items of ``ids`` that are stored (in no particular order)."""
        with read_session(self.db):
            rows = self._rows_of_ids(ids, f"SELECT {COLUMNS} FROM items WHERE id IN ({{marks}})")
        return [self._record_of_columns(row) for row in rows]

    def _rows_of_ids(self, ids: Sequence[str], statement: str, *, write: bool = False,
                     **named: Any) -> list[Sequence[Any]]:
        """The rows ``statement`` yields (the PERSISTED columns) for ``ids``, which it names
        at ``{marks}``: 500 at a time, SQLite's bound on parameters; ``named``, the values of
        the others it names (``$kind``). ``write``: it changes rows (Pony's ``execute``,
        which begins a write transaction; a read must not take the write lock)."""
        found: list[Sequence[Any]] = []
        for first in range(0, len(ids), 500):
            chunk = list(ids[first:first + 500])
            sql = statement.format(marks=", ".join(f"$id{n}" for n in range(len(chunk))))
            values = {**named, **{f"id{n}": item_id for n, item_id in enumerate(chunk)}}
            found += (self.db.execute(sql, values).fetchall() if write
                      else self.db.select(sql, values))
        return found

    def window(
        self,
        kind: str,
        offset: int,
        limit: int,
        *,
        newest_first: bool = True,
        statuses: Collection[str] | None = None,
        standalone: bool = False,
    ) -> tuple[list[Item], int]:
        """``limit`` items of ``kind`` from ``offset`` (only ``statuses`` when given, only
        items of no batch when ``standalone``), and how many there are in all. Paged as
        ``page`` pages, its total from the kept counts but for ``standalone``: Flasharr's
        lists, which its clients poll, counted 100,000 items at each call (15 ms) and built
        each row as an entity."""
        wanted = tuple(dict.fromkeys(statuses or ()))
        conditions, scope = ["items.kind = $kind"], {"kind": kind}
        if wanted:
            scope.update({f"status{n}": status for n, status in enumerate(wanted)})
            marks = ", ".join(f"${name}" for name in scope if name.startswith("status"))
            conditions.append(f"items.status IN ({marks})")
        if standalone:
            conditions.append("items.batch_id = ''")
        with read_session(self.db):
            if standalone and kind == DONE:  # (the history's items of no batch)
                total = self._batch_totals().count("", wanted)
            elif standalone:
                total = self.db.select(self._matching("", "count(*)", conditions),
                                       globals={}, locals=scope)[0]
            else:
                total = sum(n for (k, status), n in self._counts().items()
                            if k == kind and (not wanted or status in wanted))
            if limit <= 0 or offset >= total:
                return [], total
            return self._ordered(conditions, scope, newest_first, limit, offset, of=total), total

    def batch_totals(self) -> list[dict[str, Any]]:
        """Per ``batch_id`` (items sharing one: a playlist's entries, or items added together)
        of the history (the queue's live figures are the engine's): name, item count per
        status, summed ``total_bytes`` / ``downloaded_bytes``, first creation time. Newest
        batch first. Kept, not counted at each call (see ``batch_totals.py``): the same list
        until the next write (shared: not to be changed)."""
        with self._tally_lock:
            if self._summaries is None or self._summaries[0] != self._writes:
                self._summaries = (self._writes,
                                   self._batch_totals().summaries(self._batch_firsts))
            return self._summaries[1]

    def batch_count(self, batch_id: str) -> int:
        """How many items of the history ``batch_id`` holds (kept, as ``batch_totals``: a
        task's batch grows for years, and reading it whole to know whether it is there
        read 20,000 rows)."""
        if not batch_id:  # (the items of no batch)
            return 0
        with self._tally_lock:
            return self._batch_totals().count(batch_id)

    def _batch_totals(self) -> BatchTotals:
        with self._tally_lock:
            if self._batches is None:
                with read_session(self.db):
                    rows = self.db.select(
                        "SELECT batch_id, status, count(*), sum(total_bytes), "
                        "sum(downloaded_bytes), min(created_at), max(batch_name) FROM items "
                        "WHERE kind = $kind GROUP BY batch_id, status", globals={},
                        locals={"kind": DONE})
                self._batches = BatchTotals(rows)
            return self._batches

    def _batch_firsts(self, wanted: Iterable[tuple[str, str]]
                      ) -> dict[tuple[str, str], tuple[float, str]]:
        """The first creation time and greatest name of each (batch, status) in ``wanted``,
        read from its rows alone (the batch_id index)."""
        found = {}
        with read_session(self.db):
            for batch_id, status in wanted:
                scope = {"batch_id": batch_id, "status": status, "kind": DONE}
                [(first, name)] = self.db.select(
                    "SELECT min(created_at), max(batch_name) FROM items WHERE batch_id = "
                    "$batch_id AND kind = $kind AND status = $status", globals={}, locals=scope)
                if first is not None:
                    found[(batch_id, status)] = (first, name or "")
        return found

    def add_download_folder(self, path: Path) -> None:
        """Record ``path`` as a download folder (the settings name it now)."""
        with self._write():
            if self.entities.DownloadFolder.get(path=str(path)) is None:
                self.entities.DownloadFolder(path=str(path))

    def download_folders(self) -> set[str]:
        """Every folder recorded as a download folder."""
        with read_session(self.db):
            return set(orm.select(f.path for f in self.entities.DownloadFolder))

    def status_counts(self) -> dict[tuple[str, str], int]:
        return {key: n for key, n in self._counts().items() if n > 0}
