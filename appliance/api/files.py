"""``/api/file/…``: the file browser, its actions, and zip downloads (YTPTube's contract)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import falcon

from .. import errors, kinds
from ..files import paths
from ..files import zips as zipfiles
from ..files.index import SORTS, api_sidecars
from ..files.names import api_form
from ..files.reading import open_regular
from ..player.probe import ProbeError, html5_mime
from ..runtime import Runtime
from ..slots import HeldBody
from .conditional import fresh, validate
from .downloads import TRANSFER_SIZE
from .local_files import FOLDER_GONE, as_sent, download_folder_there, local_file
from .pagination import OPENAPI_HEADERS, page_request, pagination
from .requests import read_json
from .schemas import (
    CLIENT_SHARE,
    TRANSFERS_FULL,
    error,
    json_body,
    json_response,
    path_param,
    query,
)


def owner(req: falcon.Request) -> str:
    """Whom a prepared zip belongs to: the credentials that asked (auth on), else anyone."""
    return repr(getattr(req.context, "identity", None))


class Browser:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, path: str = "") -> None:
        settings = self.runtime.settings
        if not settings.browser_enabled:
            raise errors.AppError("File browser is disabled.", errors.FORBIDDEN)
        files = self.runtime.files
        download_folder_there(self.runtime)
        requested = as_sent(req, path, "/api/file/browser/")
        target = paths.resolve(files.root, requested)
        if not target.exists():
            raise errors.not_found(f"path '{requested or '/'}' does not exist.")
        if not target.is_dir():
            raise errors.invalid(f"path '{requested}' is not a directory.")
        paging = page_request(req, settings.default_pagination)
        sort_by = (req.get_param("sort_by") or "name").lower()
        if sort_by not in SORTS:
            raise errors.invalid(f"sort_by must be one of {', '.join(SORTS)}.")
        sort_order = (req.get_param("sort_order") or "asc").lower()
        if sort_order not in ("asc", "desc"):
            raise errors.invalid("sort_order must be asc or desc.")
        folder = paths.relative(files.root, target)
        page = files.index.page(folder, offset=paging.offset, limit=paging.per_page,
                                sort_by=sort_by, descending=sort_order == "desc",
                                search=req.get_param("search") or "")
        resp.media = {"path": api_form(folder) or "/", "contents": page.entries,
                      "pagination": pagination(req, resp, paging, page.total, len(page.entries))}


class Actions:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if not self.runtime.settings.browser_control_enabled:
            raise errors.AppError("File browser actions is disabled.", errors.FORBIDDEN)
        # A folder made (or a file moved) under a bare mount point lands on the system's disk.
        download_folder_there(self.runtime)
        files = self.runtime.files
        body = read_json(req, self.runtime.settings.max_body)
        resp.media = files.actions.run(files.root, body)


class ZipPrepare:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        download_folder_there(self.runtime)
        files = self.runtime.files
        body = read_json(req, self.runtime.settings.max_body)
        resp.media = files.zips.prepare(files.index, body, owner(req))


class ZipDownload:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        files = self.runtime.files
        zipped, made_of = zipfiles.build(files.root, files.zips.files(token, owner(req)))
        # its files are in use until the body is closed: so is it, whatever answer goes
        try:
            tag = '"' + hashlib.blake2b(made_of.encode(), digest_size=12).hexdigest() + '"'
            body: Iterable[bytes] = zipped
            if len(zipped) > TRANSFER_SIZE and not fresh(req, tag):
                # before any header: a 503 or 429 says only why
                self.runtime.transfers.take(req.context.client)
                body = HeldBody(body, self.runtime.transfers, req.context.client)
            if validate(req, resp, tag):
                zipped.close()
                return
        except BaseException:
            zipped.close()
            raise
        resp.content_type = "application/zip"
        resp.set_header("Content-Disposition", f'attachment; filename="{token}.zip"')
        resp.content_length = len(zipped)
        resp.stream = body


class Probe:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, file: str) -> None:
        path, rel = local_file(req, self.runtime, file, "/api/file/ffprobe/")
        with open_regular(path, self.runtime.files.root) as media:
            resp.media = _shown(self.runtime.player.prober.probe(media), rel)


def _shown(probed: dict[str, Any], rel: str) -> dict[str, Any]:
    """ffprobe's answer as a client sees it: the file named as the API names it, never by
    its place on this machine."""
    return {**probed, "format": {**probed.get("format", {}), "filename": api_form(rel)}}


class Info:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, file: str) -> None:
        path, rel = local_file(req, self.runtime, file, "/api/file/info/")
        try:
            with open_regular(path, self.runtime.files.root) as media:
                probed = self.runtime.player.prober.probe(media)
        except ProbeError:
            probed = {}  # not media: the rest is still worth telling
        sidecar = api_sidecars(self.runtime.files.index.sidecars(rel))
        if "subtitle" in sidecar:
            sidecar["subtitles"] = sidecar["subtitle"]  # the contract's name for YTPTube's
        resp.media = {
            "title": api_form(kinds.stem(path.name)),
            "ffprobe": _shown(probed, rel) if probed else {},
            "mimetype": html5_mime(probed, kinds.mime_type(path.name)),
            "sidecar": sidecar,
        }


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/file/ffprobe/{file:path}", Probe(runtime))
    app.add_route("/api/file/info/{file:path}", Info(runtime))
    browser = Browser(runtime)
    app.add_route("/api/file/browser", browser)
    app.add_route("/api/file/browser/{path:path}", browser)
    app.add_route("/api/file/actions", Actions(runtime))
    app.add_route("/api/file/download", ZipPrepare(runtime))
    app.add_route("/api/file/download/{token}", ZipDownload(runtime))


# OpenAPI path items of this family (the rule: appliance/api/openapi.py).
_PATH_DOC = ("Relative to the download folder ('/' or nothing: the folder itself). Refused: "
             "'..', control characters, percent-encoded slashes (400); a symlink leading "
             "outside the folder (403).")
_entry = {
    "type": "object",
    "required": ["type", "content_type", "name", "path", "size", "mime", "mtime", "ctime",
                 "is_dir", "is_file", "is_symlink"],
    "properties": {
        "type": {"enum": ["file", "dir"]},
        "content_type": {"enum": ["video", "subtitle", "audio", "image", "text", "metadata",
                                  "dir", "download"]},
        "name": {"type": "string"},
        "path": {"type": "string", "description": "Relative to the download folder."},
        "size": {"type": "integer", "description": "Bytes; 0 for a folder."},
        "mime": {"type": "string"},
        "mtime": {"type": "string", "format": "date-time"},
        "ctime": {"type": "string", "format": "date-time"},
        "is_dir": {"type": "boolean"},
        "is_file": {"type": "boolean"},
        "is_symlink": {"type": "boolean"},
    },
}
_listing = {
    "type": "object",
    "required": ["path", "contents", "pagination"],
    "properties": {
        "path": {"type": "string"},
        "contents": {"type": "array", "items": _entry},
        "pagination": {"$ref": "#/components/schemas/Pagination"},
    },
}


def _browser(with_path: bool) -> dict[str, Any]:
    params = [path_param("path", _PATH_DOC)] if with_path else []
    return {"get": {
        "tags": ["files"],
        "operationId": "fileBrowserPath" if with_path else "fileBrowser",
        "summary": "A page of a folder of the download folder: folders first, then files",
        "parameters": [
            *params,
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "per_page", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
            query("sort_by", {"enum": list(SORTS)}, "Default name; ties by name."),
            query("sort_order", {"enum": ["asc", "desc"]}, "Default asc."),
            query("search", {"type": "string"}, "Names containing this (case-insensitive, "
                  "composed or not; a name that is not UTF-8 as Windows-1252 reads it)."),
        ],
        "responses": {
            "200": json_response("The page.", _listing, headers=OPENAPI_HEADERS),
            "400": error("A refused path, a file's path, or bad paging/sort parameters."),
            "403": error("The browser is off (YTP_BROWSER_ENABLED), or the path leads outside."),
            "404": error("No such folder."),
            "503": error(FOLDER_GONE),
        },
    }}


_action = {
    "type": "object",
    "required": ["action", "path"],
    "properties": {
        "action": {"enum": ["rename", "delete", "move", "directory"]},
        "path": {"type": "string"},
        "new_name": {"type": "string", "description": "rename: one name, no slashes."},
        "new_path": {"type": "string", "description": "move: an existing folder."},
        "new_dir": {"type": "string", "description": "directory: sub/folders to create."},
    },
}
_result = {
    "type": "object",
    "required": ["path", "action", "ok"],
    "properties": {
        "path": {"type": "string"},
        "action": {"type": "string"},
        "ok": {"type": "boolean"},
        "status": {"type": "boolean", "description": "Same as ok (YTPTube's name)."},
        "error": {"type": "string"},
        "new_path": {"type": "string"},
        "new_dir": {"type": "string"},
        "deleted": {"type": "boolean"},
        "sidecar_count": {"type": "integer"},
        "sidecars_left": {"type": "array", "items": {"type": "string"},
                          "description": "Sidecars that did not follow the renamed file."},
        "warning": {"type": "string", "description": "Why they did not (the file is renamed)."},
    },
}

def _probe_doc(which: str) -> dict[str, Any]:
    info = which == "info"
    return {"get": {
        "tags": ["files"], "operationId": "fileInfo" if info else "fileFfprobe",
        "summary": "ffprobe, MIME type and sidecars of a file" if info
        else "ffprobe's JSON for a file (cached by path, size and mtime)",
        "parameters": [path_param("file", _PATH_DOC)],
        "responses": {
            "200": json_response("The facts.", {
                "type": "object", "required": ["title", "ffprobe", "mimetype", "sidecar"],
                "properties": {"title": {"type": "string"}, "ffprobe": {"type": "object"},
                               "mimetype": {"type": "string"},
                               "sidecar": {"type": "object"}}} if info else {
                "type": "object", "required": ["format", "streams"],
                "properties": {"format": {"type": "object"},
                               "streams": {"type": "array", "items": {"type": "object"}}}}),
            "302": {"description": "The path's normal form, or the file that has its id now.",
                    "headers": {"Location": {"schema": {"type": "string"}}}},
            "400": error("A refused path" + ("." if info else ", or not media ffprobe reads.")),
            "403": error("The path leads outside the download folder."),
            "404": error("No such file, or no longer a regular file when opened."),
            "503": error("Every ffprobe slot is busy (Retry-After); a cached answer still "
                         "comes. Or: " + FOLDER_GONE),
        },
    }}


PATHS: dict[str, dict[str, Any]] = {
    "/api/file/ffprobe/{file}": _probe_doc("ffprobe"),
    "/api/file/info/{file}": _probe_doc("info"),
    "/api/file/browser": _browser(False),
    "/api/file/browser/{path}": _browser(True),
    "/api/file/actions": {"post": {
        "tags": ["files"], "operationId": "fileActions",
        "summary": "Rename, delete, move, or make folders (one result per action, in order)",
        "requestBody": json_body({"type": "array", "items": _action, "minItems": 1}),
        "responses": {
            "200": json_response("One result per action.", {"type": "array", "items": _result}),
            "400": error("An invalid action, field or path (nothing was done)."),
            "403": error("Actions are off (YTP_BROWSER_CONTROL_ENABLED), or a path leads "
                         "outside (nothing was done)."),
            "503": error(FOLDER_GONE + " Nothing was done."),
        },
    }},
    "/api/file/download": {"post": {
        "tags": ["files"], "operationId": "fileZipPrepare",
        "summary": "Prepare a zip of files (and their sidecars): a token valid 10 minutes",
        "requestBody": json_body({"type": "array", "items": {"type": "string"}, "minItems": 1}),
        "responses": {
            "200": json_response("The token.", {
                "type": "object", "required": ["token", "files"],
                "properties": {"token": {"type": "string"},
                               "files": {"type": "array", "items": {"type": "string"}}}}),
            "400": error("Not an array of paths, a refused path, or no existing file."),
            "403": error("A path leads outside the download folder."),
            "429": error("Too many zips prepared at once."),
            "503": error(FOLDER_GONE),
        },
    }},
    "/api/file/download/{token}": {"get": {
        "tags": ["files"], "operationId": "fileZipDownload",
        "summary": "The prepared zip (stored, with Content-Length)",
        "parameters": [path_param("token", "From POST /api/file/download.")],
        "responses": {
            "200": {"description": "The zip.", "content": {"application/zip": {
                "schema": {"type": "string", "format": "binary"}}}},
            "400": error("Invalid or expired token, or none of its files is left."),
            "429": CLIENT_SHARE,
            "503": error(TRANSFERS_FULL),
        },
    }},
}
