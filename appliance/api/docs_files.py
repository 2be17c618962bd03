"""``GET /api/docs/{file}`` (and ``/README.md``, ``/FAQ.md``, ``/API.md``): the project's own
documents, shipped inside the package (``appliance/docs/``), never fetched from the internet.

Only the names in :data:`DOCS` are served: the name from the request is looked up in that
table and never joined to a path, so no request can reach another file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import falcon

from .. import errors
from ..runtime import Runtime
from .schemas import error, path_param

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
DOCS = {
    "README.md": DOCS_DIR / "README.md",
    "FAQ.md": DOCS_DIR / "FAQ.md",
    "API.md": DOCS_DIR / "API.md",
}
CONTENT_TYPE = "text/markdown; charset=utf-8"
MAX_AGE = 3600


def read_doc(name: str) -> bytes:
    path = DOCS.get(name)
    if path is None:
        raise errors.not_found("Doc file not found.")
    try:
        return path.read_bytes()
    except OSError:  # not shipped with this installation
        raise errors.not_found("Doc file not found.") from None


class DocFile:
    def on_get(self, req: falcon.Request, resp: falcon.Response, file: str) -> None:
        resp.data = read_doc(file)
        resp.content_type = CONTENT_TYPE
        resp.cache_control = [f"max-age={MAX_AGE}"]


class NamedDocFile:
    def __init__(self, name: str) -> None:
        self.name = name

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        DocFile().on_get(req, resp, self.name)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/docs/{file}", DocFile())
    for name in DOCS:
        app.add_route(f"/{name}", NamedDocFile(name))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------


def _doc_get(operation_id: str, summary: str) -> dict[str, Any]:
    return {
        "tags": ["docs"],
        "operationId": operation_id,
        "summary": summary,
        "responses": {
            "200": {
                "description": f"The document (`Cache-Control: max-age={MAX_AGE}`).",
                "content": {"text/markdown": {"schema": {"type": "string"}}},
            },
            "404": error("Doc file not found (not one of the bundled documents)."),
        },
    }


PATHS: dict[str, dict[str, Any]] = {
    "/api/docs/{file}": {
        "parameters": [path_param("file", "One of the bundled documents.",
                                  {"enum": sorted(DOCS)})],
        "get": _doc_get("docFile", "A bundled document: README.md, FAQ.md or API.md"),
    },
    **{
        f"/{name}": {"get": _doc_get(f"doc{name.split('.')[0].title()}",
                                     f"{name} (same as /api/docs/{name})")}
        for name in DOCS
    },
}
