"""Cross-cutting rules applied once for every endpoint: request id, API-Version, body limit,
ETag / If-None-Match on JSON GETs."""

from __future__ import annotations

import hashlib
import uuid

import falcon
import orjson

from .. import errors

API_VERSION = "1.0"


class RequestContext:
    """Request id (echoed in ``X-Request-ID``) and the ``API-Version`` header."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = incoming[:64] if incoming.isalnum() else uuid.uuid4().hex[:16]
        resp.set_header("X-Request-ID", req.context.request_id)
        resp.set_header("API-Version", API_VERSION)


class BodyLimit:
    """Refuse a body whose Content-Length is over the limit before it is read (413); a
    chunked body has no length up front and is counted as it is read (api.requests)."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        length = req.content_length
        if length is not None and length > self.max_body:
            raise errors.AppError(
                f"Request body is {length} bytes; the limit is {self.max_body} bytes.",
                errors.PAYLOAD_TOO_LARGE,
            )


class ETags:
    """Every JSON GET answers with an ETag; a matching If-None-Match gets 304 and no body."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if req.method not in {"GET", "HEAD"} or not req_succeeded:
            return
        if resp.status_code != 200 or resp.stream is not None:
            return
        if resp.data is None and resp.media is None:
            return
        if resp.media is not None and resp.data is None and resp.text is None:
            resp.data = orjson.dumps(resp.media)
            resp.media = None
            resp.content_type = resp.content_type or falcon.MEDIA_JSON
        body = resp.data if resp.data is not None else (resp.text or "").encode()
        tag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        resp.etag = tag
        if matches(req.get_header("If-None-Match"), tag):
            not_modified(resp)


def matches(header: str | None, etag: str) -> bool:
    """If-None-Match's comparison (the file routes' If-Range uses it too): weak, as RFC 9110
    has it (a reverse proxy that compresses an answer makes its ETag weak: nginx's ``gzip
    on``), and ``*`` matches any answer there is."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def not_modified(resp: falcon.Response) -> None:
    """304: no body and no Content-Type (RFC 9110)."""
    resp.status = falcon.HTTP_304
    resp.data = resp.text = resp.media = None
    resp.content_type = None
    resp.delete_header("Content-Type")
