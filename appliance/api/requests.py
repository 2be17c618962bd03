"""Reading request input: JSON bodies and typed query parameters, refused with clear 4xx."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from .. import errors
from ..json_input import load_json

# Bytes read at a time from a chunked body: the limit is checked after each piece.
BODY_PIECE = 64 * 1024


def _body_stream(req: falcon.Request) -> Any:
    """Where the body is read from: bounded by Content-Length, or a chunked body that the
    server de-chunks and ends itself (``wsgi.input_terminated``, as gunicorn sets it); None
    when there is no body to read."""
    if req.content_length is not None:
        return req.bounded_stream
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    if chunked and req.env.get("wsgi.input_terminated"):
        return req.stream
    return None


def read_body(req: falcon.Request, max_body: int) -> bytes:
    """The request body, read in bounded pieces; 413 as soon as it is over ``max_body``
    (a Content-Length over it was refused before, by the BodyLimit middleware)."""
    stream = _body_stream(req)
    body = bytearray()
    while stream is not None and len(body) <= max_body:
        piece = stream.read(min(BODY_PIECE, max_body + 1 - len(body)))
        if not piece:
            break
        body += piece
    if len(body) > max_body:
        raise errors.AppError(f"Request body is over the limit of {max_body} bytes.",
                              errors.PAYLOAD_TOO_LARGE)
    return bytes(body)


def require_json(req: falcon.Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``application/*+json``).

    Checked before the body is read. Without a ``Content-Type`` too: a page on any site can
    make a browser send a body with none (a ``fetch`` with a Blob) or with ``text/plain``
    without asking first (no CORS preflight), while ``application/json`` from another origin
    needs the preflight that only ``YTP_CORS_ORIGINS`` pass.
    """
    if not req.content_length and req.get_header("Transfer-Encoding") is None:
        return  # no body at all: the caller says it is missing (400)
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    if kind != "application" or (subtype != "json" and not subtype.endswith("+json")):
        shown = f"{media_type[:80]!r}" if media_type else "missing"
        raise errors.AppError(f"Content-Type must be application/json (it is {shown}).",
                              errors.UNSUPPORTED_MEDIA_TYPE)


def read_json(req: falcon.Request, max_body: int, *, required: bool = True) -> Any:
    """The decoded JSON body. 415 for another content type, 400 for malformed or missing."""
    require_json(req)
    raw = read_body(req, max_body)
    if not raw.strip():
        if required:
            raise errors.invalid("A JSON request body is required.")
        return None
    try:
        return load_json(raw)
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
