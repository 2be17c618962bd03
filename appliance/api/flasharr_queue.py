"""What today's Flasharr frontend uses beside the seed's routes, on the same queue:
``/api/downloads/pause-all|resume-all``, ``/api/downloads/{id}/retry``,
``/api/downloads/stats``, ``/api/downloads/batches`` (batches and standalone downloads, one
page of display rows) and ``/api/downloads/batch/{batch_id}…`` (the seed's ``/api/batches/…``
under Flasharr's current paths)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import falcon

from .. import errors
from .. import flasharr as mapping
from ..runtime import Runtime
from ..store.records import DONE, FINAL_STATUSES
from .flasharr import (
    _BATCH_ID,
    _ITEM_ID,
    _REMOVE_FILE,
    _TASK,
    Batch,
    BatchAction,
    _download,
    _task,
    batch_summaries,
    list_request,
    overview,
    waiting,
)
from .pagination import (
    MAX_PER_PAGE,
    OPENAPI_HEADERS,
    openapi_parameters,
    page_request,
    pagination,
)
from .schemas import FILES_AWAY, error, json_response, query


class AllAction:
    """``POST /api/downloads/pause-all|resume-all``: every download of the queue that can
    be paused (queued or running) or resumed (paused)."""

    def __init__(self, runtime: Runtime, action: str) -> None:
        self.runtime = runtime
        self.action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        engine = self.runtime.engine
        want = self.action == "resume"
        ids = engine.queue_ids(lambda i: i.auto_start != want)
        results: dict[str, str] = {}
        if ids:
            run = engine.start_items if want else engine.pause_items
            with contextlib.suppress(errors.AppError):  # all finished in the meantime
                results = run(ids)
        resp.media = {"success": True,
                      "affected": sum(1 for v in results.values() if v != "not found")}


class Retry:
    """``POST /api/downloads/{item_id}/retry``: a failed, cancelled or completed download is
    added again with the same request (a new id; the old row is removed, so clients see
    TASK_REMOVED then TASK_ADDED)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # The downloads a request is retrying now: a second retry of one (a double click, an
        # automation fired twice) passed the check too and queued it a second time.
        self._retrying: set[str] = set()
        self._lock = threading.Lock()

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        with self._lock:
            if item_id in self._retrying:
                raise errors.AppError("This download is being retried already.",
                                      errors.CONFLICT)
            self._retrying.add(item_id)
        try:
            resp.media = self._retry(item_id)
        finally:
            with self._lock:
                self._retrying.discard(item_id)

    def _retry(self, item_id: str) -> dict[str, Any]:
        item = _download(self.runtime, item_id)
        if item.kind != DONE or item.status not in FINAL_STATUSES:
            raise errors.AppError(f"Only a completed or failed download can be retried; this "
                                  f"one is {mapping.state(item.to_dict())}.", errors.CONFLICT)
        [added] = self.runtime.engine.add([{
            "url": item.url, "preset": item.preset, "folder": item.folder,
            "template": item.template, "cookies": item.cookies, "cli": item.cli,
            "auto_start": True, "batch_id": item.batch_id, "batch_name": item.batch_name,
            "extras": item.extras,
        }])
        self.runtime.engine.delete_items([item_id])
        return {"success": True, "id": added.id, "state": _task(added)["state"]}


class Stats:
    """``GET /api/downloads/stats``: the engine's figures, as ``/api/engine/stats``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = overview(self.runtime)["stats"]


class BatchRows:
    """``GET /api/downloads/batches``: display rows, each batch one row (newest first), then
    the downloads of no batch (queue oldest first, then history newest first)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status, paging = list_request(req, self.runtime)
        start, limit = paging.offset, paging.per_page
        batches = [b for b in batch_summaries(self.runtime)
                   if status is None or _batch_has(b, status)]
        shown = batches[start : start + limit]
        offset = max(0, start - len(batches))
        loose = waiting(self.runtime, status, offset, limit - len(shown), loose=True)
        standalone = [_task(i) for i in loose.items]
        total = len(batches) + loose.total
        if status is None or status in mapping.HISTORY_STATUSES:
            history, done_total = self.runtime.store.window(
                DONE, max(0, offset - loose.total), limit - len(shown) - len(standalone),
                statuses=mapping.HISTORY_STATUSES.get(status or ""), standalone=True)
            standalone += [_task(i) for i in history]
            total += done_total
        body = pagination(req, resp, paging, total, len(shown) + len(standalone))
        resp.media = {"batches": shown, "standalone": standalone, "total": total,
                      "page": paging.page, "limit": limit,
                      "total_pages": body["total_pages"], **overview(self.runtime)}


def _batch_has(batch: dict[str, Any], status: str) -> bool:
    key = "failed_items" if status == "cancelled" else f"{status}_items"
    return batch.get(key, 0) > 0


