"""ETag and Last-Modified for answers the ETag middleware does not see (files, zips, media:
streamed, so never hashed whole): a validator from what the answer is made of, and the 304."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import falcon

from .middleware import matches, not_modified


def file_etag(info: os.stat_result, *extra: object) -> str:
    """A strong validator from a file's identity, size and modification time."""
    key = f"{info.st_ino}-{info.st_size}-{info.st_mtime_ns}-{extra}".encode()
    return '"' + hashlib.blake2b(key, digest_size=12).hexdigest() + '"'


def fresh(req: falcon.Request, etag: str, modified: float | None = None) -> bool:
    """Whether the client's copy is this one (If-None-Match, else If-Modified-Since)."""
    if matches(req.get_header("If-None-Match"), etag):
        return True
    if modified is None or req.get_header("If-None-Match") is not None:
        return False
    try:
        since = req.get_header_as_datetime("If-Modified-Since")
    except falcon.HTTPInvalidHeader:  # a date that cannot be read is no condition
        return False
    return since is not None and int(modified) <= since.replace(tzinfo=UTC).timestamp()


def validate(req: falcon.Request, resp: falcon.Response, etag: str,
             modified: float | None = None) -> bool:
    """Set ETag (and Last-Modified); True, with the 304 made, when the client has it."""
    resp.etag = etag
    if modified is not None:
        resp.last_modified = datetime.fromtimestamp(int(modified), tz=UTC)
    if fresh(req, etag, modified):
        not_modified(resp)
        return True
    return False
