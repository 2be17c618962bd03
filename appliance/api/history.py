"""``/api/history…``: the queue and the history of downloads."""

from __future__ import annotations

from typing import Any

import falcon

from .. import errors
from ..engine import DownloadEngine
from ..engine.presets import check_preset
from ..runtime import Runtime
from ..store import Item, StatusFilter
from ..store.records import DONE, QUEUE
from .middleware import not_modified
from .requests import ids_from, json_object, read_json

# The legacy unpaginated shape would send the whole history; past this many newest items it
# is cut (documented in docs/API.md) so that 100,000 items never become one response.
LEGACY_HISTORY_LIMIT = 1000
MAX_PER_PAGE = 1000


def _pagination(page: int, per_page: int, total: int) -> dict[str, Any]:
    total_pages = max(1, -(-total // per_page))
    return {
        "page": page,
        "per_page": per_page,
        "total": total,
        "total_pages": total_pages,
        "has_next": page < total_pages,
        "has_prev": page > 1,
    }


def _page_params(req: falcon.Request, default_per_page: int) -> tuple[int, int, bool]:
    try:
        page = int(req.get_param("page") or 1)
        per_page = int(req.get_param("per_page") or default_per_page)
    except ValueError:
        raise errors.invalid("page and per_page must be valid integers.") from None
    if page < 1:
        raise errors.invalid("page must be >= 1.")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise errors.invalid(f"per_page must be between 1 and {MAX_PER_PAGE}.")
    order = (req.get_param("order") or "DESC").upper()
    if order not in {"ASC", "DESC"}:
        raise errors.invalid("order must be ASC or DESC.")
    return page, per_page, order == "DESC"


class History:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine: DownloadEngine = runtime.engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        kind = (req.get_param("type") or "all").lower()
        if kind not in {"all", QUEUE, DONE}:
            raise errors.invalid("type must be one of all, queue, done.")
        if kind == "all":
            resp.media = {
                "queue": [i.to_dict() for i in self.engine.queue_items()],
                "history": [i.to_dict() for i in self.runtime.store.history(LEGACY_HISTORY_LIMIT)],
            }
            return
        page, per_page, newest_first = _page_params(req, self.runtime.settings.default_pagination)
        status = StatusFilter.parse(req.get_param("status"))
        if kind == DONE:
            result = self.runtime.store.page(DONE, page, per_page, newest_first=newest_first,
                                             status=status)
            items, total = result.items, result.total
        else:
            items, total = self._queue_page(page, per_page, newest_first, status)
        resp.media = {
            "pagination": _pagination(page, per_page, total),
            "items": [i.to_dict() for i in items],
        }

    def _queue_page(
        self, page: int, per_page: int, newest_first: bool, status: StatusFilter | None
    ) -> tuple[list[Item], int]:
        items = sorted(self.engine.queue_items(), key=lambda i: i.created_at,
                       reverse=newest_first)
        if status is not None:
            items = [i for i in items if (i.status == status.status) != status.exclude]
        start = (page - 1) * per_page
        return items[start : start + per_page], len(items)

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
        if kind not in {QUEUE, DONE}:
            raise errors.invalid("type must be 'queue' or 'done'.")
        remove_file = body.get("remove_file", True)
        if not isinstance(remove_file, bool):
            raise errors.invalid("remove_file must be true or false.")
        remove_file = remove_file and self.runtime.settings.remove_files
        ids, status = body.get("ids"), body.get("status")
        if ids:
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise errors.invalid("ids must be an array of item ids.")
            resp.media = self.engine.delete_items(ids, remove_file=remove_file, kind=kind)
            return
        if not status or not isinstance(status, str):
            raise errors.invalid("either 'ids' or 'status' filter is required.")
        matching = self.engine.matching_ids(kind, StatusFilter.parse(status))
        results = self.engine.delete_items(matching, remove_file=remove_file, kind=kind)
        deleted = sum(1 for v in results.values() if v == "deleted")
        resp.media = {"items": results, "deleted": deleted}


class HistoryItem:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def _item(self, item_id: str) -> Item:
        item = self.runtime.engine.get(item_id)
        if item is None:
            raise errors.not_found("Item not found.")
        return item

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        resp.media = self._item(item_id).to_dict()

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        if not body:
            raise errors.invalid("The request body is empty.")
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
        url, preset = req.get_param("url"), req.get_param("preset")
        if not url:
            resp.status = falcon.HTTP_400
            resp.media = {"status": False, "message": "url param is required."}
            return
        try:
            if preset:
                check_preset(preset)
            self.runtime.engine.add([{"url": url, **({"preset": preset} if preset else {})}])
        except errors.AppError as exc:
            resp.status = exc.status
            resp.media = {"status": False, "message": exc.message}
            return
        resp.media = {"status": True, "message": f"Added '{url}' to the download queue."}


class Live:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "history_count": self.runtime.store.count(DONE),
            "queue": {i.id: i.to_dict() for i in self.runtime.engine.queue_items()},
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
