"""Reading request input: JSON bodies and typed query parameters, refused with clear 4xx."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from .. import errors


def read_json(req: falcon.Request, max_body: int, *, required: bool = True) -> Any:
    """The decoded JSON body. 415 for another content type, 400 for malformed or missing."""
    raw = req.bounded_stream.read(max_body + 1)
    if len(raw) > max_body:
        raise errors.AppError(f"Request body is over the limit of {max_body} bytes.",
                              errors.PAYLOAD_TOO_LARGE)
    if not raw.strip():
        if required:
            raise errors.invalid("A JSON request body is required.")
        return None
    content_type = (req.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise errors.AppError("Content-Type must be application/json.",
                              errors.UNSUPPORTED_MEDIA_TYPE)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid(f"Invalid JSON body: {exc}.") from None


def json_object(req: falcon.Request, max_body: int) -> dict[str, Any]:
    data = read_json(req, max_body)
    if not isinstance(data, dict):
        raise errors.invalid("The request body must be a JSON object.")
    return data


def ids_from(body: dict[str, Any]) -> list[str]:
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise errors.invalid("ids is required and must be an array.")
    return ids


def query_bool(req: falcon.Request, name: str, default: bool = False) -> bool:
    value = req.get_param(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise errors.invalid(f"{name} must be true or false.")
