"""Frames as bytes: every websocket message is encoded once, here."""

from __future__ import annotations

import logging
from typing import Any

import orjson

log = logging.getLogger("appliance.ws")

# How much of a frame that cannot be encoded the log shows: an item with a site's megabyte
# of description, at each progress tick, with a traceback that always ends here, flooded it.
LOGGED_CHARS = 300


def encode(obj: Any) -> bytes | None:
    """JSON bytes for a frame, or None (logged) when the object cannot be encoded."""
    try:
        written = orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        text = repr(obj)
        log.error("cannot encode websocket frame (%s): %s%s", exc, text[:LOGGED_CHARS],
                  f"… ({len(text)} characters)" if len(text) > LOGGED_CHARS else "")
        return None
    # A copy of its own size: orjson's answer keeps the whole buffer it wrote into (4 KiB
    # for a 300-byte reply, 4 MB for 300 KB), and a frame may wait in client backlogs that
    # are capped by what len() says. The copy costs a few microseconds, once per frame.
    return bytes(memoryview(written))
