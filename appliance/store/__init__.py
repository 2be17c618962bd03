"""Storage: Pony ORM on SQLite (WAL). The only room that knows SQL.

The names below load on first use (PEP 562), so that ``store.backups`` (plain sqlite3, used
by the command line and the gunicorn master) does not bring the ORM into those processes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .items import ItemStore
    from .lists import Page, StatusFilter
    from .records import Item

__all__ = ["Item", "ItemStore", "Page", "StatusFilter"]

_HOMES = {"Item": ".records", "ItemStore": ".items", "Page": ".lists", "StatusFilter": ".lists"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
