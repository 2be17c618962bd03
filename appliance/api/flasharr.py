"""Flasharr's REST view of the same queue: ``/api/downloads…``, ``/api/batches…`` (its
``/api/settings``: flasharr_settings.py). Same items, same engine; only the shapes differ
(mapping in ``appliance.flasharr``)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import falcon

from .. import errors
from .. import flasharr as mapping
from ..engine.queue_order import Window
from ..runtime import Runtime
from ..store import Item
from ..store.records import DONE, QUEUE
from .pagination import (
    OPENAPI_HEADERS,
    PageRequest,
    openapi_parameters,
    page_request,
    pagination,
)
from .requests import json_object, query_bool
from .schemas import (
    FILES_AWAY,
    FILES_KEPT,
    error,
    json_body,
    json_response,
    nullable,
    path_param,
    query,
    ref,
)


def _task(item: Item) -> dict[str, Any]:
    return mapping.task(item.to_dict())


def list_request(req: falcon.Request, runtime: Runtime) -> tuple[str | None, PageRequest]:
    """A Flasharr list's ``status`` filter (any case) and page (``page``, ``limit``)."""
    status = mapping.parse_filter(req.get_param("status"))
    return status, page_request(req, runtime.settings.default_pagination, size_param="limit")


def overview(runtime: Runtime) -> dict[str, Any]:
    """``stats`` and ``status_counts``, which Flasharr's list answers carry."""
    live, counts = runtime.engine.stats(), runtime.store.status_counts()
    return {"stats": mapping.engine_stats(live, counts),
            "status_counts": mapping.status_counts(live, counts)}


class Downloads:
    """``GET /api/downloads`` (paginated) and ``POST /api/downloads``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status, paging = list_request(req, self.runtime)
        start, limit = paging.offset, paging.per_page
        if status in mapping.HISTORY_STATUSES:
            items, total = self.runtime.store.window(
                DONE, start, limit, statuses=mapping.HISTORY_STATUSES[status])
            tasks = [_task(i) for i in items]
        else:
            # The queue lives in the engine's memory, oldest first as it is dispatched;
            # history follows, newest first, paged in SQL. Only the page's items are made
            # tasks: each poll made the whole queue's (20,000 of a channel added at once:
            # 3 s of a request thread, in process on the shared box).
            queued = waiting(self.runtime, status, start, limit)
            tasks = [_task(i) for i in queued.items]
            total = queued.total
            if status is None:
                history, done_total = self.runtime.store.window(
                    DONE, max(0, start - queued.total), limit - len(tasks))
                tasks += [_task(i) for i in history]
                total += done_total
        body = pagination(req, resp, paging, total, len(tasks))
        resp.media = {"tasks": tasks, "total": total, "page": paging.page,
                      "pages": body["total_pages"],
                      # Today's Flasharr clients read these names.
                      "downloads": tasks, "limit": limit, "total_pages": body["total_pages"],
                      **overview(self.runtime)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        [item] = self.runtime.engine.add([body])
        task = _task(item)
        resp.status = falcon.HTTP_201
        resp.location = f"{req.context.prefix}/api/downloads/{item.id}"
        # The seed answers {id, filename, state}; today's Flasharr the whole task (it reads
        # batch_id from it): the task has all of these.
        resp.media = task


class Download:
    """``GET|DELETE /api/downloads/{item_id}``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = _task(_download(self.runtime, item_id))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        remove_file = query_bool(req, "remove_file") and self.runtime.settings.remove_files
        _download(self.runtime, item_id)
        result = self.runtime.engine.delete_items([item_id], remove_file=remove_file)
        if result.get(item_id) != "deleted":
            raise errors.not_found("Download not found.")
        kept = result.files_kept.get(item_id)
        resp.media = {"success": True, **({"file_kept": kept} if kept else {})}


def waiting(runtime: Runtime, state: str | None, start: int, count: int, *,
            loose: bool = False) -> Window:
    """``count`` of the queue's items in Flasharr ``state`` (any, when None) from the
    ``start``-th on, oldest first, and how many there are; ``loose``: only those of no
    batch."""
    def where(status: str, auto_start: bool, batched: bool) -> bool:
        return ((not loose or not batched)
                and (state is None or mapping.state_of(status, auto_start) == state))

    return runtime.engine.queue_window(start, count,
                                       where=where if loose or state is not None else None)


