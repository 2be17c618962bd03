"""Storage: Pony ORM on SQLite (WAL). The only room that knows SQL."""

from .items import ItemStore, Page, StatusFilter
from .records import Item

__all__ = ["Item", "ItemStore", "Page", "StatusFilter"]
