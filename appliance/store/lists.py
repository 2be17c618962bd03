"""What a list of items is asked for (a status filter) and what it answers (a page)."""

from __future__ import annotations

import dataclasses

from .records import Item


@dataclasses.dataclass(frozen=True)
class StatusFilter:
    """``status=finished`` keeps one status; ``status=!finished`` drops it."""

    status: str
    exclude: bool = False

    @classmethod
    def parse(cls, text: str | None) -> StatusFilter | None:
        if not text:
            return None
        if text.startswith("!"):
            return cls(text[1:], exclude=True)
        return cls(text)

    def keeps(self, item: Item) -> bool:
        """Whether an item in memory passes (the store's lists ask SQL the same)."""
        return self.passes(item.status)

    def passes(self, status: str) -> bool:
        """Whether an item in ``status`` passes."""
        return (status == self.status) != self.exclude


@dataclasses.dataclass(frozen=True)
class Page:
    items: list[Item]
    total: int
    page: int
    per_page: int
    # Only for a page read ``after`` a position: whether any item follows it.
    more: bool = False

    @property
    def total_pages(self) -> int:
        return max(1, -(-self.total // self.per_page))
