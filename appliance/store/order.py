"""The order of every list of items: creation time, then id; and the anchor of a walk.

Creation times are unique within one run of the service (``ItemStore.stamp``), not across
runs: after a restart with the clock set back (a Pi with no real-time clock starts at the time
it last saved) or for an item another program wrote, two items can share one. The id breaks
such a tie, so the order is total and an anchor names one position in it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The SQL order of a list, newest first (DESC) or oldest first (ASC); the indexes of the
# lists end in (created_at, id) so that it is the index's own order.
ORDER_COLUMNS = ("items.created_at", "items.id")


def order_by(direction: str) -> str:
    return ", ".join(f"{column} {direction}" for column in ORDER_COLUMNS)


@dataclasses.dataclass(frozen=True)
class Anchor:
    """A position in a list: an item's ``created_at`` and, to break a tie, its ``id``. Without
    the id it stands before (after, oldest first) every item of that time, as an anchor of
    the time alone always did."""

    created_at: float
    id: str | None = None

    def follows(self, created_at: float, item_id: str, newest_first: bool) -> bool:
        """Whether an item at (``created_at``, ``item_id``) comes after this position."""
        if self.id is None or created_at != self.created_at:
            return created_at < self.created_at if newest_first else created_at > self.created_at
        return item_id < self.id if newest_first else item_id > self.id

    def condition(self, newest_first: bool) -> tuple[str, dict[str, Any]]:
        """The SQL condition of the items after it, and its parameters."""
        sign = "<" if newest_first else ">"
        if self.id is None:
            return f"items.created_at {sign} $after", {"after": self.created_at}
        # A row value: SQLite reads it as one range of the (…, created_at, id) indexes.
        return (f"(items.created_at, items.id) {sign} ($after, $after_id)",
                {"after": self.created_at, "after_id": self.id})

    def text(self) -> str:
        """As a ``next`` link carries it (``created_at`` as the item carries it)."""
        return repr(self.created_at) if self.id is None else f"{self.created_at!r},{self.id}"


def sort_key(item: Any) -> tuple[float, str]:
    """An item's place in the order (oldest first), for lists sorted in memory."""
    return item.created_at, item.id
