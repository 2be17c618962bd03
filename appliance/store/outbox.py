"""The notification outbox: notices waiting for a target, kept until they are delivered or
given up, so that a stop or a crash (``kill -9``) loses none (notify/outbox.py uses it).

A row is a notice for one target: the target's key (``db:<id>``, ``file:<its URL's digest>``),
a delivery id (stable across retries and restarts: a receiver drops a repeat by it), the notice
as JSON (parsed by the caller, which skips a row it cannot read), and the retry state
(attempts made, when the next try is due). Commits are not synced to the disk
(``durable=False``): a killed service loses none of them, a power cut may take back the last
ones (as the engine's own transitions).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from pony import orm

from .database import read_session, write_session


def target_key(target_id: int) -> str:
    """The key of a stored target in the outbox (an apprise.yml target's: file_target_key)."""
    return f"db:{target_id}"


def file_target_key(url: str) -> str:
    """The key of an apprise.yml target: its URL's digest, not its place in the file, so that
    notices kept for it follow it when lines are added or removed above it (a place would hand
    them to whichever URL took it). A digest, not the URL: it holds the target's password."""
    return "file:" + hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def forget_target(db: orm.Database, target_id: int) -> None:
    """Drop the rows of a stored target, in the caller's write session (a deletion, a
    disable: a disabled target keeps nothing waiting)."""
    db.execute("DELETE FROM notification_outbox WHERE target = $target", globals={},
               locals={"target": target_key(target_id)})


@dataclasses.dataclass(frozen=True)
class Waiting:
    """A row as it was read back: ``notice`` is its text, not yet trusted."""

    row: int
    target: str
    delivery: str
    notice: str
    attempts: int
    next_at: float | None


class OutboxStore:
    def __init__(self, entity: Any) -> None:
        self._db: orm.Database = entity._database_

    def add(self, rows: Sequence[tuple[str, str, str]]) -> list[int]:
        """Store ``(target, delivery, notice)`` rows in one transaction; their row ids, in
        the same order (one statement: a playlist's 500 entries times the targets)."""
        if not rows:
            return []
        with write_session(self._db, durable=False):
            ids = [r[0] for r in self._db.execute(
                "INSERT INTO notification_outbox (target, delivery, notice, attempts) "
                "SELECT json_extract(value, '$$[0]'), json_extract(value, '$$[1]'), "
                "json_extract(value, '$$[2]'), 0 FROM json_each($rows) RETURNING id",
                globals={}, locals={"rows": orjson.dumps(rows).decode()}).fetchall()]
        # The rows went in in the array's order, one writer at a time: their ids ascend with it.
        return sorted(ids)

    def remove(self, rows: Iterable[int]) -> int:
        """Forget the rows (delivered, given up or dropped); how many there were."""
        chosen = list(rows)
        if not chosen:
            return 0
        with write_session(self._db, durable=False):
            return int(self._db.execute(
                "DELETE FROM notification_outbox WHERE id IN (SELECT value FROM json_each($ids))",
                globals={}, locals={"ids": json.dumps(chosen)}).rowcount)

    def remove_target(self, target: str) -> int:
        """Forget every row of ``target`` (deleted or disabled); how many there were."""
        with write_session(self._db, durable=False):
            return int(self._db.execute(
                "DELETE FROM notification_outbox WHERE target = $target",
                globals={}, locals={"target": target}).rowcount)

    def retrying(self, rows: Iterable[int], attempts: int, next_at: float) -> None:
        """The rows' delivery failed ``attempts`` times; the next try is due at ``next_at``
        (Unix time): a restart waits as long."""
        chosen = list(rows)
        if not chosen:
            return
        with write_session(self._db, durable=False):
            self._db.execute(
                "UPDATE notification_outbox SET attempts = $attempts, next_at = $next_at "
                "WHERE id IN (SELECT value FROM json_each($ids))", globals={},
                locals={"attempts": attempts, "next_at": next_at, "ids": json.dumps(chosen)})

    def waiting(self, limit: int = -1) -> list[Waiting]:
        """The newest ``limit`` rows (-1: all), oldest first."""
        with read_session(self._db):
            rows = [Waiting(*row) for row in self._db.select(
                "id, target, delivery, notice, attempts, next_at FROM notification_outbox "
                "ORDER BY id DESC LIMIT $limit", globals={}, locals={"limit": limit})]
        return rows[::-1]

    def remove_before(self, row: int) -> int:
        """Forget the rows older than ``row``; how many there were."""
        with write_session(self._db, durable=False):
            return int(self._db.execute(
                "DELETE FROM notification_outbox WHERE id < $row", globals={},
                locals={"row": row}).rowcount)

    def counts(self) -> dict[str, int]:
        """How many rows wait for each target that has some."""
        with read_session(self._db):
            return dict(self._db.select(
                "target, COUNT(*) FROM notification_outbox GROUP BY target"))
