"""How much of the queue an answer carries.

``GET /api/system/configuration`` and ``GET /api/history/live`` answer the whole queue with
every item whole (the contract's shape, which YTPTube's web UI reads). A queue of tens of
thousands of items (a big channel added at once) makes that tens of MiB: more than a client
on a small box should read to draw a header. Two parameters beyond the contract let a client
ask for less, and ``queue_count`` says how many the queue holds whatever was sent:

- ``queue_fields=status,speed``: each item carries only ``id`` and the fields named;
- ``queue_limit=N``: at most N items, the running ones first, then the newest waiting ones,
  in the queue's order (``0``: none, for a client that follows the queue by other means).
"""

from __future__ import annotations

from typing import Any

import falcon

from .. import errors
from ..engine.engine import DownloadEngine
from ..store import Item
from .schemas import query, ref

ITEM_FIELDS = frozenset(Item(id="", url="").to_dict())
MAX_FIELD_NAMES = 64


def requested_queue(
    req: falcon.Request, engine: DownloadEngine, default_limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """The queue's items as the request asks for them, and how many the queue holds;
    ``default_limit``: at most this many when the request names no ``queue_limit``."""
    fields = _fields(req)
    limit = _limit(req)
    if limit is None:
        limit = default_limit
    chosen, count = engine.queue_cut(limit)
    answers = [item.to_dict() for item in chosen]
    if fields is not None:
        answers = [{key: answer[key] for key in fields} for answer in answers]
    return answers, count


def _fields(req: falcon.Request) -> tuple[str, ...] | None:
    text = req.get_param("queue_fields")
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(names) > MAX_FIELD_NAMES:
        raise errors.invalid(f"queue_fields must name at most {MAX_FIELD_NAMES} fields.")
    unknown = sorted({name for name in names if name not in ITEM_FIELDS})
    if unknown:
        # Cut: the names come from the request and go back into a message.
        raise errors.invalid(f"queue_fields names no field of an item: {unknown[0][:40]!r}.")
    return tuple(dict.fromkeys(["id", *names]))


def _limit(req: falcon.Request) -> int | None:
    text = req.get_param("queue_limit")
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise errors.invalid("queue_limit must be a whole number (0 or more).")
    return int(text)


# OpenAPI parts of the two answers that carry the queue (the rule: appliance/api/openapi.py).
QUEUE_PARAMETERS = [
    query("queue_fields", {"type": "string"},
          "Comma-separated item fields: each queue item carries only `id` and these."),
    query("queue_limit", {"type": "integer", "minimum": 0},
          "At most this many queue items: the running ones first, then the newest waiting."),
]
QUEUE_ITEM = {"anyOf": [ref("Item"), {
    "type": "object", "required": ["id"],
    "description": "With queue_fields: `id` and the fields named.",
}]}
QUEUE_COUNT = {"type": "integer", "description": "Items in the queue, whatever was sent."}
