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
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        text = repr(obj)
        log.error("cannot encode websocket frame (%s): %s%s", exc, text[:LOGGED_CHARS],
                  f"… ({len(text)} characters)" if len(text) > LOGGED_CHARS else "")
        return None
