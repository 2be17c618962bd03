"""The OpenAPI 3.1 document of the API, and the interactive docs at ``/api/``.

The rule: **a route is documented where it is registered.** Every route family listed in
``app.FAMILIES`` (a module with ``add_routes(app, runtime)``) also defines
``PATHS: dict[str, dict]`` — OpenAPI path-item objects keyed by the route template exactly as
passed to ``app.add_route`` (``/api/history/{item_id}``), with every method the resource
answers, its parameters, request body and every status it can give. Shared schemas live in
``schemas.py``. ``build()`` assembles the document from the same ``FAMILIES`` that
``create_app`` registers, so a new family is documented by adding it to that one tuple, and
``tests/test_openapi.py`` fails when any registered route or method is missing here.

Falcon field converters are not part of an OpenAPI path: ``/api/presets/{record_id:int}`` is
documented as ``/api/presets/{record_id}`` (with an integer path parameter).

What middleware gives every endpoint is added here, once, not in each ``PATHS``:
``API-Version`` and ``X-Request-ID`` on every response, ``ETag`` on a GET's 200 and the 304
that ``If-None-Match`` gets (not for a streamed answer: ``text/event-stream``, or mark the
operation ``"x-etag": False``), 403 on the methods that change state (pages on other
origins), 413 and 415 where a JSON body is read, 401 and 429 (and the
security schemes) unless ``auth.is_open`` says the path is open, 500 everywhere. A new
cross-cutting rule (middleware that can answer for any endpoint) belongs in ``_conventions``.
"""

from __future__ import annotations

import copy
import html
import importlib.util
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import falcon
import orjson

from .. import __version__, errors
from ..runtime import Runtime
from .auth import is_open
from .middleware import API_VERSION
from .schemas import COMPONENTS, error, json_response, path_param

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

DESCRIPTION = f"""\
A home-server appliance that downloads media with yt-dlp. The endpoints follow YTPTube's API;
FlexGet's and Flasharr's conventions are laid over all of them.

- **Errors**: `{{"error": "<human text>", "code": "<MACHINE_CODE>"}}`; the codes and statuses
  are listed under the `Error` schema. Unknown routes answer 404, a wrong method 405 with
  `Allow`, in the same shape.
- **Headers**: `API-Version` ({API_VERSION}) and `X-Request-ID` on every response; `ETag` on
  every GET answer, and a matching `If-None-Match` gets `304` with no body.
- **Authentication** (when credentials are configured; else the API is open): Basic,
  `Authorization: Token <token>`, `?apikey=`, or the cookie from `POST /api/auth/login`.
  `/api/ping`, `/api/health`, the login and these docs are always open.
- **Bodies**: JSON only (`application/json`, else 415 — a missing type too), at most
  `YTP_MAX_BODY` bytes (413, refused before it is read).
- **Other sites' pages**: a `POST`, `PUT`, `PATCH` or `DELETE` whose `Origin` is neither the
  service's own nor in `YTP_CORS_ORIGINS` is refused (403); so is a websocket handshake.
- **Pagination**: `page` and `per_page`; the body's `pagination` object plus the `Link`
  (RFC 5988), `Total-Count` and `Count` headers.

**Websocket** (not an HTTP endpoint, so described here and under `x-websocket`): a separate
port (HTTP port + 1 by default; `GET /api/system/configuration` says where under
`websocket`), path `/ws`. The client sends `{{"event", "data"}}`; the server sends YTPTube's
`{{"event", "data": Event}}`, Event being `{{id, created_at, event, title, message, data}}`
with the payload in its `data`. Events: `connected` (with `sid`), `item_added`,
`item_updated` (the full item, on state changes and progress), `item_cancelled`,
`item_deleted`, `item_moved` (`{{to: "history", item}}`), `item_status`,
`item_completed`, `item_error`, `paused`, `resumed`, `log_info`, `log_success`,
`log_warning`, `log_error`, `config_update`; the client may send `add_url`, `item_cancel`,
`item_delete`, `item_start`, `item_pause`. Flasharr's protocol is on `/api/ws` of the same
port: `SYNC_ALL`, `TASK_ADDED`, `TASK_UPDATED`, `TASK_BATCH_UPDATE`, `TASK_REMOVED`,
`ENGINE_STATS`.
"""

