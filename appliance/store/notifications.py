"""Notification targets: named webhook/Apprise destinations and their last delivery status.

Read and written as plain dicts; rows never leave a ``db_session``.
"""

from __future__ import annotations

from typing import Any

from pony import orm

from ..errors import CONFLICT, AppError
from .database import read_session, write_session
from .outbox import forget_target

CONFIG_FIELDS = ("name", "on", "presets", "enabled", "request")
STATUS_FIELDS = ("last_status", "last_error", "last_sent_at")


class NotificationStore:
    def __init__(self, entity: Any) -> None:
        self._row = entity

    def release_thread(self) -> None:
        """Close this thread's connection (delivery threads call it when they end)."""
        self._row._database_.disconnect()

    @staticmethod
    def _dict(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "on": list(row.on or []),
            "presets": list(row.presets or []),
            "enabled": row.enabled,
            "request": dict(row.request or {}),
            "last_status": row.last_status or None,
            "last_error": row.last_error or None,
            "last_sent_at": row.last_sent_at,
        }

    def all(self) -> list[dict[str, Any]]:
        with read_session(self._row._database_):
            return [self._dict(r) for r in orm.select(r for r in self._row).order_by(
                self._row.id)]

    def page(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        offset = (page - 1) * per_page
        with read_session(self._row._database_):
            query = orm.select(r for r in self._row).order_by(self._row.id)
            total = query.count()
            if offset >= total:  # also keeps a huge page number out of SQLite's integers
                return [], total
            return [self._dict(r) for r in query.limit(per_page, offset=offset)], total

    def get(self, target_id: int) -> dict[str, Any] | None:
        with read_session(self._row._database_):
            row = self._row.get(id=target_id)
            return self._dict(row) if row is not None else None

    def _check_name(self, name: str, target_id: int | None) -> None:
        clash = self._row.get(name=name)
        if clash is not None and clash.id != target_id:
            raise AppError(f"A notification target named '{name}' already exists.", CONFLICT)

    def create(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            with write_session(self._row._database_):
                self._check_name(values["name"], None)
                row = self._row(**{k: values[k] for k in CONFIG_FIELDS})
                orm.flush()
                return self._dict(row)
        except orm.TransactionIntegrityError:  # the same name, saved by a racing request
            raise AppError(f"A notification target named '{values['name']}' already exists.",
                           CONFLICT) from None

    def update(self, target_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
        # Not optimistic: a delivery recording its status at the same moment is no conflict.
        try:
            with write_session(self._row._database_, optimistic=False):
                row = self._row.get(id=target_id)
                if row is None:
                    return None
                self._check_name(values["name"], target_id)
                row.set(**{k: values[k] for k in CONFIG_FIELDS})
                if not row.enabled:
                    forget_target(self._row._database_, target_id)
                return self._dict(row)
        except orm.TransactionIntegrityError:
            raise AppError(f"A notification target named '{values['name']}' already exists.",
                           CONFLICT) from None

    def delete(self, target_id: int) -> dict[str, Any] | None:
        with write_session(self._row._database_, optimistic=False):
            row = self._row.get(id=target_id)
            if row is None:
                return None
            data = self._dict(row)
            row.delete()
            forget_target(self._row._database_, target_id)
            return data

    def record_delivery(self, target_id: int, ok: bool, error: str, at: float) -> None:
        """The outcome of the last delivery; nothing when the target was deleted meanwhile.
        Not durable: after a power cut the next delivery records it again."""
        with write_session(self._row._database_, durable=False, optimistic=False):
            row = self._row.get(id=target_id)
            if row is not None:
                row.set(last_status="ok" if ok else "failed", last_error=error[:2000],
                        last_sent_at=at)
