"""The shared life of configured records (presets, conditions, download fields): validate,
create, replace or patch, delete, with 404 on unknown ids and a hook on every change."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from ..errors import NOT_FOUND, AppError, invalid
from ..store.collections import Collection

_KINDS = {str: "a string", bool: "true or false", int: "a whole number", dict: "an object",
          list: "an array"}
# The store keeps whole numbers in 32 bits: a larger one failed the write (a 500).
INT_RANGE = (-(2**31), 2**31 - 1)


def check_types(values: dict[str, Any], types: dict[str, type | tuple[type, ...]]) -> None:
    for name, expected in types.items():
        value = values.get(name)
        if name not in values or value is None:
            continue
        wrong_bool = isinstance(value, bool) and expected in (int, (int, float))
        if wrong_bool or not isinstance(value, expected):
            kind = _KINDS.get(expected, "valid")  # type: ignore[call-overload]
            raise invalid(f"{name} must be {kind}.")
        low, high = INT_RANGE
        if expected is int and not low <= value <= high:
            raise invalid(f"{name} must be between {low} and {high}.")


class RecordService(abc.ABC):
    label = "record"
    fields: tuple[str, ...] = ()
    # Names a client may send that are dropped, not refused (fields of YTPTube's objects).
    ignored: tuple[str, ...] = ()
    defaults: dict[str, Any] = {}

    def __init__(self, table: Collection) -> None:
        self.table = table
        self.on_change: Callable[[str, dict[str, Any]], None] | None = None

    @abc.abstractmethod
    def validate(self, values: dict[str, Any], partial: bool) -> dict[str, Any]:
        """The checked, normalised values of a full (or, when ``partial``, a patch) body."""

    def public(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def check_editable(self, record: dict[str, Any], action: str) -> None:
        """Built-in records (shipped defaults) are never changed or deleted."""
        if record.get("builtin"):
            raise invalid(f"'{record['name']}' is a default {self.label} and cannot be "
                          f"{action}.")

    def _known(self, values: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(values) - set(self.fields) - set(self.ignored) - {"id"})
        if unknown:
            raise invalid(f"Unknown {self.label} field(s): {', '.join(unknown)}.")
        # null is a field not given (a client sends a record back as it read it, an empty
        # field as null): its default on a create or replace, unchanged on a patch. Stored,
        # it failed the write (a 500).
        return {k: v for k, v in values.items() if k in self.fields and v is not None}

    def _record(self, record_id: int) -> dict[str, Any]:
        record = self.table.get(record_id)
        if record is None:
            raise AppError(f"{self.label.capitalize()} not found.", NOT_FOUND)
        return record

    def _notify(self, action: str, record: dict[str, Any]) -> dict[str, Any]:
        public = self.public(record)
        if self.on_change is not None:
            self.on_change(action, public)
        return public

    def get(self, record_id: int) -> dict[str, Any]:
        return self.public(self._record(record_id))

    def all(self) -> list[dict[str, Any]]:
        return [self.public(r) for r in self.table.all()]

    def page(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        records, total = self.table.page(page, per_page)
        return [self.public(r) for r in records], total

    def create(self, values: dict[str, Any]) -> dict[str, Any]:
        clean = {**self.defaults, **self.validate(self._known(values), partial=False)}
        return self._notify("create", self.table.create(clean))

    def update(self, record_id: int, values: dict[str, Any], *, partial: bool
               ) -> dict[str, Any]:
        self.check_editable(self._record(record_id), "changed")
        clean = self.validate(self._known(values), partial=partial)
        if not partial:
            clean = {**self.defaults, **clean}
        record = self.table.update(record_id, clean)
        if record is None:
            raise AppError(f"{self.label.capitalize()} not found.", NOT_FOUND)
        return self._notify("update", record)

    def delete(self, record_id: int) -> dict[str, Any]:
        record = self._record(record_id)
        self.check_editable(record, "deleted")
        self.table.delete(record_id)
        return self._notify("delete", record)