WEBSOCKET = {
    "port": "HTTP port + 1 unless configured; see GET /api/system/configuration `websocket`",
    "paths": {
        "/ws": {
            "envelope": {"event": "string", "data": {
                "id": "string", "created_at": "date-time string", "event": "string",
                "title": "string or null", "message": "string or null", "data": "payload"}},
            "client_envelope": {"event": "string", "data": "any"},
            "server_events": [
                "connected", "item_added", "item_updated", "item_cancelled", "item_deleted",
                "item_moved", "item_status", "item_completed", "item_error", "paused",
                "resumed", "log_info", "log_success", "log_warning", "log_error",
                "config_update",
            ],
            "client_events": ["add_url", "item_cancel", "item_delete", "item_start",
                              "item_pause"],
        },
        "/api/ws": {
            "protocol": "Flasharr",
            "server_messages": ["SYNC_ALL", "TASK_ADDED", "TASK_UPDATED", "TASK_BATCH_UPDATE",
                                "TASK_REMOVED", "ENGINE_STATS"],
        },
    },
}

TAGS = [
    {"name": "system", "description": "Health, engine figures, configuration, pause/resume."},
    {"name": "auth", "description": "Cookie login and logout, websocket tickets."},
    {"name": "history", "description": "The download queue and the history."},
    {"name": "yt-dlp", "description": "URL info, option conversion, yt-dlp's options."},
    {"name": "flasharr", "description": "Flasharr's view of the same queue: downloads, "
                                        "batches, settings."},
    {"name": "docs", "description": "This document and the interactive docs."},
]


def _header_refs(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _has_etag(operation: dict[str, Any]) -> bool:
    """The ETag middleware tags a GET's whole body; a streamed answer (an event stream, or an
    operation marked ``"x-etag": False``) has none."""
    if operation.pop("x-etag", True) is False:
        return False
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    return not content or set(content) != {"text/event-stream"}


def _conventions(method: str, operation: dict[str, Any], protected: bool) -> None:
    """Add to ``operation`` what the middleware gives every endpoint (see the module doc)."""
    responses = operation.setdefault("responses", {})
    if method == "get" and _has_etag(operation):
        params = operation.setdefault("parameters", [])
        params.append({"$ref": "#/components/parameters/IfNoneMatch"})
        responses.setdefault("304", {"description": "Not modified: the ETag matches."})
        for status in ("200", "304"):
            if status in responses:
                responses[status].setdefault("headers", {}).update(_header_refs(["ETag"]))
    if method in {"post", "put", "patch", "delete"}:
        foreign = ("Sent by a browser page on another origin (not the service's own, not in "
                   "YTP_CORS_ORIGINS).")
        if "403" in responses:
            responses["403"]["description"] += f" Or: {foreign[0].lower()}{foreign[1:]}"
        else:
            responses["403"] = error(foreign)
    body = operation.get("requestBody")
    if body is not None:
        responses.setdefault("413", error("The body is over the limit (YTP_MAX_BODY)."))
        if "application/json" in body.get("content", {}):
            responses.setdefault("415", error("The body is not application/json."))
    if not protected:
        operation["security"] = []  # served without credentials
    else:
        responses.setdefault("401", {
            **error("Credentials are configured and none (or wrong ones) were sent."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"},
                                             "description": 'Basic realm="appliance"'}},
        })
        responses.setdefault("429", {
            **error("Too many failed attempts from this address, or every password-hashing "
                    "slot is busy (Retry-After: 1)."),
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
        })
    responses.setdefault("500", error("Unexpected failure; the body names the request id."))
    for response in responses.values():
        response.setdefault("headers", {}).update(_header_refs(["API-Version", "X-Request-ID"]))


