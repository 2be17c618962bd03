"""``/api/history…``: the queue and the history of downloads."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import falcon

from .. import errors
from ..engine.deleting import Deleted
from ..engine.edits import EDITABLE_SAID
from ..engine.engine import DownloadEngine
from ..files import paths
from ..files.index import api_sidecars
from ..runtime import Runtime
from ..store import Item, StatusFilter
from ..store.order import Anchor
from ..store.records import ALL_STATUSES, DONE, FINISHED, QUEUE
from ..store.search import TextSearch
from .middleware import not_modified
from .pagination import (
    OPENAPI_HEADERS,
    Anchored,
    PageRequest,
    anchor,
    openapi_parameters,
    page_request,
    pagination,
)
from .queue_view import QUEUE_COUNT, QUEUE_ITEM, QUEUE_PARAMETERS, requested_queue
from .requests import ids_from, json_object, read_json
from .schemas import (
    BULK_RESULT,
    FILES_AWAY,
    FILES_KEPT,
    URL,
    error,
    json_body,
    json_response,
    path_param,
    query,
    ref,
)

# The legacy unpaginated shape would send the whole history and queue; past this many items
# each is cut (documented in docs/API.md) so that 100,000 items never become one response.
LEGACY_HISTORY_LIMIT = 1000
MAX_SEARCH = 200  # characters; a longer search is a mistake or an attack


def _search(req: falcon.Request) -> TextSearch | None:
    text = req.get_param("search")
    if text is None:
        return None
    if len(text) > MAX_SEARCH:
        raise errors.invalid(f"search must be at most {MAX_SEARCH} characters.")
    if any((ord(c) < 32 and not c.isspace()) or ord(c) == 127 for c in text):
        raise errors.invalid("search must not contain control characters.")
    return TextSearch.parse(text)


def listed(runtime: Runtime, items: list[Item]) -> list[dict[str, Any]]:
    """Items as history answers carry them: each with ``sidecar`` (YTPTube's name), the
    subtitles, thumbnail, NFO and info.json beside a finished item's file — from the file
    index, in one pass per folder for the whole page (never a folder scan per row). A file in
    a folder that is no longer the download folder has none (it is not indexed)."""
    files = runtime.files
    root = str(files.root)
    homes: dict[str, bool] = {}
    rels: dict[str, str] = {}
    for item in items:
        if item.status != FINISHED or not item.filename or not item.download_folder:
            continue
        if item.download_folder not in homes:
            homes[item.download_folder] = os.path.realpath(item.download_folder) == root
        if homes[item.download_folder]:
            # as the index names it: a file moved into a folder whose name is no UTF-8
            # is kept as the API names it (F%E9/x.mp4), and had no sidecars
            with contextlib.suppress(errors.AppError):
                rels[item.id] = paths.stored(files.root, item.filename)
    found = files.index.sidecars_of(rels.values())
    return [{**item.to_dict(),
             "sidecar": api_sidecars(found[rels[item.id]]) if item.id in rels else {}}
            for item in items]


def _page_params(req: falcon.Request, default_per_page: int) -> tuple[PageRequest, bool]:
    paging = page_request(req, default_per_page)
    order = (req.get_param("order") or "DESC").upper()
    if order not in {"ASC", "DESC"}:
        raise errors.invalid("order must be ASC or DESC.")
    return paging, order == "DESC"




class History:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine: DownloadEngine = runtime.engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        kind = (req.get_param("type") or "all").lower()
        if kind not in {"all", QUEUE, DONE}:
            raise errors.invalid("type must be one of all, queue, done.")
        search = _search(req)
        if kind == "all":
            if search is not None:
                raise errors.invalid("search needs type=queue or type=done.")
            if anchor(req) is not None:
                raise errors.invalid("after needs type=queue or type=done.")
            # The queue is cut as the history is (a big channel added at once queues tens of
            # thousands): the running items, then the newest waiting, as /api/history/live
            # cuts it with queue_limit (which, with queue_fields, is read here too).
            queue, _ = requested_queue(req, self.engine, LEGACY_HISTORY_LIMIT)
            resp.media = {
                "queue": queue,
                "history": listed(self.runtime,
                                  self.runtime.store.history(LEGACY_HISTORY_LIMIT)),
            }
            return
        paging, newest_first = _page_params(req, self.runtime.settings.default_pagination)
        page, per_page = paging.page, paging.per_page
        status = StatusFilter.parse(req.get_param("status"))
        after = anchor(req)
        if kind == DONE:
            result = self.runtime.store.page(DONE, page, per_page, newest_first=newest_first,
                                             status=status, search=search, after=after)
            items, total, more = result.items, result.total, result.more
        else:
            items, total, more = self._queue_page(page, per_page, newest_first, status,
                                                  search, after)
        anchored = None if after is None else Anchored(
            more, Anchor(items[-1].created_at, items[-1].id).text() if items else None)
        resp.media = {
            "pagination": pagination(req, resp, paging, total, len(items), anchored),
            "items": listed(self.runtime, items),
        }

    def _queue_page(
        self, page: int, per_page: int, newest_first: bool, status: StatusFilter | None,
        search: TextSearch | None, after: Anchor | None,
    ) -> tuple[list[Item], int, bool]:
        """The page, the list's total and whether items follow the page (see ``page``): the
        page's items alone are copied. A status's total is the queue's kept count; a search
        of the text tests every item (no count can be kept of what any text finds)."""
        window = self.engine.queue_window(
            (page - 1) * per_page, per_page, newest_first=newest_first, after=after,
            where=None if status is None else lambda s, _auto, _batched: status.passes(s),
            keep=None if search is None else lambda i: search.finds(i.title, i.url))
        return window.items, window.total, window.more

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.runtime.settings.max_body)
        payloads = body if isinstance(body, list) else [body]
        if not payloads:
            raise errors.invalid("At least one item is required.")
        items = self.engine.add(payloads)
        resp.media = [
            {"status": "queued", "id": i.id, "_id": i.id, "url": i.url,
             **({"removed_options": i.removed_options} if i.removed_options else {})}
            for i in items
        ]

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        kind = body.get("type")
        if not kind:
            raise errors.invalid("type is required.")
        if not isinstance(kind, str) or kind not in {QUEUE, DONE}:
            raise errors.invalid("type must be 'queue' or 'done'.")
        remove_file = body.get("remove_file", True)
        if not isinstance(remove_file, bool):
            raise errors.invalid("remove_file must be true or false.")
        remove_file = remove_file and self.runtime.settings.remove_files
        ids, status = body.get("ids"), body.get("status")
        if ids:
            if not isinstance(ids, list) or not all(isinstance(i, str) and i.strip() for i in ids):
                raise errors.invalid("ids must be an array of item ids.")
            deleted = self.engine.delete_items(ids, remove_file=remove_file, kind=kind)
            resp.media = {**deleted, **_files_kept(deleted)}
            return
        if not status or not isinstance(status, str):
            raise errors.invalid("either 'ids' or 'status' filter is required.")
        wanted = StatusFilter.parse(status)
        if wanted is not None and wanted.exclude and wanted.status not in ALL_STATUSES:
            # "all but nothing" (a bare "!", or a mistyped name) would delete every item:
            # the very thing the required filter is there to stop.
            raise errors.invalid(f"status {status!r} excludes no status there is, so it would "
                                 f"delete every item; use one of: "
                                 f"{', '.join(sorted(ALL_STATUSES))}, or '!' and one of them.")
        matching = self.engine.matching_ids(kind, wanted)
        results = self.engine.delete_items(matching, remove_file=remove_file, kind=kind)
        deleted = sum(1 for v in results.values() if v == "deleted")
        resp.media = {"items": dict(results), "deleted": deleted, **_files_kept(results)}


def _files_kept(deleted: Deleted) -> dict[str, Any]:
    """What a delete's answer adds to YTPTube's: why the file of an item deleted with its
    files stayed (another item records it too), by item id; nothing when none stayed."""
    return {"files_kept": deleted.files_kept} if deleted.files_kept else {}


class HistoryItem:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @staticmethod
    def _check_id(item_id: str) -> None:
        # A blank id names no item (and the store cannot look one up: it would be a 500).
        if not item_id.strip():
            raise errors.not_found("Item not found.")

    def _item(self, item_id: str) -> Item:
        self._check_id(item_id)
        item = self.runtime.engine.get(item_id)
        if item is None:
            raise errors.not_found("Item not found.")
        return item

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        [resp.media] = listed(self.runtime, [self._item(item_id)])

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        if not body:
            raise errors.invalid(f"No field to change was given. {EDITABLE_SAID}")
        self._check_id(item_id)
        item, changed = self.runtime.engine.update_item(item_id, body)
        if not changed:
            not_modified(resp)
            return
        resp.media = item.to_dict()


class QuickAdd:
    """``GET /api/history/add``: a bookmarklet-friendly add with its own answer shape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            url = self._add(req)
        except errors.AppError as exc:
            # The contract's own shape ({status, message}) besides the API's (error, code).
            exc.extra = {"status": False, "message": exc.message, **exc.extra}
            raise
        resp.media = {"status": True, "message": f"Added '{url}' to the download queue."}

    def _add(self, req: falcon.Request) -> str:
        refusal = self.runtime.auth.browsers.quick_add_refusal(req.get_header)
        if refusal is not None:
            raise errors.AppError(refusal, errors.FORBIDDEN)
        url, preset = req.get_param("url"), req.get_param("preset")
        if not url:
            raise errors.invalid("url param is required.")
        if preset:
            self.runtime.engine.presets.check(preset)
        self.runtime.engine.add([{"url": url, **({"preset": preset} if preset else {})}])
        return url


class Live:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        queue, queue_count = requested_queue(req, self.runtime.engine)
        resp.media = {
            "history_count": self.runtime.store.count(DONE),
            "queue": {item["id"]: item for item in queue},
            "queue_count": queue_count,
        }


class Bulk:
    """``POST /api/history/start|pause|cancel`` with ``{"ids": [...]}``."""

    def __init__(self, runtime: Runtime, action: str) -> None:
        self.runtime = runtime
        self.action = {
            "start": runtime.engine.start_items,
            "pause": runtime.engine.pause_items,
            "cancel": runtime.engine.cancel_items,
        }[action]

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.action(ids_from(json_object(req, self.runtime.settings.max_body)))


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/history", History(runtime))
    app.add_route("/api/history/add", QuickAdd(runtime))
    app.add_route("/api/history/live", Live(runtime))
    for action in ("start", "pause", "cancel"):
        app.add_route(f"/api/history/{action}", Bulk(runtime, action))
    app.add_route("/api/history/{item_id}", HistoryItem(runtime))


# OpenAPI path items of this family (the rule: appliance/api/openapi.py).
_item_id = path_param("item_id", "The item's id (UUID).")
_history_all = {
    "type": "object", "required": ["queue", "history"],
    "description": f"type=all: the queue (at most {LEGACY_HISTORY_LIMIT} items, or "
                   f"queue_limit) and the newest {LEGACY_HISTORY_LIMIT} history items.",
    "properties": {"queue": {"type": "array", "items": QUEUE_ITEM},
                   "history": {"type": "array", "items": ref("Item")}},
}
_history_page = {
    "type": "object", "required": ["pagination", "items"],
    "description": "type=queue or type=done: one page.",
    "properties": {"pagination": ref("Pagination"),
                   "items": {"type": "array", "items": ref("Item")}},
}
_quick_add = {
    "type": "object", "required": ["status", "message"],
    "properties": {"status": {"type": "boolean"}, "message": {"type": "string"}},
}
_edit = {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "description": "title and extras on any item; the others only while it waits in the queue "
                   "(409 otherwise). Any other field: 400.",
    "properties": {
        "title": {"type": "string"},
        "extras": {"type": "object"},
        **{name: {"type": "string"} for name in ("preset", "folder", "template", "cli",
                                                  "cookies")},
    },
}
_queued = {
    "type": "array",
    "items": {
        "type": "object", "required": ["status", "id", "_id", "url"],
        "properties": {
            "status": {"const": "queued"},
            "id": {"type": "string"}, "_id": {"type": "string"}, "url": {"type": "string"},
            "removed_options": {"type": "array", "items": {"type": "string"},
                                "description": "Unsafe yt-dlp options that were removed."},
        },
    },
}


def _bulk(action: str, answer: str) -> dict[str, Any]:
    return {"post": {
        "tags": ["history"], "operationId": f"history{action.title()}",
        "summary": f"{action.title()} queued items (per id: `{answer}` or `not found`)",
        "requestBody": json_body(ref("Ids")),
        "responses": {"200": json_response("Per id.", ref("BulkResult")),
                      "400": error("ids missing or not an array of strings."),
                      "404": error("None of the ids is known.")},
    }}


PATHS: dict[str, dict[str, Any]] = {
    "/api/history": {
        "get": {
            "tags": ["history"], "operationId": "listHistory",
            "summary": "The queue and the history; paginated with type=queue|done",
            "parameters": [
                query("type", {"enum": ["all", QUEUE, DONE], "default": "all"},
                      "all: both lists (history cut to the newest "
                      f"{LEGACY_HISTORY_LIMIT}, the queue to {LEGACY_HISTORY_LIMIT}: the "
                      "running items, then the newest waiting); queue or done: one paginated "
                      "list. Any case."),
                *QUEUE_PARAMETERS,
                *openapi_parameters(),
                query("order", {"enum": ["DESC", "ASC", "desc", "asc"], "default": "DESC"},
                      "Newest first (DESC) or oldest first. Any case."),
                query("status", {"type": "string"},
                      "`x` keeps status x, `!x` drops it (queue and done only).",),
                query("search", {"type": "string", "maxLength": MAX_SEARCH},
                      "Words that must each appear in the title or URL, in any case, taken "
                      "literally (queue and done only)."),
                query("after", {"type": "string", "pattern": r"^[^,]+(,.+)?$"},
                      "Only the items after this position in the list's order (creation "
                      "time, then id): an item's `created_at,id` or its created_at alone "
                      "(older ones newest first, newer ones oldest first). The next link "
                      "then carries its page's last item's: a walk that follows it sees "
                      "every item once while others are added or deleted (queue and done "
                      "only)."),
            ],
            "responses": {
                "200": json_response("The lists.", {"anyOf": [_history_all, _history_page]},
                                     headers=dict(OPENAPI_HEADERS)),
                "400": error("Bad type, page, per_page, order, search or after."),
            },
        },
        "post": {
            "tags": ["history"], "operationId": "addItems",
            "summary": "Add downloads: one object or an array",
            "description": "Info extraction and the downloads continue in the background. "
                           "Nothing is stored when any item is refused.",
            "requestBody": json_body({"anyOf": [
                ref("AddRequest"),
                {"type": "array", "items": ref("AddRequest"), "minItems": 1},
            ]}),
            "responses": {
                "200": json_response("Queued, in the order given.", _queued),
                "400": error("A bad item: URL not http(s), unknown preset, folder or template "
                             "outside the download folder, options yt-dlp cannot parse."),
                "503": error("The service is shutting down."),
            },
        },
        "delete": {
            "tags": ["history"], "operationId": "deleteItems",
            "summary": "Delete items by ids or by a status filter",
            "description": "Files are deleted only when remove_file is true (the default) and "
                           "YTP_REMOVE_FILES=true. A running item is stopped first.",
            "requestBody": json_body({
                "type": "object", "required": ["type"],
                "properties": {
                    "type": {"enum": [QUEUE, DONE]},
                    "ids": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "status": {"type": "string",
                               "description": "Used when ids is empty: `x` or `!x`."},
                    "remove_file": {"type": "boolean", "default": True},
                },
            }),
            "responses": {
                "200": json_response("By ids: per id. By status: per id, and the count.", {
                    "anyOf": [
                        {**BULK_RESULT, "properties": {"files_kept": FILES_KEPT}},
                        {"type": "object", "required": ["items", "deleted"],
                         "properties": {"items": ref("BulkResult"),
                                        "deleted": {"type": "integer"},
                                        "files_kept": FILES_KEPT}},
                    ]}),
                "400": error("type missing or bad; neither ids nor status."),
                "409": FILES_AWAY,
            },
        },
    },
    "/api/history/add": {"get": {
        "tags": ["history"], "operationId": "quickAdd",
        "summary": "Add one URL from a bookmarklet; answers {status, message} even on errors",
        "parameters": [query("url", URL, "The URL to download.", required=True),
                       query("preset", {"type": "string"}, "A preset name.")],
        "responses": {
            "200": json_response("Added.", _quick_add),
            "400": json_response("url missing or bad.", _quick_add),
            "403": json_response(
                "A browser loaded it as an image, script, frame or fetch from another page, "
                "or another page navigated here without a click (see docs/API.md); the body "
                "also has `error` and `code`.", _quick_add),
            "404": json_response("Unknown preset.", _quick_add),
            "503": json_response("The service is shutting down.", _quick_add),
        },
    }},
    "/api/history/live": {"get": {
        "tags": ["history"], "operationId": "liveQueue",
        "summary": "The queue with live progress, keyed by id",
        "parameters": QUEUE_PARAMETERS,
        "responses": {"200": json_response("The queue.", {
            "type": "object", "required": ["history_count", "queue", "queue_count"],
            "properties": {"history_count": {"type": "integer"},
                           "queue": {"type": "object", "additionalProperties": QUEUE_ITEM},
                           "queue_count": QUEUE_COUNT},
        }), "400": error("A queue_fields or queue_limit that is not one.")},
    }},
    "/api/history/start": _bulk("start", "started"),
    "/api/history/pause": _bulk("pause", "paused"),
    "/api/history/cancel": _bulk("cancel", "ok"),
    "/api/history/{item_id}": {
        "parameters": [_item_id],
        "get": {
            "tags": ["history"], "operationId": "getItem",
            "summary": "One item, from the queue or the history",
            "responses": {"200": json_response("The item.", ref("Item")),
                          "404": error("Item not found.")},
        },
        "post": {
            "tags": ["history"], "operationId": "editItem",
            "summary": "Edit an item",
            "requestBody": json_body(_edit),
            "responses": {
                "200": json_response("The changed item.", ref("Item")),
                "304": {"description": "Nothing changed."},
                "400": error("Empty body, an unknown field, a wrong type or a bad value."),
                "404": error("Item not found."),
                "409": error("The field can only change while the item waits in the queue."),
            },
        },
    },
}