def _download(runtime: Runtime, item_id: str) -> Item:
    item = runtime.engine.get(item_id)
    if item is None:
        raise errors.not_found("Download not found.")
    return item


class DownloadAction:
    """``POST /api/downloads/{item_id}/pause|resume``: only for items in the queue."""

    def __init__(self, runtime: Runtime, action: str) -> None:
        self.runtime = runtime
        self.action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        item = _download(self.runtime, item_id)
        engine = self.runtime.engine
        run = engine.pause_items if self.action == "pause" else engine.start_items
        result = "not found"
        if item.kind == QUEUE:
            with contextlib.suppress(errors.AppError):  # finished in the meantime
                result = run([item_id])[item_id]
        if result == "not found":
            state = mapping.state(item.to_dict())
            raise errors.AppError(f"Only a queued or running download can be {self.action}d; "
                                  f"this one is {state}.", errors.CONFLICT)
        if self.action == "pause":
            resp.media = {"id": item_id, "state": "paused"}
        else:
            running = mapping.state(item.to_dict()) == "downloading"
            resp.media = {"id": item_id, "state": "downloading" if running else "queued"}


class Batches:
    """``GET /api/batches``: per ``batch_id``, totals from SQL plus live running downloads."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"batches": batch_summaries(self.runtime)}


class _KeptHistory:
    """The history's batch summaries of the store's last totals: the store hands out the same
    totals until its next write, and only the batches the queue has items of change between
    two polls (built at each one, 2,000 batches took 25-50 ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._of: list[dict[str, Any]] | None = None
        self._built: mapping.HistoryBatches = {}

    def of(self, totals: list[dict[str, Any]]) -> mapping.HistoryBatches:
        with self._lock:
            if self._of is not totals:  # (a list, so its identity: the store's write)
                self._built, self._of = mapping.history_batches(totals), totals
            return self._built


_KEPT_HISTORY = _KeptHistory()


def batch_summaries(runtime: Runtime) -> list[dict[str, Any]]:
    """Every batch, newest first: history totals kept by the store, queue items live from
    memory."""
    queue = runtime.engine.queue_batches()
    totals = runtime.store.batch_totals()
    return mapping.batches(totals, queue, _KEPT_HISTORY.of(totals))


def _queued_in_batch(runtime: Runtime, batch_id: str) -> list[str]:
    return runtime.engine.queue_ids(lambda i: i.batch_id == batch_id)


class BatchAction:
    """``POST /api/batches/{batch_id}/pause|resume``: every queued item of the batch."""

    def __init__(self, runtime: Runtime, action: str) -> None:
        self.runtime = runtime
        self.action = action

    def on_post(self, req: falcon.Request, resp: falcon.Response, batch_id: str) -> None:
        ids = _queued_in_batch(self.runtime, batch_id)
        if not ids and not self.runtime.store.batch_count(batch_id):
            raise errors.not_found("Batch not found.")
        engine = self.runtime.engine
        run = engine.pause_items if self.action == "pause" else engine.start_items
        results: dict[str, str] = {}
        if ids:
            with contextlib.suppress(errors.AppError):  # all finished in the meantime
                results = run(ids)
        done = sum(1 for v in results.values() if v != "not found")
        resp.media = {"batch_id": batch_id,
                      "state": "paused" if self.action == "pause" else "queued",
                      "items": done, "success": True, "affected": done}


class Batch:
    """``DELETE /api/batches/{batch_id}``: every item of the batch, queue and history."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_delete(self, req: falcon.Request, resp: falcon.Response, batch_id: str) -> None:
        remove_file = query_bool(req, "remove_file") and self.runtime.settings.remove_files
        ids = list(dict.fromkeys(
            _queued_in_batch(self.runtime, batch_id)
            + self.runtime.store.batch_ids(batch_id)))
        if not ids:
            raise errors.not_found("Batch not found.")
        results = self.runtime.engine.delete_items(ids, remove_file=remove_file)
        deleted = sum(1 for v in results.values() if v == "deleted")
        kept = {"files_kept": results.files_kept} if results.files_kept else {}
        resp.media = {"success": True, "deleted": deleted, "affected": deleted, **kept}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/downloads", Downloads(runtime))
    app.add_route("/api/downloads/{item_id}", Download(runtime))
    for action in ("pause", "resume"):
        app.add_route(f"/api/downloads/{{item_id}}/{action}", DownloadAction(runtime, action))
        app.add_route(f"/api/batches/{{batch_id}}/{action}", BatchAction(runtime, action))
    app.add_route("/api/batches", Batches(runtime))
    app.add_route("/api/batches/{batch_id}", Batch(runtime))


# --- OpenAPI 3.1 path items -------------------------------------------------------------

_STATE = {"type": "string", "enum": list(mapping.STATES)}
_TASK = {
    "type": "object",
    "description": "Flasharr's DownloadTask: an item of the queue or history in its shape.",
    "required": ["id", "filename", "state", "progress", "speed"],
    "properties": {
        "id": {"type": "string"},
        "filename": {"type": "string", "description": "File name, or the title/URL until "
                                                      "it is known."},
        "state": _STATE,
        "progress": {"type": "number", "description": "Percent."},
        "speed": {"type": "number", "description": "Bytes per second."},
        "eta": nullable({"type": "number"}),
        "downloaded_bytes": nullable({"type": "integer"}),
        "total_bytes": nullable({"type": "integer"}),
        "url": {"type": "string"},
        "title": {"type": "string"},
        "batch_id": {"type": "string"},
        "batch_name": {"type": "string"},
        "error": {"type": "string"},
        "created_at": nullable({"type": "string", "format": "date-time"}),
        "started_at": nullable({"type": "string", "format": "date-time"}),
        # today's Flasharr names
        "size": {"type": "integer", "minimum": 0, "description": "Total bytes (0: unknown)."},
        "downloaded": {"type": "integer", "minimum": 0},
        "error_message": nullable({"type": "string"}),
        "original_url": {"type": "string"},
        "host": {"type": "string", "description": "The extractor, or the URL's host."},
        "completed_at": nullable({"type": "string", "format": "date-time"}),
    },
}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
           "description": "Downloads per state (cancelled apart, and within failed), all."}
_ITEM_ID = path_param("item_id", "The download's id (the same as the item's id).")
_BATCH_ID = path_param("batch_id", "The batch id shared by the batch's items.")
_REMOVE_FILE = query("remove_file", {"type": "boolean"},
                     "Also delete the file (only when YTP_REMOVE_FILES is true).")
_SUCCESS = {"type": "object", "required": ["success"],
            "properties": {"success": {"type": "boolean"}}}
_NOT_QUEUED = error("The download is no longer in the queue (completed or failed).")


def _item_action(summary: str, state: str) -> dict[str, Any]:
    return {"post": {
        "tags": ["flasharr"], "summary": summary, "parameters": [_ITEM_ID],
        "responses": {
            "200": json_response("Done.", {
                "type": "object", "required": ["id", "state"],
                "properties": {"id": {"type": "string"},
                               "state": {"enum": [state, "downloading"]}}}),
            "404": error("No such download."),
            "409": _NOT_QUEUED,
        },
    }}


def _batch_action(summary: str, state: str) -> dict[str, Any]:
    return {"post": {
        "tags": ["flasharr"], "summary": summary, "parameters": [_BATCH_ID],
        "responses": {
            "200": json_response("Done; items counts the queued items it applied to.", {
                "type": "object", "required": ["batch_id", "state", "items"],
                "properties": {"batch_id": {"type": "string"}, "state": {"const": state},
                               "items": {"type": "integer", "minimum": 0}}}),
            "404": error("No such batch."),
        },
    }}


PATHS: dict[str, dict[str, Any]] = {
    "/api/downloads": {
        "get": {
            "tags": ["flasharr"],
            "summary": "Downloads: the queue (oldest first), then the history (newest first)",
            "parameters": [
                query("status", {"type": "string"},
                      f"Only tasks in this state: {', '.join(mapping.FILTERS)} (any case)."),
                *openapi_parameters("limit"),
            ],
            "responses": {
                "200": json_response("A page of tasks (tasks and downloads are the same).", {
                    "type": "object",
                    "required": ["tasks", "total", "page", "pages", "downloads", "limit",
                                 "total_pages", "stats", "status_counts"],
                    "properties": {"tasks": {"type": "array", "items": _TASK},
                                   "total": {"type": "integer", "minimum": 0},
                                   "page": {"type": "integer", "minimum": 1},
                                   "pages": {"type": "integer", "minimum": 1},
                                   "downloads": {"type": "array", "items": _TASK},
                                   "limit": {"type": "integer", "minimum": 1},
                                   "total_pages": {"type": "integer", "minimum": 1},
                                   "stats": {"type": "object"},
                                   "status_counts": _COUNTS},
                }, headers=dict(OPENAPI_HEADERS)),
                "400": error("Bad status, page or limit."),
            },
        },
        "post": {
            "tags": ["flasharr"],
            "summary": "Add a download (url, optional batch_id and batch_name)",
            "requestBody": json_body(ref("AddRequest"),
                                     "Flasharr's url, batch_id, batch_name; the other item "
                                     "fields of POST /api/history are accepted too."),
            "responses": {
                "201": json_response("Queued; Location names the new download. The whole "
                                     "task (the seed lists id, filename, state).", _TASK,
                                     headers={"Location": {"schema": {"type": "string"}}}),
                "400": error("Bad input; nothing was added."),
            },
        },
    },
    "/api/downloads/{item_id}": {
        "get": {
            "tags": ["flasharr"], "summary": "One download", "parameters": [_ITEM_ID],
            "responses": {"200": json_response("The task.", _TASK),
                          "404": error("No such download.")},
        },
        "delete": {
            "tags": ["flasharr"], "summary": "Delete a download (a running one is stopped)",
            "parameters": [_ITEM_ID, _REMOVE_FILE],
            "responses": {"200": json_response("Deleted.", {
                              **_SUCCESS, "properties": {
                                  **_SUCCESS["properties"],
                                  "file_kept": {"type": "string", "description":
                                                "Why its file stayed: another item records "
                                                "it too. Only when it did."}}}),
                          "400": error("Bad remove_file."),
                          "404": error("No such download."), "409": FILES_AWAY},
        },
    },
    "/api/downloads/{item_id}/pause": _item_action("Pause a download", "paused"),
    "/api/downloads/{item_id}/resume": _item_action("Resume a paused download", "queued"),
    "/api/batches": {
        "get": {
            "tags": ["flasharr"],
            "summary": "Batches: items sharing a batch_id (a playlist, or added together)",
            "responses": {"200": json_response("Every batch, newest first.", {
                "type": "object", "required": ["batches"],
                "properties": {"batches": {"type": "array", "items": {
                    "type": "object",
                    "required": ["batch_id", "batch_name", "total_items", "completed_items",
                                 "progress", "total_size", "downloaded_size"],
                    "properties": {
                        "batch_id": {"type": "string"},
                        "batch_name": {"type": "string"},
                        "total_items": {"type": "integer", "minimum": 0},
                        "completed_items": {"type": "integer", "minimum": 0},
                        "failed_items": {"type": "integer", "minimum": 0},
                        "progress": {"type": "number", "minimum": 0, "maximum": 100},
                        "total_size": {"type": "integer", "minimum": 0},
                        "downloaded_size": {"type": "integer", "minimum": 0},
                    },
                }}},
            })},
        },
    },
    "/api/batches/{batch_id}": {
        "delete": {
            "tags": ["flasharr"], "summary": "Delete every item of a batch",
            "parameters": [_BATCH_ID, _REMOVE_FILE],
            "responses": {
                "200": json_response("Deleted.", {
                    "type": "object", "required": ["success", "deleted"],
                    "properties": {"success": {"type": "boolean"},
                                   "deleted": {"type": "integer", "minimum": 0},
                                   "files_kept": FILES_KEPT}}),
                "400": error("Bad remove_file."),
                "404": error("No such batch."),
                "409": FILES_AWAY,
            },
        },
    },
    "/api/batches/{batch_id}/pause": _batch_action("Pause a batch's queued items", "paused"),
    "/api/batches/{batch_id}/resume": _batch_action("Resume a batch's paused items",
                                                    "queued"),
}