class BatchItems:
    """``GET /api/downloads/batch/{batch_id}/items``: the batch's downloads as tasks, oldest
    first, a page at a time (``page``, ``limit``: by default the first 1,000, which is every
    item of all but a subscription's batch after years; it was all of them, 20,000 of a
    channel's uploads in one answer of megabytes). The page comes from the store, each of its
    queued items with its live figures from the engine."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, batch_id: str) -> None:
        paging = page_request(req, MAX_PER_PAGE, size_param="limit")
        stored, total = self.runtime.store.batch_page(batch_id, paging.offset,
                                                      paging.per_page, newest_first=False)
        if not total:
            raise errors.not_found("Batch not found.")
        live = {i.id: i for i in
                self.runtime.engine.queue_select(lambda i: i.batch_id == batch_id)}
        pagination(req, resp, paging, total, len(stored))
        resp.media = [_task(live.get(i.id, i)) for i in stored]


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    # Literal segments win over {item_id} in Falcon's router: "pause-all" is not an id.
    for action in ("pause", "resume"):
        app.add_route(f"/api/downloads/{action}-all", AllAction(runtime, action))
        app.add_route(f"/api/downloads/batch/{{batch_id}}/{action}",
                      BatchAction(runtime, action))
    app.add_route("/api/downloads/{item_id}/retry", Retry(runtime))
    app.add_route("/api/downloads/stats", Stats(runtime))
    app.add_route("/api/downloads/batches", BatchRows(runtime))
    app.add_route("/api/downloads/batch/{batch_id}", Batch(runtime))
    app.add_route("/api/downloads/batch/{batch_id}/items", BatchItems(runtime))


# --- OpenAPI 3.1 path items -------------------------------------------------------------

_BULK = json_response("Done; affected counts the downloads it applied to.", {
    "type": "object", "required": ["success", "affected"],
    "properties": {"success": {"type": "boolean"},
                   "affected": {"type": "integer", "minimum": 0}}})
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
           "description": "Downloads per state (cancelled apart, and within failed), all."}
_STATS = {"type": "object", "description": "As GET /api/engine/stats."}
_BATCH = {"type": "object", "required": [
    "batch_id", "batch_name", "total_items", "completed_items", "failed_items",
    "downloading_items", "paused_items", "queued_items", "progress", "total_size",
    "downloaded_size", "speed", "state", "created_at"]}
_STATUS = query("status", {"type": "string"},
                f"Only rows in this state: {', '.join(mapping.FILTERS)} (any case).")


def _bulk(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"post": {"tags": ["flasharr"], "summary": summary, "parameters": parameters,
                     "responses": {"200": _BULK, "404": error("No such batch.")}}}


PATHS: dict[str, dict[str, Any]] = {
    "/api/downloads/pause-all": _bulk("Pause every queued or running download", []),
    "/api/downloads/resume-all": _bulk("Resume every paused download", []),
    "/api/downloads/{item_id}/retry": {"post": {
        "tags": ["flasharr"], "parameters": [_ITEM_ID],
        "summary": "Add a completed or failed download again (as a new download)",
        "responses": {
            "200": json_response("Queued again under the new id.", {
                "type": "object", "required": ["success", "id", "state"],
                "properties": {"success": {"type": "boolean"}, "id": {"type": "string"},
                               "state": {"type": "string"}}}),
            "404": error("No such download."),
            "409": error("The download is still in the queue."),
        },
    }},
    "/api/downloads/stats": {"get": {
        "tags": ["flasharr"], "summary": "Engine figures (as /api/engine/stats)",
        "responses": {"200": json_response("The figures.", _STATS)},
    }},
    "/api/downloads/batches": {"get": {
        "tags": ["flasharr"], "parameters": [_STATUS, *openapi_parameters("limit")],
        "summary": "Display rows: batches (newest first), then downloads of no batch",
        "responses": {
            "200": json_response("A page of rows.", {
                "type": "object",
                "required": ["batches", "standalone", "total", "page", "limit",
                             "total_pages", "stats", "status_counts"],
                "properties": {
                    "batches": {"type": "array", "items": _BATCH},
                    "standalone": {"type": "array", "items": _TASK},
                    "total": {"type": "integer", "minimum": 0},
                    "page": {"type": "integer", "minimum": 1},
                    "limit": {"type": "integer", "minimum": 1},
                    "total_pages": {"type": "integer", "minimum": 1},
                    "stats": _STATS, "status_counts": _COUNTS,
                }}),
            "400": error("Bad status, page or limit."),
        },
    }},
    "/api/downloads/batch/{batch_id}": {"delete": {
        "tags": ["flasharr"], "summary": "Delete every download of a batch",
        "parameters": [_BATCH_ID, _REMOVE_FILE],
        "responses": {"200": _BULK, "400": error("Bad remove_file."),
                      "404": error("No such batch."), "409": FILES_AWAY},
    }},
    "/api/downloads/batch/{batch_id}/items": {"get": {
        "tags": ["flasharr"], "summary": "The downloads of a batch, oldest first, paged",
        "parameters": [_BATCH_ID, *openapi_parameters("limit", default=MAX_PER_PAGE)],
        "responses": {"200": json_response("The tasks of the page (a bare array; the headers "
                                           "say the pages).",
                                           {"type": "array", "items": _TASK},
                                           headers=dict(OPENAPI_HEADERS)),
                      "400": error("Bad page or limit."),
                      "404": error("No such batch.")},
    }},
    "/api/downloads/batch/{batch_id}/pause": _bulk("Pause a batch's queued downloads",
                                                   [_BATCH_ID]),
    "/api/downloads/batch/{batch_id}/resume": _bulk("Resume a batch's paused downloads",
                                                    [_BATCH_ID]),
}

