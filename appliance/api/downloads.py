"""``GET|HEAD /api/download/{filename}``: a file of the download folder, with ranges and
validators, sent by the kernel (``wsgi.file_wrapper`` → gunicorn's ``sendfile``) so that a
4 GB file costs no memory and little CPU."""

from __future__ import annotations

import os
import re
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import falcon

from .. import errors, kinds
from ..files.names import readable
from ..files.reading import open_regular
from ..runtime import Runtime
from ..slots import HeldFile, Slots
from .conditional import file_etag, fresh, matches, validate
from .local_files import FOLDER_GONE, local_file
from .schemas import CLIENT_SHARE, TRANSFERS_FULL, error, path_param, query

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
# Past any file's size (2**63 bytes): where a position of more than 18 digits lies. Such a
# number is not read (Python refuses one of over 4,300 digits: that was a 500).
_BEYOND = 2**63
# A body larger than this holds a place among the transfers (YTP_MAX_TRANSFERS): what the
# kernel's buffers and a client that reads take in moments, a thumbnail or a subtitle, does not.
TRANSFER_SIZE = 1024 * 1024


def _position(digits: str) -> int:
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 18 else _BEYOND


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive span one ``Range`` asks for; None to send the whole file (no header, or a
    form not served: several ranges, another unit); 416 for a range outside the file."""
    if not header:
        return None
    match = _RANGE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        length = _position(last)
        if length == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - length), size - 1
    start = _position(first)
    end = min(_position(last), size - 1) if last else size - 1
    if start >= size or (last and _position(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> errors.AppError:
    return errors.AppError(f"The range is outside the file ({size} bytes).",
                           errors.RANGE_NOT_SATISFIABLE,
                           headers={"Content-Range": f"bytes */{size}"})


def disposition(name: str, kind: str = "inline") -> str:
    """RFC 6266 with RFC 5987's ``filename*`` for names that are not plain ASCII; one that
    is not UTF-8 (Latin-1 bytes) as people read it (``names.readable``)."""
    name = readable(name)
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    value = f'{kind}; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def send_file(req: falcon.Request, resp: falcon.Response, path: Path, root: Path,
              transfers: Slots) -> None:
    """Answer with the file at ``path`` (real, inside ``root``), judged as opened (see
    files.reading): validators, one range, sendfile. A body of over TRANSFER_SIZE bytes holds a
    place among ``transfers`` until it is sent or the client has gone (none free: 503, the
    client's share taken: 429, before any header)."""
    handle = open_regular(path, root)
    body: Any = handle
    try:
        info = os.fstat(handle.fileno())
        span = _span(req, info)
        sending = span is not None and req.method != "HEAD"
        if span is not None and sending and span[1] - span[0] + 1 > TRANSFER_SIZE:
            transfers.take(req.context.client)
            body = HeldFile(handle, transfers, req.context.client)
        _headers(req, resp, path, info, span)
        if span is None or not sending:
            body.close()
            return
        handle.seek(span[0])
        # A file object: Falcon hands it to wsgi.file_wrapper, gunicorn to sendfile.
        resp.stream = body
    except BaseException:
        body.close()
        raise


# Audio and video opened in a tab: the browser's media page plays them, loading only the file
# itself. A sandbox stopped that page loading it at all (checked in Chromium:
# tests/test_browser_media.py). No script runs in a media page, and nosniff keeps the type.
MEDIA_POLICY = "default-src 'none'; media-src 'self'"


def inert(resp: falcon.Response) -> None:
    """A file of the download folder or a site's image is the site's content, served from
    this service's origin: opened as a page (an ``.svg`` thumbnail yt-dlp wrote, an ``.html``
    file), its scripts would run with the user's session and the whole API. The browser runs
    none (a sandbox of its own, no origin; audio and video: a policy that lets their media
    page load nothing but the file) and never guesses another type. Set after the type."""
    media = (resp.content_type or "").startswith(("audio/", "video/"))
    resp.set_header("Content-Security-Policy", MEDIA_POLICY if media else "sandbox")
    resp.set_header("X-Content-Type-Options", "nosniff")


def _span(req: falcon.Request, info: os.stat_result) -> tuple[int, int, bool] | None:
    """The bytes of the file to send (first, last, whether a range asked for them); None
    when the client has this file (304)."""
    etag = file_etag(info)
    if fresh(req, etag, info.st_mtime):
        return None
    size = info.st_size
    span = byte_range(req.get_header("Range"), size)
    if_range = req.get_header("If-Range")
    if span is not None and if_range and not matches(if_range, etag) \
            and if_range.strip() != _http_date(info.st_mtime):
        span = None  # the client's copy is older: all of the file, not a piece
    return (0, size - 1, False) if span is None else (*span, True)


def _headers(req: falcon.Request, resp: falcon.Response, path: Path, info: os.stat_result,
             span: tuple[int, int, bool] | None) -> None:
    """Headers for ``path``: the 304 when ``span`` is None."""
    resp.accept_ranges = "bytes"
    resp.content_type = kinds.mime_type(path.name)
    inert(resp)
    resp.set_header("Content-Disposition", disposition(path.name))
    if validate(req, resp, file_etag(info), info.st_mtime) or span is None:
        return
    first, last, ranged = span
    if ranged:
        resp.status = falcon.HTTP_206
        resp.set_header("Content-Range", f"bytes {first}-{last}/{info.st_size}")
    resp.content_length = last - first + 1


class Download:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, filename: str) -> None:
        path, _ = local_file(req, self.runtime, filename, "/api/download/")
        send_file(req, resp, path, self.runtime.files.root, self.runtime.transfers)

    on_head = on_get


def _http_date(timestamp: float) -> str:
    return formatdate(int(timestamp), usegmt=True)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/download/{filename:path}", Download(runtime))


_file_response = {"description": "The file (or the asked range of it).", "content": {
    "*/*": {"schema": {"type": "string", "format": "binary"}}},
    "headers": {name: {"schema": {"type": "string"}} for name in (
        "Content-Disposition", "Accept-Ranges", "Last-Modified", "Content-Range")}}


def _operation(method: str) -> dict[str, Any]:
    return {
        "tags": ["files"], "operationId": f"download{method.title()}",
        "summary": "A file of the download folder (ranges, validators, sendfile)",
        "parameters": [
            path_param("filename", "Relative to the download folder."),
            {"name": "Range", "in": "header", "schema": {"type": "string"},
             "description": "One range: bytes=a-b, a- or -n (several: the whole file)."},
            {"name": "If-Range", "in": "header", "schema": {"type": "string"}},
            query("ticket", {"type": "string"},
                  "Instead of credentials: a ticket from POST /api/auth/file-ticket for this "
                  "file (401 when unknown or expired, 403 for another file)."),
        ],
        "responses": {
            "200": _file_response,
            "206": _file_response,
            "302": {"description": "The path's normal form, or the file that has its id now.",
                    "headers": {"Location": {"schema": {"type": "string"}}}},
            "400": error("A refused path ('..', control characters, an encoded slash)."),
            "403": error("The path leads outside the download folder, or the ticket is for "
                         "another file."),
            "404": error("No such file."),
            "429": CLIENT_SHARE,
            "503": error(f"{FOLDER_GONE} Or: {TRANSFERS_FULL}"),
            "416": error("The range is outside the file (Content-Range: bytes */size)."),
        },
    }


PATHS: dict[str, dict[str, Any]] = {
    "/api/download/{filename}": {"get": _operation("get"), "head": _operation("head")},
}
