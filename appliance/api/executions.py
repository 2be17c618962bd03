"""FlexGet's executions and schedules: ``/api/executions…`` (the runs of tasks, running and
recent, with their log) and ``/api/schedules`` (each enabled timer, last and next run)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import falcon

from .. import errors
from ..runtime import Runtime
from ..tasks.runner import ExecutionLog
from . import sse
from .pagination import OPENAPI_HEADERS, openapi_parameters, page_request, pagination
from .records import MAX_ID
from .schemas import error, json_response, path_param, query, ref
from .tasks import EXECUTION

EXECUTION_ID = f"{{execution_id:int(min=1, max={MAX_ID})}}"
STATUSES = ("running", "success", "failed", "interrupted")


class Executions:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        paging = page_request(req, self.runtime.settings.default_pagination)
        task_id = req.get_param_as_int("task_id", min_value=1, max_value=MAX_ID)
        status = req.get_param("status")
        if status is not None and status not in STATUSES:
            raise errors.invalid(f"status must be one of {', '.join(STATUSES)}.")
        items, total = self.runtime.tasks.store.executions(paging.page, paging.per_page,
                                                           task_id, status)
        resp.media = {"items": items,
                      "pagination": pagination(req, resp, paging, total, len(items))}


def _execution(runtime: Runtime, execution_id: int) -> dict[str, Any]:
    execution = runtime.tasks.store.execution(execution_id, with_log=True)
    if execution is None:
        raise errors.not_found("Execution not found.")
    return execution


class Execution:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, execution_id: int) -> None:
        execution = _execution(self.runtime, execution_id)
        live = self.runtime.tasks.runner.live_log(execution_id)
        if live is not None:
            execution["log"] = live.lines
        resp.media = execution


def _line_event(line: str, created: float) -> bytes:
    return sse.event("log", {"line": line,
                             "datetime": datetime.fromtimestamp(created, UTC).isoformat()})


def _live_lines(journal: ExecutionLog, watch: sse.Watch) -> Iterator[bytes]:
    subscription, earlier = journal.subscribe()
    if earlier:
        yield b"".join(_line_event(*entry) for entry in earlier)
    yield from sse.lines(subscription, lambda: journal.unsubscribe(subscription), watch,
                         _line_event, finished=journal.done.is_set)
    yield sse.event("end", {"execution_id": journal.execution_id})


class ExecutionLogResource:
    """The run's log lines: a live event stream while it runs, for a client that accepts
    ``text/event-stream`` (as EventSource does); JSON otherwise, and once it has finished."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, execution_id: int) -> None:
        execution = _execution(self.runtime, execution_id)
        live = self.runtime.tasks.runner.live_log(execution_id)
        if live is None or "text/event-stream" not in (req.accept or ""):
            lines = live.lines if live is not None else execution["log"]
            resp.media = {"id": execution_id, "status": execution["status"], "lines": lines}
            return
        slots = sse.open_stream(self.runtime)
        sse.respond(resp, _live_lines(live, sse.Watch(req, self.runtime)), slots)


class Schedules:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": self.runtime.tasks.schedules()}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/executions", Executions(runtime))
    app.add_route(f"/api/executions/{EXECUTION_ID}", Execution(runtime))
    app.add_route(f"/api/executions/{EXECUTION_ID}/log", ExecutionLogResource(runtime))
    app.add_route("/api/schedules", Schedules(runtime))


# --- OpenAPI (the rule: appliance/api/openapi.py) ----------------------------------------

_execution_id = path_param("execution_id", "The execution's id.",
                           {"type": "integer", "minimum": 1, "maximum": MAX_ID})
_missing = error("No execution with that id.")
_time = {"type": ["number", "null"]}
_schedule = {
    "type": "object",
    "required": ["task_id", "name", "timer", "next_run_at"],
    "properties": {"task_id": {"type": "integer"}, "name": {"type": "string"},
                   "timer": {"type": "string"}, "last_run_at": _time,
                   "last_status": {"type": "string"}, "next_run_at": _time,
                   "running": {"type": "boolean"}},
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/executions": {"get": {
        "tags": ["tasks"], "summary": "Runs of tasks, newest first (paginated)",
        "operationId": "list_executions",
        "parameters": [*openapi_parameters(),
                       query("task_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                             "Only this task's runs."),
                       query("status", {"enum": list(STATUSES)}, "Only runs in this state.")],
        "responses": {"200": json_response("A page.", {
            "type": "object", "required": ["items", "pagination"],
            "properties": {"items": {"type": "array", "items": EXECUTION},
                           "pagination": ref("Pagination")}}, headers=OPENAPI_HEADERS),
            "400": error("Bad parameters.")}}},
    "/api/executions/{execution_id}": {
        "parameters": [_execution_id],
        "get": {"tags": ["tasks"], "summary": "One run, with its log lines",
                "operationId": "get_execution",
                "responses": {"200": json_response("The execution.", EXECUTION),
                              "404": _missing}}},
    "/api/executions/{execution_id}/log": {
        "parameters": [_execution_id],
        "get": {"tags": ["tasks"], "summary": "A run's log (Server-Sent Events while it runs)",
                "description": "While the run lasts and the client accepts "
                               "`text/event-stream` (EventSource does): the lines so far, "
                               "then each new one as a `log` event, then an `end` event. "
                               "Otherwise: `{id, status, lines}`.",
                "operationId": "execution_log",
                "responses": {
                    "200": {"description": "The lines, or their stream.", "content": {
                        "application/json": {"schema": {
                            "type": "object", "required": ["id", "status", "lines"],
                            "properties": {"id": {"type": "integer"},
                                           "status": {"type": "string"},
                                           "lines": {"type": "array",
                                                     "items": {"type": "string"}}}}},
                        "text/event-stream": {"schema": {"type": "string"}}}},
                    "404": _missing, "503": error("Too many live streams are open.")}}},
    "/api/schedules": {"get": {
        "tags": ["tasks"], "summary": "Every enabled timer with its last and next run",
        "operationId": "list_schedules",
        "responses": {"200": json_response("The schedules.", {
            "type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": _schedule}}})}}},
}
