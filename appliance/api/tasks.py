"""``/api/tasks…``: scheduled tasks (the contract), run on demand (FlexGet's idea), marks and
previews."""

from __future__ import annotations

from typing import Any

import falcon

from ..runtime import Runtime
from .local_files import FOLDER_GONE, download_folder_there
from .pagination import OPENAPI_HEADERS, openapi_parameters, page_request, pagination
from .records import MAX_ID
from .requests import json_object, read_json
from .schemas import URL, WAITING_OUTSIDE, error, json_body, json_response, path_param, ref

TASK_ID = f"{{task_id:int(min=1, max={MAX_ID})}}"


class TaskList:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        paging = page_request(req, self.runtime.settings.default_pagination)
        tasks, total = self.runtime.tasks.page(paging.page, paging.per_page)
        resp.media = {"items": tasks,
                      "pagination": pagination(req, resp, paging, total, len(tasks))}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, self.runtime.settings.max_body)
        with self.runtime.outside:  # a name read from the URL, marks: the listing's
            resp.media = self.runtime.tasks.create(body)


class TaskItem:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        resp.media = self.runtime.tasks.get(task_id)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        resp.media = self.runtime.tasks.update(task_id, body, partial=True)

    def on_put(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        resp.media = self.runtime.tasks.update(task_id, body, partial=False)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        resp.media = self.runtime.tasks.delete(task_id)


class TaskMark:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        with self.runtime.outside:
            resp.media = self.runtime.tasks.mark(task_id)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        with self.runtime.outside:
            resp.media = self.runtime.tasks.unmark(task_id)


class TaskExecute:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        resp.status = falcon.HTTP_202
        resp.media = self.runtime.tasks.execute(task_id)


class TaskMetadata:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        download_folder_there(self.runtime)  # not onto the bare mount point of a gone disk
        with self.runtime.outside:
            resp.media = self.runtime.tasks.metadata(task_id)


class TaskItems:
    """The downloads a task queued (its history), newest first."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: int) -> None:
        paging = page_request(req, self.runtime.settings.default_pagination)
        items, total = self.runtime.tasks.items(task_id, paging.offset, paging.per_page)
        resp.media = {"items": [i.to_dict() for i in items],
                      "pagination": pagination(req, resp, paging, total, len(items))}


class TaskInspect:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req, self.runtime.settings.max_body)
        with self.runtime.outside:
            resp.media = self.runtime.tasks.inspect(body)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/tasks", TaskList(runtime))
    app.add_route("/api/tasks/inspect", TaskInspect(runtime))
    app.add_route(f"/api/tasks/{TASK_ID}", TaskItem(runtime))
    app.add_route(f"/api/tasks/{TASK_ID}/mark", TaskMark(runtime))
    app.add_route(f"/api/tasks/{TASK_ID}/execute", TaskExecute(runtime))
    app.add_route(f"/api/tasks/{TASK_ID}/items", TaskItems(runtime))
    app.add_route(f"/api/tasks/{TASK_ID}/metadata", TaskMetadata(runtime))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------

_text = {"type": "string"}
_count = {"type": "integer", "minimum": 0}
_time = {"type": ["number", "null"], "description": "Unix time (seconds)."}
WRITE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {**_text, "description": "Unique; a plain name (no '/', not '..')."},
        "url": URL,
        "timer": {**_text, "description": "Cron, 5 fields, in YTP_TASKS_TIMEZONE; empty: "
                                          "no timer (runs only when executed)."},
        "preset": _text,
        "folder": {**_text, "description": "Relative to the download folder; never outside."},
        "template": {**_text, "description": "yt-dlp output template; stays inside."},
        "cli": {**_text, "description": "yt-dlp options, through the one option policy."},
        "cookies": {**_text, "description": "Netscape cookie file text."},
        "config": {"type": "object"},
        "auto_start": {"type": "boolean"},
        "handler_enabled": {"type": "boolean",
                            "description": "false: each run queues the URL as one item."},
        "enabled": {"type": "boolean"},
        "published_after": {**_text, "description": "YYYY-MM-DD: only entries published "
                                                    "on or after (where the source says)."},
        "keep_newest": {**_count, "description": "Retention: keep the task's newest N "
                                                 "files (needs YTP_REMOVE_FILES); 0: all."},
        "keep_days": {**_count, "description": "Retention: delete the task's files older "
                                               "than D days (needs YTP_REMOVE_FILES); 0: "
                                               "never."},
        "mark": {"type": "boolean", "description": "On create: mark every entry the handler "
                                                   "sees now as done (only new ones later)."},
    },
}
# A change of a task: everything it is created with but ``mark``, which only creating does
# (an existing task's entries are marked with POST /api/tasks/{id}/mark).
CHANGE: dict[str, Any] = {
    **WRITE, "properties": {k: v for k, v in WRITE["properties"].items() if k != "mark"}}
READ: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "url", "timer", "enabled"],
    "properties": {
        **CHANGE["properties"],
        "id": {"type": "integer"},
        "created_at": {"type": "number"},
        "last_run_at": _time,
        "next_run_at": _time,
        "last_status": {"enum": ["", "success", "failed"]},
        "last_error": _text,
        "last_found": _count,
        "last_queued": _count,
        "failures": {**_count, "description": "Runs failed in a row."},
        "running": {"type": "boolean"},
        "mark_pending": {"type": "boolean", "description": (
            "Created with mark, its entries not listed in time: its next run marks them "
            "and queues none.")},
    },
}
EXECUTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "task_id", "status", "started_at"],
    "properties": {
        "id": {"type": "integer"}, "task_id": {"type": "integer"}, "task_name": _text,
        "trigger": {"enum": ["timer", "manual", "startup"]},
        "status": {"enum": ["running", "success", "failed", "interrupted"]},
        "handler": _text, "started_at": {"type": "number"}, "finished_at": _time,
        "found": _count, "queued": _count, "skipped": _count, "failed": _count,
        "error": _text,
        "log": {"type": "array", "items": _text},
    },
}
_message = {"type": "object", "required": ["message"], "properties": {"message": _text}}
_inspected = {
    "type": "object",
    "required": ["items", "metadata"],
    "properties": {
        "matched": {"type": "boolean"}, "handler": _text, "supported": {"type": "boolean"},
        "items": {"type": "array", "items": {"type": "object"}},
        "metadata": {"type": "object"},
    },
}
_task_id = path_param("task_id", "The task's id.",
                      {"type": "integer", "minimum": 1, "maximum": MAX_ID})


def _one() -> dict[str, Any]:  # one per operation: a GET's gets the ETag header added
    return json_response("The task.", READ)


_missing = error("No task with that id.")
_bad = error("Invalid body or field (the text says which).")
_clash = error("Another task has that name.")

PATHS: dict[str, dict[str, Any]] = {
    "/api/tasks": {
        "get": {"tags": ["tasks"], "summary": "List tasks (paginated)",
                "operationId": "list_tasks", "parameters": openapi_parameters(),
                "responses": {"200": json_response("A page.", {
                    "type": "object", "required": ["items", "pagination"],
                    "properties": {"items": {"type": "array", "items": READ},
                                   "pagination": ref("Pagination")}},
                    headers=OPENAPI_HEADERS), "400": error("Bad page parameters.")}},
        "post": {"tags": ["tasks"], "summary": "Create a task, or several (an array)",
                 "description": "An array: the first task complete, the others need only "
                                "url and take the rest from the first; a missing name is "
                                "the feed's title or task-{index}; the first timer is "
                                "moved 5 minutes later for each further task.",
                 "operationId": "create_tasks",
                 "requestBody": json_body({"anyOf": [
                     {**WRITE, "required": ["name", "url"]},
                     {"type": "array", "items": WRITE, "minItems": 1}]}),
                 "responses": {"200": json_response("The task, or the tasks.", {
                     "anyOf": [READ, {"type": "array", "items": READ}]}),
                     "400": _bad, "409": _clash, "503": WAITING_OUTSIDE}},
    },
    "/api/tasks/inspect": {"post": {
        "tags": ["tasks"], "summary": "Preview what a URL's handler would queue",
        "operationId": "inspect_task",
        "requestBody": json_body({"type": "object", "required": ["url"], "properties": {
            "url": URL, "preset": _text, "handler": _text,
            "static_only": {"type": "boolean"}}}),
        "responses": {"200": json_response("The handler and its entries.", _inspected),
                      "400": error("No handler matched, or the listing failed."),
                      "503": WAITING_OUTSIDE}}},
    "/api/tasks/{task_id}": {
        "parameters": [_task_id],
        "get": {"tags": ["tasks"], "summary": "One task", "operationId": "get_task",
                "responses": {"200": _one(), "404": _missing}},
        "patch": {"tags": ["tasks"], "summary": "Change some fields of a task",
                  "operationId": "patch_task", "requestBody": json_body(CHANGE),
                  "responses": {"200": _one(), "400": _bad, "404": _missing, "409": _clash}},
        "put": {"tags": ["tasks"], "summary": "Replace a task", "operationId": "put_task",
                "requestBody": json_body({**CHANGE, "required": ["name", "url"]}),
                "responses": {"200": _one(), "400": _bad, "404": _missing, "409": _clash}},
        "delete": {"tags": ["tasks"], "summary": "Delete a task", "operationId": "delete_task",
                   "responses": {"200": json_response("The deleted task.", READ),
                                 "404": _missing}},
    },
    "/api/tasks/{task_id}/mark": {
        "parameters": [_task_id],
        "post": {"tags": ["tasks"], "summary": "Mark every entry the handler sees as done",
                 "operationId": "mark_task",
                 "responses": {"200": json_response("What was marked.", _message),
                               "400": error("The entries could not be listed."),
                               "404": _missing, "409": error("The task is running."),
                               "503": WAITING_OUTSIDE}},
        "delete": {"tags": ["tasks"], "summary": "Forget the task's marked entries",
                   "operationId": "unmark_task",
                   "responses": {"200": json_response("What was removed.", _message),
                                 "404": _missing, "409": error("The task is running."),
                                 "503": WAITING_OUTSIDE}},
    },
    "/api/tasks/{task_id}/execute": {
        "parameters": [_task_id],
        "post": {"tags": ["tasks"], "summary": "Run the task now",
                 "description": "Starts a run in the background; follow it at "
                                "/api/executions/{id}.",
                 "operationId": "execute_task",
                 "responses": {"202": json_response("The execution, started.", EXECUTION),
                               "404": _missing, "409": error("The task is running.")}},
    },
    "/api/tasks/{task_id}/metadata": {
        "parameters": [_task_id],
        "post": {"tags": ["tasks"], "summary": "Write the channel's NFO, info.json and images",
                 "description": "tvshow.nfo (Kodi), '<title> [<id>].info.json' and "
                                "poster/fanart/thumb/banner/icon/landscape .jpg where the "
                                "source has them, written atomically into the task's folder "
                                "(existing files are replaced). Paths are relative to the "
                                "download folder.",
                 "operationId": "task_metadata",
                 "responses": {"200": json_response("What was written.", {
                     "type": "object", "required": ["id", "title", "nfo_file", "json_file",
                                                    "thumbnails"],
                     "properties": {"id": _text, "id_type": _text, "title": _text,
                                    "description": _text, "uploader": _text,
                                    "tags": {"type": "array"},
                                    "year": {"type": ["integer", "null"]},
                                    "json_file": _text, "nfo_file": _text,
                                    "thumbnails": {"type": "object"},
                                    "thumbnails_refused": {
                                        "type": "object", "description": (
                                            "Pictures not written, by kind, with why (a "
                                            "private address, not an image, too large)")}}}),
                     "400": error("The folder is invalid or the metadata could not be read."),
                     "404": _missing,
                     "503": error(FOLDER_GONE + " Nothing was written; or too many requests "
                                  "are waiting on other servers (Retry-After).")}},
    },
    "/api/tasks/{task_id}/items": {
        "parameters": [_task_id],
        "get": {"tags": ["tasks"], "summary": "The items the task queued, newest first",
                "description": "Queued and finished alike (each item's extras.task names "
                               "its task); a playlist's entries count as the task's too.",
                "operationId": "task_items", "parameters": openapi_parameters(),
                "responses": {"200": json_response("A page.", {
                    "type": "object", "required": ["items", "pagination"],
                    "properties": {"items": {"type": "array", "items": ref("Item")},
                                   "pagination": ref("Pagination")}},
                    headers=OPENAPI_HEADERS),
                    "400": error("Bad page parameters."), "404": _missing}},
    },
}
