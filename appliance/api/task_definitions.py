"""``/api/tasks/definitions…`` (the contract): how to list the entries of sites that no
built-in handler knows, saved as checked data (``appliance/tasks/definitions.py``)."""

from __future__ import annotations

from typing import Any

import falcon

from ..runtime import Runtime
from ..tasks.definitions import SCHEMA
from .pagination import page_request, pagination
from .records import MAX_ID, RecordItem, RecordList, record_paths
from .requests import json_object
from .schemas import error, json_response, query

PREFIX = "/api/tasks/definitions"


class DefinitionList(RecordList):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        paging = page_request(req, self.runtime.settings.default_pagination)
        items, total = self.service.page(paging.page, paging.per_page)
        if req.get_param("include") != "definition":
            items = [{k: v for k, v in i.items() if k != "definition"} for i in items]
        resp.media = {"items": items,
                      "pagination": pagination(req, resp, paging, total, len(items))}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_201
        resp.media = self.service.create(json_object(req, self.runtime.settings.max_body))


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    service = runtime.tasks.definitions
    app.add_route(PREFIX, DefinitionList(runtime, service))
    app.add_route(PREFIX + f"/{{record_id:int(min=1, max={MAX_ID})}}",
                  RecordItem(runtime, service))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------

WRITE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "enabled": {"type": "boolean"},
        "definition": {**{k: v for k, v in SCHEMA.items() if k != "$schema"},
                       "description": "Checked on save; 400 names the path of the first "
                                      "problem. Engine: http only."},
    },
}
READ: dict[str, Any] = {
    "type": "object", "required": ["id", "name", "enabled"],
    "properties": {**WRITE["properties"], "id": {"type": "integer"},
                   "definition": {"type": "object"}},
}

PATHS = record_paths(PREFIX, "task_definitions", "task definition", READ, WRITE)
_listing = PATHS[PREFIX]["get"]
_listing["parameters"] = [*_listing["parameters"], query(
    "include", {"enum": ["definition"]}, "include=definition: each item with its definition.")]
_create = PATHS[PREFIX]["post"]
_create["requestBody"]["content"]["application/json"]["schema"]["required"] = [
    "name", "definition"]
_create["responses"] = {"201": json_response("The task definition.", READ),
                        "400": error("Invalid body or definition (the text says where)."),
                        "409": error("Another task definition has that name.")}
