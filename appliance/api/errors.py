"""Where every error becomes ``{"error": "...", "code": "..."}``: domain errors, Falcon's own
HTTP errors (404 route, 405, 413, …) and, last, anything unexpected (logged, 500)."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson

from .. import errors
from ..logs import utf8

log = logging.getLogger(__name__)

_CODE_BY_STATUS = {status: code for code, status in reversed(errors.STATUS_BY_CODE.items())}


def _send(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    try:
        resp.data = orjson.dumps(body)
    except orjson.JSONEncodeError:
        # a text naming a file whose name is no UTF-8 (the player's routes reach such files):
        # its undecodable bytes as \udcXX, as the log writes them
        resp.data = orjson.dumps({k: utf8(v) if isinstance(v, str) else v
                                  for k, v in body.items()})


def handle_app_error(
    req: falcon.Request, resp: falcon.Response, exc: errors.AppError, params: dict
) -> None:
    for name, value in exc.headers.items():
        resp.set_header(name, value)
    _send(resp, exc.status, exc.body())


def serialize_http_error(
    req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError
) -> None:
    """Falcon's own errors (unknown route, wrong method, bad query types) in our shape."""
    status = exc.status_code
    message = exc.description or exc.title or "Error"
    if status == 404 and not exc.description:
        message = "Not found."
    if status == 405:
        message = f"Method {req.method} is not allowed on {req.path}."
    code = (exc.code if isinstance(exc.code, str) else None) or _CODE_BY_STATUS.get(
        status, errors.INVALID_REQUEST if status < 500 else errors.INTERNAL_ERROR
    )
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps({"error": message, "code": code})


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict
) -> None:
    if isinstance(exc, falcon.HTTPError | falcon.HTTPStatus):
        raise exc
    request_id = getattr(req.context, "request_id", "-")
    log.exception("unhandled error on %s %s (request %s)", req.method, req.path, request_id)
    _send(resp, 500, {
        "error": f"Internal error; the log has the details under request id {request_id}.",
        "code": errors.INTERNAL_ERROR,
        "request_id": request_id,
    })


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(errors.AppError, handle_app_error)
    app.set_error_serializer(serialize_http_error)
