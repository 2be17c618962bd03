"""The small configuration tables (presets, download fields, conditions): named records with
an integer id, read and written as plain dicts."""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pony import orm

from ..errors import CONFLICT, AppError
from .database import UNIQUE_REFUSED, read_session, write_session


class Collection:
    def __init__(self, entity: Any, fields: tuple[str, ...], label: str,
                 order: Callable[[Any], Any] | None = None) -> None:
        self._entity = entity
        self.fields = fields
        self.label = label
        self._order = order
        # The records by name, read whole on the first lookup and forgotten on every write
        # here (the only writer): an item's extraction and a task's run look their preset up
        # several times each, and a round of 500 tasks spent a third of its extraction time
        # reading the same preset row (bench/tasks_scale.py).
        self._lock = threading.Lock()
        self._names: dict[str, dict[str, Any]] | None = None
        self._generation = 0

    def _dict(self, row: Any) -> dict[str, Any]:
        data = {"id": row.id}
        for name in self.fields:
            value = getattr(row, name)
            data[name] = value if value is not None else None
        return data

    def _rows(self) -> Any:
        query = orm.select(r for r in self._entity)
        return query.order_by(self._order) if self._order else query.order_by(self._entity.id)

    def all(self) -> list[dict[str, Any]]:
        with read_session(self._entity._database_):
            return [self._dict(r) for r in self._rows()]

    def page(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        with read_session(self._entity._database_):
            query = self._rows()
            rows = query.limit(per_page, offset=(page - 1) * per_page)
            return [self._dict(r) for r in rows], query.count()

    def get(self, record_id: int) -> dict[str, Any] | None:
        with read_session(self._entity._database_):
            row = self._entity.get(id=record_id)
            return self._dict(row) if row is not None else None

    def by_name(self, name: str) -> dict[str, Any] | None:
        # Pony strips str values and refuses empty ones; such a name cannot exist.
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            return None
        record = self._by_name().get(name)
        return copy.deepcopy(record) if record is not None else None

    def _by_name(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            names, generation = self._names, self._generation
        if names is not None:
            return names
        names = {record["name"]: record for record in self.all()}
        with self._lock:
            if generation == self._generation:  # no write since the read began
                self._names = names
        return names

    def _forget(self) -> None:
        with self._lock:
            self._names = None
            self._generation += 1

    def _taken(self, name: Any) -> AppError:
        return AppError(f"A {self.label} named '{name}' already exists.", CONFLICT)

    def _check_name(self, name: Any, record_id: int | None) -> None:
        clash = self._entity.get(name=name) if name is not None else None
        if clash is not None and clash.id != record_id:
            raise self._taken(name)

    @contextlib.contextmanager
    def _writing(self, name: Any = None) -> Iterator[None]:
        """A write here: the names read before it are forgotten, whatever its outcome. A
        ``name`` another request stored between this one's check and its commit is a 409
        too (it was a 500)."""
        try:
            with write_session(self._entity._database_):
                yield
        except UNIQUE_REFUSED:
            if name is None:
                raise
            raise self._taken(name) from None
        finally:
            self._forget()

    def create(self, values: dict[str, Any]) -> dict[str, Any]:
        with self._writing(values.get("name")):
            self._check_name(values.get("name"), None)
            row = self._entity(**{k: v for k, v in values.items() if k in self.fields})
            orm.flush()
            return self._dict(row)

    def update(self, record_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
        with self._writing(values.get("name")):
            row = self._entity.get(id=record_id)
            if row is None:
                return None
            self._check_name(values.get("name"), record_id)
            row.set(**{k: v for k, v in values.items() if k in self.fields})
            return self._dict(row)

    def delete(self, record_id: int) -> dict[str, Any] | None:
        with self._writing():
            row = self._entity.get(id=record_id)
            if row is None:
                return None
            data = self._dict(row)
            row.delete()
            return data
