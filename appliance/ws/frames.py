"""Frames as bytes: every websocket message is encoded once, here."""

from __future__ import annotations

import logging
from typing import Any

import orjson

log = logging.getLogger("appliance.ws")


def encode(obj: Any) -> bytes | None:
    """JSON bytes for a frame, or None (logged) when the object cannot be encoded."""
    try:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        log.exception("cannot encode websocket frame %r", obj)
        return None
