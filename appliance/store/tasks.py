"""Scheduled tasks, their executions (runs) and the entries a task was told to treat as done.

Read and written as plain dicts; rows never leave a ``db_session``. The entities are defined
by ``define_task_entities``, which ``database._define_entities`` calls: one database, one
mapping.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from pony import orm

from ..errors import CONFLICT, AppError
from .columns import column_readers, read_columns
from .database import UNIQUE_REFUSED, read_session, write_session

# What a task holds (the contract's fields, then what a person asks first).
TASK_FIELDS = (
    "name", "url", "timer", "preset", "folder", "template", "cli", "cookies", "config",
    "auto_start", "handler_enabled", "enabled", "published_after", "keep_newest", "keep_days",
)
STATE_FIELDS = ("created_at", "last_run_at", "last_status", "last_error", "last_found",
                "last_queued", "failures", "mark_pending")
TASK_COLUMNS = ("id", *TASK_FIELDS, *STATE_FIELDS)
DEFINITION_FIELDS = ("name", "description", "enabled", "definition")
EXECUTION_FIELDS = ("task_id", "task_name", "trigger", "status", "started_at", "finished_at",
                    "found", "queued", "skipped", "failed", "error", "handler")
# An execution's log, kept with it: its newest lines only.
MAX_LOG_LINES = 500

RUNNING = "running"
SUCCESS = "success"
FAILED = "failed"
INTERRUPTED = "interrupted"


def define_task_entities(db: orm.Database) -> dict[str, Any]:
    class TaskRow(db.Entity):
        _table_ = "tasks"
        id = orm.PrimaryKey(int, auto=True)
        name = orm.Required(str, unique=True)
        url = orm.Required(str, 8192)
        timer = orm.Optional(str)
        preset = orm.Optional(str)
        folder = orm.Optional(str)
        template = orm.Optional(str)
        cli = orm.Optional(orm.LongStr, lazy=False)
        cookies = orm.Optional(orm.LongStr, lazy=False)
        config = orm.Optional(orm.Json)
        auto_start = orm.Required(bool, default=True)
        handler_enabled = orm.Required(bool, default=True)
        enabled = orm.Required(bool, default=True)
        published_after = orm.Optional(str)  # ISO date; empty: every entry
        keep_newest = orm.Optional(int)  # retention: 0 keeps all
        keep_days = orm.Optional(int)  # retention: 0 keeps all
        created_at = orm.Required(float)
        last_run_at = orm.Optional(float)
        last_status = orm.Optional(str)
        last_error = orm.Optional(orm.LongStr, lazy=False)
        last_found = orm.Optional(int)
        last_queued = orm.Optional(int)
        failures = orm.Required(int, default=0)  # runs failed in a row
        # Created with "mark": true, its entries not listed yet: its next run marks them
        # instead of queueing them.
        mark_pending = orm.Required(bool, default=False)

    class ExecutionRow(db.Entity):
        _table_ = "executions"
        id = orm.PrimaryKey(int, auto=True)
        task_id = orm.Required(int, index=True)
        task_name = orm.Required(str)
        trigger = orm.Required(str)  # timer | manual | startup | create
        status = orm.Required(str, index=True)
        handler = orm.Optional(str)
        started_at = orm.Required(float)
        finished_at = orm.Optional(float)
        found = orm.Required(int, default=0)
        queued = orm.Required(int, default=0)
        skipped = orm.Required(int, default=0)
        failed = orm.Required(int, default=0)
        error = orm.Optional(orm.LongStr, lazy=False)
        log = orm.Optional(orm.Json)

    class TaskEntryRow(db.Entity):
        """An entry ``mark`` (or retention) recorded as done for a task: never queued again
        by it, whether or not a download archive applies."""
        _table_ = "task_entries"
        task_id = orm.Required(int)
        # An entry's URL (or archive id): as long as the URL is. A length here is Pony's
        # check, not SQLite's (older tables say VARCHAR(2048) and take any length): at 2048
        # a longer URL refused the whole mark, and with it a task's retention.
        key = orm.Required(str)
        orm.PrimaryKey(task_id, key)

    class TaskDefinitionRow(db.Entity):
        _table_ = "task_definitions"
        id = orm.PrimaryKey(int, auto=True)
        name = orm.Required(str, unique=True)
        description = orm.Optional(str)
        enabled = orm.Required(bool, default=True)
        definition = orm.Required(orm.Json)

    return {"Task": TaskRow, "Execution": ExecutionRow, "TaskEntry": TaskEntryRow,
            "TaskDefinition": TaskDefinitionRow}


def _task(values: dict[str, Any]) -> dict[str, Any]:
    """A task as the service passes it around, from its stored ``values`` (TASK_COLUMNS)."""
    values["config"] = dict(values["config"] or {})
    for name in ("keep_newest", "keep_days", "last_found", "last_queued"):
        values[name] = values[name] or 0
    values["last_error"] = values["last_error"] or ""
    return values


def _task_of_row(row: Any) -> dict[str, Any]:
    return _task({name: getattr(row, name) for name in TASK_COLUMNS})


def _execution(row: Any, with_log: bool = False) -> dict[str, Any]:
    data = {"id": row.id, **{name: getattr(row, name) for name in EXECUTION_FIELDS}}
    data["error"] = row.error or ""
    if with_log:
        data["log"] = list(row.log or [])
    return data


def _taken(name: str) -> AppError:
    return AppError(f"A task named '{name}' already exists.", CONFLICT)


class TaskStore:
    def __init__(self, entities: Any) -> None:
        self._task = entities.Task
        self._execution = entities.Execution
        self._entry = entities.TaskEntry
        self._db = self._task._database_
        # Tasks are read as plain columns: the scheduler reads every task due (500 at once
        # after a night's power cut), the API a page of them on every poll.
        self._readers = column_readers(self._task, TASK_COLUMNS)
        self._select = f"SELECT {', '.join(TASK_COLUMNS)} FROM {self._task._table_}"

    def _read(self, clauses: str, **scope: Any) -> list[dict[str, Any]]:
        with read_session(self._db):
            rows = self._db.select(f"{self._select} {clauses}", globals={}, locals=scope)
        return [_task(read_columns(self._readers, row)) for row in rows]

    def release_thread(self) -> None:
        self._db.disconnect()

    # --- tasks --------------------------------------------------------------------------

    def all(self) -> list[dict[str, Any]]:
        return self._read("ORDER BY id")

    def some(self, ids: list[int]) -> list[dict[str, Any]]:
        """The tasks among ``ids`` that exist (one query, whatever their number)."""
        if not ids:
            return []
        return self._read("WHERE id IN (SELECT value FROM json_each($ids)) ORDER BY id",
                          ids=json.dumps(ids))

    def page(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        offset = (page - 1) * per_page
        with read_session(self._db):  # one transaction: the total is the page's
            total = orm.select(r for r in self._task).count()
            if offset >= total:
                return [], total
            return self._read("ORDER BY id LIMIT $limit OFFSET $offset", limit=per_page,
                              offset=offset), total

    def get(self, task_id: int) -> dict[str, Any] | None:
        found = self._read("WHERE id = $task_id", task_id=task_id)
        return found[0] if found else None

    def names(self) -> set[str]:
        with read_session(self._db):
            return set(orm.select(r.name for r in self._task))

    def _check_name(self, name: str, task_id: int | None) -> None:
        clash = self._task.get(name=name)
        if clash is not None and clash.id != task_id:
            raise _taken(name)

    @contextlib.contextmanager
    def _naming(self, names: list[str]) -> Iterator[None]:
        """A write of tasks named ``names``: a name another request stored between this
        one's check and its commit is a 409 too (it was a 500)."""
        try:
            yield
        except UNIQUE_REFUSED:
            with read_session(self._db):
                taken = [name for name in names if self._task.get(name=name) is not None]
            if not taken:
                raise
            raise _taken(taken[0]) from None

    def create(self, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert every task or none (one transaction); 409 when a name is taken."""
        with self._naming([values["name"] for values in tasks]), write_session(self._db):
            rows = []
            for values in tasks:
                self._check_name(values["name"], None)
                rows.append(self._task(created_at=time.time(), **values))
                orm.flush()
            return [_task_of_row(r) for r in rows]

    def update(self, task_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
        with self._naming([values["name"]] if "name" in values else []), \
                write_session(self._db):
            row = self._task.get(id=task_id)
            if row is None:
                return None
            if "name" in values:
                self._check_name(values["name"], task_id)
            row.set(**values)
            return _task_of_row(row)

    def delete(self, task_id: int) -> dict[str, Any] | None:
        with write_session(self._db):
            row = self._task.get(id=task_id)
            if row is None:
                return None
            data = _task_of_row(row)
            self._forget(task_id, None)
            row.delete()
            return data

    # --- entries marked as done ----------------------------------------------------------

    def marked(self, task_id: int) -> set[str]:
        # Plain rows: read through the entity, a feed's 50 keys cost ~120 primary-key checks,
        # on every run of the task (bench/tasks_scale.py).
        with read_session(self._db):
            return set(self._db.select("key FROM task_entries WHERE task_id = $task_id"))

    def mark(self, task_id: int, keys: list[str]) -> int:
        """Record ``keys`` as done; the task's mark is made (no longer pending)."""
        # One statement for them all: a channel of 20,000 videos is 40,000 keys, and a row
        # written (or deleted, below) at a time held the database's write lock, which every
        # download's state change waits for, for seconds here and a minute on a Pi.
        with write_session(self._db):
            self._settle_mark(task_id)
            return int(self._db.execute(
                'INSERT OR IGNORE INTO task_entries (task_id, "key") '
                "SELECT $task_id, value FROM json_each($keys) WHERE value != ''",
                globals={}, locals={"task_id": task_id, "keys": json.dumps(keys)}).rowcount)

    def unmark(self, task_id: int, keys: list[str] | None = None) -> int:
        """Forget the marked entries (``keys``; all of the task's when None, and a mark
        still to be made with them: the person asked for every entry)."""
        with write_session(self._db):
            if keys is None:
                self._settle_mark(task_id)
            return self._forget(task_id, keys)

    def _forget(self, task_id: int, keys: list[str] | None) -> int:
        chosen = "" if keys is None else ' AND "key" IN (SELECT value FROM json_each($keys))'
        return int(self._db.execute(
            f"DELETE FROM task_entries WHERE task_id = $task_id{chosen}", globals={},
            locals={"task_id": task_id, "keys": json.dumps(keys)}).rowcount)

    def _settle_mark(self, task_id: int) -> None:
        row = self._task.get(id=task_id)
        if row is not None and row.mark_pending:
            row.mark_pending = False

    # --- executions ---------------------------------------------------------------------

    def start_execution(self, task: dict[str, Any], trigger: str) -> dict[str, Any]:
        """Committed before the run does anything, so that a crash leaves it "running" (and
        the next start runs the task again). Not waited to disk: after a power cut took it
        back, the task's last run is older than its slot, and the next start runs it too."""
        with write_session(self._db, durable=False):
            row = self._execution(task_id=task["id"], task_name=task["name"], trigger=trigger,
                                  status=RUNNING, started_at=time.time(), log=[])
            orm.flush()
            return _execution(row)

    def finish_execution(self, execution_id: int, log: list[str], **values: Any) -> None:
        with write_session(self._db, durable=False):
            self._finish(execution_id, log, values)

    def _finish(self, execution_id: int, log: list[str], values: dict[str, Any]) -> None:
        row = self._execution.get(id=execution_id)
        if row is not None:
            row.set(finished_at=time.time(), log=log[-MAX_LOG_LINES:], **values)

    def finish_run(self, task_id: int, execution_id: int, log: list[str],
                   outcome: dict[str, Any], state: dict[str, Any]) -> dict[str, Any] | None:
        """The end of a run in one transaction: the execution's ``outcome`` and log, and the
        task's ``state`` (``last_*``, ``failures``); the task as it is now (None: deleted).
        Not waited to disk: a power cut that takes it back makes the run due again, and its
        entries are known by then (they are items)."""
        with write_session(self._db, durable=False):
            self._finish(execution_id, log, outcome)
            row = self._task.get(id=task_id)
            if row is None:
                return None
            row.set(**state)
            return _task_of_row(row)

    def execution(self, execution_id: int, with_log: bool = False) -> dict[str, Any] | None:
        with read_session(self._db):
            row = self._execution.get(id=execution_id)
            return _execution(row, with_log) if row is not None else None

    def executions(self, page: int, per_page: int, task_id: int | None = None,
                   status: str | None = None) -> tuple[list[dict[str, Any]], int]:
        offset = (page - 1) * per_page
        with read_session(self._db):
            query = orm.select(r for r in self._execution)
            if task_id is not None:
                query = query.filter(lambda r: r.task_id == task_id)
            if status:
                query = query.filter(lambda r: r.status == status)
            total = query.count()
            if offset >= total:
                return [], total
            rows = query.order_by(orm.desc(self._execution.id)).limit(per_page, offset=offset)
            return [_execution(r) for r in rows], total

    def interrupted(self) -> list[dict[str, Any]]:
        """Executions a crash left running: marked interrupted; their tasks run again."""
        with write_session(self._db):
            rows = orm.select(r for r in self._execution if r.status == RUNNING)[:]
            for row in rows:
                row.set(status=INTERRUPTED, finished_at=time.time(),
                        error="The service stopped during this run; it runs again at start.")
            return [_execution(r) for r in rows]

    def prune_executions(self, keep: int) -> int:
        """Keep the newest ``keep`` finished executions (running ones always stay)."""
        with write_session(self._db, durable=False):
            ids = orm.select(r.id for r in self._execution if r.status != RUNNING).order_by(
                orm.desc(1))[:]
            old = ids[keep:]
            if old:
                orm.delete(r for r in self._execution if r.id in old)
            return len(old)
