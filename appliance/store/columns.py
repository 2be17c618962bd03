"""Rows read as plain columns, for the lists: Pony builds an entity at ~90-150 us a row (its
values parsed and validated one attribute at a time), a plain ``SELECT`` of the same columns
turned into the same values costs a tenth of that."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pony import orm

Readers = list[tuple[str, Callable[[Any], Any]]]


def _column_reader(attribute: Any) -> Callable[[Any], Any]:
    """How one column's stored value becomes the field's value, as Pony would read it."""
    if issubclass(attribute.py_type, orm.Json):
        return lambda value: None if value is None else json.loads(value)
    if attribute.py_type is bool:
        return lambda value: None if value is None else bool(value)
    if issubclass(attribute.py_type, str):
        return lambda value: "" if value is None else value
    return lambda value: value


def column_readers(entity: Any, names: Sequence[str]) -> Readers:
    """The reader of each of ``entity``'s attributes ``names``, in that order (the order of
    the columns a ``SELECT`` names)."""
    return [(name, _column_reader(getattr(entity, name))) for name in names]


def read_columns(readers: Readers, columns: Sequence[Any]) -> dict[str, Any]:
    """The values of one row read as plain columns, by attribute name."""
    return {name: read(value) for (name, read), value in zip(readers, columns, strict=True)}
