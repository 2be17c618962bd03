"""JSON from clients (request bodies, websocket commands): decoded, and refused when deeper
than anything this service takes."""

from __future__ import annotations

from typing import Any

import orjson

from . import errors

# Far deeper than any body of this API (a task definition: ~6 levels). orjson reads up to
# 1024, but what is stored is encoded again: 255-1024 levels broke orjson's encoder, pony's
# JSON columns and Python's recursion limit, a 500 each.
MAX_JSON_DEPTH = 64


def load_json(raw: bytes | str) -> Any:
    """``raw`` decoded; 400 when it nests deeper than MAX_JSON_DEPTH."""
    value = orjson.loads(raw)
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise errors.invalid(f"The JSON nests arrays and objects more than {MAX_JSON_DEPTH} "
                             "levels deep.")
    return value


def _deeper_than(value: Any, depth: int) -> bool:
    """Whether ``value`` has an array or object below ``depth`` levels of them (level by
    level, without recursion: the check must not be what overflows)."""
    level = [value]
    for _ in range(depth):
        level = [child for node in level if isinstance(node, dict | list)
                 for child in (node.values() if isinstance(node, dict) else node)]
        if not level:
            return False
    return any(isinstance(node, dict | list) for node in level)