def build(families: Iterable[ModuleType]) -> dict[str, Any]:
    """The document for ``families`` (each with ``PATHS``); conventions applied."""
    paths: dict[str, Any] = {}
    for family in families:
        # A family without PATHS is not refused here (that would break the app); the coverage
        # test in tests/test_openapi.py names each undocumented route instead.
        for template, item in getattr(family, "PATHS", {}).items():
            if template in paths:
                raise ValueError(f"{template} is documented twice ({family.__name__}).")
            item = copy.deepcopy(item)
            for method in METHODS:
                if method in item:
                    _conventions(method, item[method], not is_open(template))
            paths[template] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "appliance API",
            "version": __version__,
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": TAGS,
        "paths": paths,
        "components": copy.deepcopy(COMPONENTS),
        "security": [{"basic": []}, {"token": []}, {"apikey": []}, {"cookie": []}],
        "x-api-version": API_VERSION,
        "x-websocket": WEBSOCKET,
    }


# --- the docs routes --------------------------------------------------------------------

# Swagger UI's files that the page uses, served from the installed swagger-ui-py package (no
# CDN: the docs work with no internet). Only these names are served: no path from a request
# ever reaches the file system.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>appliance API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="{assets}/favicon-16x16.png" sizes="16x16">
<style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>
window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: {spec},
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null
  }});
}};
</script>
</body>
</html>
"""


def static_dir() -> Path | None:
    """Swagger UI's files in the swagger-ui-py package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class OpenApiDocument:
    """Built at each request (~30 ms), never kept: the document is ~2 MB of objects that a
    service holds for a page a person opens now and then."""

    def __init__(self, families: Iterable[ModuleType]) -> None:
        self.families = tuple(families)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        document = build(self.families)
        if req.root_path:  # mounted under a base path: tell clients where the API is
            document["servers"] = [{"url": req.root_path}]
        resp.data = orjson.dumps(document)


class DocsPage:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        root = req.root_path
        resp.content_type = falcon.MEDIA_HTML
        resp.data = PAGE.format(
            assets=html.escape(f"{root}/api/docs/assets"),
            # a JS string in a <script>: JSON, with "<" escaped so no "</script>" can close it
            spec=orjson.dumps(f"{root}/api/openapi.json").decode().replace("<", "\\u003c"),
        ).encode()


class DocsAsset:
    """Read at each request (the page cache keeps them), never kept: the bundle is 1.5 MB."""

    def _read(self, name: str) -> bytes:
        folder = static_dir()
        if folder is None or not (folder / name).is_file():
            raise errors.AppError(
                "Swagger UI's files are not installed (the swagger-ui-py package).",
                errors.UNAVAILABLE,
            )
        return (folder / name).read_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in ASSETS:
            raise errors.not_found(f"No such asset: {name[:100]}.")
        resp.data = self._read(name)
        resp.content_type = ASSETS[name]
        resp.cache_control = ["public", "max-age=86400"]


PATHS: dict[str, dict[str, Any]] = {
    "/api": {
        "get": {
            "tags": ["docs"],
            "operationId": "docsPage",
            "summary": "Interactive API docs (Swagger UI); also at /api/",
            "description": "Works with no internet: every asset is served by the app.",
            "responses": {"200": {"description": "The page.",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}},
        },
    },
    "/api/openapi.json": {
        "get": {
            "tags": ["docs"],
            "operationId": "openapiDocument",
            "summary": "This OpenAPI 3.1 document",
            "responses": {"200": json_response("The document.", {"type": "object"})},
        },
    },
    "/api/docs/assets/{name}": {
        "parameters": [path_param("name", "One of the bundled Swagger UI files.",
                                  {"enum": sorted(ASSETS)})],
        "get": {
            "tags": ["docs"],
            "operationId": "docsAsset",
            "summary": "A bundled Swagger UI file (CSS, JS, icons)",
            "responses": {
                "200": {
                    "description": "The file (Cache-Control: one day).",
                    "content": {
                        "text/css": {"schema": {"type": "string"}},
                        "text/javascript": {"schema": {"type": "string"}},
                        "image/png": {"schema": {"type": "string",
                                                 "contentMediaType": "image/png"}},
                    },
                },
                "404": error("Not one of the bundled files."),
                "503": error("Swagger UI's files are not installed."),
            },
        },
    },
}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    from .app import FAMILIES  # the same tuple create_app registers

    app.add_route("/api", DocsPage())
    app.add_route("/api/openapi.json", OpenApiDocument(FAMILIES))
    app.add_route("/api/docs/assets/{name}", DocsAsset())
