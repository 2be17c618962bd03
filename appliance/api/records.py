"""The CRUD shape shared by presets, download fields and conditions: a paginated list with
POST, and one record with GET / PATCH / PUT / DELETE — routes and their OpenAPI document."""

from __future__ import annotations

from typing import Any

import falcon

from ..engine.records import RecordService
from ..runtime import Runtime
from .pagination import OPENAPI_HEADERS, openapi_parameters, page_request, pagination
from .requests import json_object
from .schemas import error, json_body, json_response, path_param, ref

# Pony stores these ids as 32-bit integers: a larger id cannot exist.
MAX_ID = 2**31 - 1


class RecordList:
    def __init__(self, runtime: Runtime, service: RecordService) -> None:
        self.runtime, self.service = runtime, service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        paging = page_request(req, self.runtime.settings.default_pagination)
        items, total = self.service.page(paging.page, paging.per_page)
        resp.media = {"items": items,
                      "pagination": pagination(req, resp, paging, total, len(items))}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.create(json_object(req, self.runtime.settings.max_body))


class RecordItem:
    def __init__(self, runtime: Runtime, service: RecordService) -> None:
        self.runtime, self.service = runtime, service

    def on_get(self, req: falcon.Request, resp: falcon.Response, record_id: int) -> None:
        resp.media = self.service.get(record_id)

    def _update(self, req: falcon.Request, resp: falcon.Response, record_id: int,
                partial: bool) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        resp.media = self.service.update(record_id, body, partial=partial)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, record_id: int) -> None:
        self._update(req, resp, record_id, partial=True)

    def on_put(self, req: falcon.Request, resp: falcon.Response, record_id: int) -> None:
        self._update(req, resp, record_id, partial=False)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, record_id: int) -> None:
        resp.media = self.service.delete(record_id)


def add_record_routes(app: falcon.App, runtime: Runtime, prefix: str,
                      service: RecordService) -> None:
    app.add_route(prefix, RecordList(runtime, service))
    # Ids that cannot exist do not match the route (404).
    template = prefix + f"/{{record_id:int(min=1, max={MAX_ID})}}"
    app.add_route(template, RecordItem(runtime, service))


def record_paths(prefix: str, tag: str, label: str, read_schema: dict[str, Any],
                 write_schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """OpenAPI path items for ``add_record_routes``."""

    def one() -> dict[str, Any]:  # one per operation: a GET's gets the ETag header added
        return json_response(f"The {label}.", read_schema)

    bad = error("Invalid body or fields (the text says which).")
    missing = error(f"No {label} with that id.")
    clash = error(f"Another {label} has that name.")
    listing = {"type": "object", "required": ["items", "pagination"],
               "properties": {"items": {"type": "array", "items": read_schema},
                              "pagination": ref("Pagination")}}
    record_id = path_param("record_id", f"The {label}'s id.",
                           {"type": "integer", "minimum": 1, "maximum": MAX_ID})
    return {
        prefix: {
            "get": {"tags": [tag], "summary": f"List {label}s (paginated)",
                    "operationId": f"list_{tag}", "parameters": openapi_parameters(),
                    "responses": {"200": json_response("A page.", listing,
                                                       headers=OPENAPI_HEADERS),
                                  "400": error("Bad page parameters.")}},
            "post": {"tags": [tag], "summary": f"Create a {label}",
                     "operationId": f"create_{tag}",
                     "requestBody": json_body({**write_schema, "required": ["name"]}),
                     "responses": {"200": one(), "400": bad, "409": clash}},
        },
        prefix + "/{record_id}": {
            "parameters": [record_id],
            "get": {"tags": [tag], "summary": f"One {label}", "operationId": f"get_{tag}",
                    "responses": {"200": one(), "404": missing}},
            "patch": {"tags": [tag], "summary": f"Change some fields of a {label}",
                      "operationId": f"patch_{tag}", "requestBody": json_body(write_schema),
                      "responses": {"200": one(), "400": bad, "404": missing, "409": clash}},
            "put": {"tags": [tag], "summary": f"Replace a {label}",
                    "operationId": f"put_{tag}",
                    "requestBody": json_body({**write_schema, "required": ["name"]}),
                    "responses": {"200": one(), "400": bad, "404": missing, "409": clash}},
            "delete": {"tags": [tag], "summary": f"Delete a {label}",
                       "operationId": f"delete_{tag}",
                       "responses": {"200": json_response(f"The deleted {label}.", read_schema),
                                     "400": bad, "404": missing}},
        },
    }
