"""What ended while the TUI was away, read from the history a page at a time. No Textual here.

After a reconnect the snapshot holds the service's queue, or its newest 1,000 items when it
holds more. Items the TUI showed that are not in it (``Missed.vanished``) ended, were deleted,
or still wait beyond what the snapshot holds. They were asked for one request each: with a
queue of thousands, a reconnect after new items came (a subscription's run, a bulk add)
made a thousand requests for items still waiting. The history is ordered by creation, newest
first, and an item keeps its creation time when it ends: the pages down to the oldest
vanished item's creation hold every one of them that ended. Those not there are gone from
what the TUI shows (deleted, or left out: the queue view says so).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from appliance.client import ApiClient

from .format import number
from .model import Missed

PAGE = 1000  # the most a history page holds (the API's bound on per_page)
# Pages read at most: an item that waited for weeks may have 100,000 younger ones in the
# history; past this many, the rest of the vanished are taken as gone (the History view has
# them).
MAX_PAGES = 20


@dataclasses.dataclass(frozen=True)
class CaughtUp:
    ended: list[dict[str, Any]]  # the vanished that ended, and the history's newest
    gone: list[str]  # the vanished the history does not hold (as far as it was read)


def catch_up(client: ApiClient, missed: Missed, newest: int) -> CaughtUp:
    """The history's items the TUI missed: the vanished ones and its ``newest`` that ended
    meanwhile (at most ``missed.ended`` of them). Raises what the client raises."""
    wanted = set(missed.vanished)
    newest = min(newest, missed.ended)
    per_page = PAGE if wanted else newest
    ended: list[dict[str, Any]] = []
    if not per_page:
        return CaughtUp([], [])
    for page_number in range(1, MAX_PAGES + 1):
        page = client.history(page=page_number, per_page=per_page)
        for n, item in enumerate(page.items):
            item_id = str(item.get("id"))
            if item_id in wanted or (page_number == 1 and n < newest):
                wanted.discard(item_id)
                ended.append(item)
        if not wanted or not page.items or page_number >= page.total_pages:
            break
        last = number(page.items[-1].get("created_at"))
        if missed.oldest is not None and last is not None and last < missed.oldest:
            break  # older than any vanished item: none of them is further on
    return CaughtUp(ended, [i for i in missed.vanished if i in wanted])
