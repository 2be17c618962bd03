"""``/api/notifications…``: notification targets (webhooks and Apprise URLs)."""

from __future__ import annotations

from typing import Any

import falcon

from .. import errors, events
from ..notify import EVENTS
from ..notify.targets import MAX_NAME, MAX_NAMES, METHODS, TYPES, build, masked_request
from ..runtime import Runtime
from ..store.outbox import target_key
from .pagination import OPENAPI_HEADERS, openapi_parameters, page_request, pagination
from .requests import json_object
from .schemas import WAITING_OUTSIDE, error, json_body, json_response, path_param

NOT_FOUND = "Notification target not found."


def public(target: dict[str, Any], waiting: int = 0) -> dict[str, Any]:
    """A target as clients see it: secrets in the URL and headers masked; ``waiting``: how
    many notices wait for it (in its queue or for a retry)."""
    return {
        "id": target["id"],
        "name": target["name"],
        "on": target["on"],
        "presets": target["presets"],
        "enabled": target["enabled"],
        "request": masked_request(target["request"]),
        "last_status": target.get("last_status"),
        "last_error": target.get("last_error"),
        "last_sent_at": target.get("last_sent_at"),
        "waiting": waiting,
    }


class _Base:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.store = runtime.notifications

    def _waiting(self, target_id: int) -> int:
        return self.runtime.notifier.waiting().get(target_key(target_id), 0)

    def _announce(self, action: str, target: dict[str, Any]) -> dict[str, Any]:
        shown = public(target, self._waiting(target["id"]))
        self.runtime.bus.publish(events.CONFIG_UPDATE, {
            "feature": "notifications", "action": action, "data": shown,
        })
        return shown

    def _target(self, target_id: str) -> tuple[int, dict[str, Any]]:
        try:
            number = int(target_id)
        except ValueError:
            raise errors.not_found(NOT_FOUND) from None
        if not 0 < number < 2**63:  # never a row id (and beyond SQLite's integers)
            raise errors.not_found(NOT_FOUND)
        target = self.store.get(number)
        if target is None:
            raise errors.not_found(NOT_FOUND)
        return number, target


class Targets(_Base):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        paging = page_request(req, self.runtime.settings.default_pagination)
        items, total = self.store.page(paging.page, paging.per_page)
        waiting = self.runtime.notifier.waiting()
        resp.media = {
            "items": [public(t, waiting.get(target_key(t["id"]), 0)) for t in items],
            "pagination": pagination(req, resp, paging, total, len(items)),
            "apprise_config": self.runtime.notifier.file_targets(),
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        values = build(json_object(req, self.runtime.settings.max_body))
        resp.media = self._announce("create", self.store.create(values))


class Target(_Base):
    def on_get(self, req: falcon.Request, resp: falcon.Response, target_id: str) -> None:
        number, target = self._target(target_id)
        resp.media = public(target, self._waiting(number))

    def _update(self, req: falcon.Request, resp: falcon.Response, target_id: str,
                partial: bool) -> None:
        number, stored = self._target(target_id)
        body = json_object(req, self.runtime.settings.max_body)
        values = build(body, stored, partial=partial)
        updated = self.store.update(number, values)
        if updated is None:  # deleted meanwhile
            raise errors.not_found(NOT_FOUND)
        resp.media = self._announce("update", updated)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, target_id: str) -> None:
        self._update(req, resp, target_id, partial=True)

    def on_put(self, req: falcon.Request, resp: falcon.Response, target_id: str) -> None:
        self._update(req, resp, target_id, partial=False)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, target_id: str) -> None:
        number, _ = self._target(target_id)
        deleted = self.store.delete(number)
        if deleted is None:
            raise errors.not_found(NOT_FOUND)
        resp.media = self._announce("delete", deleted)


class Events:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"events": list(EVENTS)}


class Test:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self.runtime.outside:
            resp.media = {"results": self.runtime.notifier.test()}


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/notifications", Targets(runtime))
    app.add_route("/api/notifications/events", Events())
    app.add_route("/api/notifications/test", Test(runtime))
    app.add_route("/api/notifications/{target_id}", Target(runtime))


# --- OpenAPI path items of this family (the rule: appliance/api/openapi.py) -----------------

_tags = ["notifications"]
_names = {"type": "array", "maxItems": MAX_NAMES,
          "items": {"type": "string", "minLength": 1, "maxLength": MAX_NAME}}
_header = {
    "type": "object", "required": ["key"], "additionalProperties": False,
    "properties": {"key": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
                   "value": {"type": "string"}},
}
_request = {
    "type": "object",
    "description": "url: an http(s):// webhook (sent as this block says) or any Apprise URL "
                   "(discord://, tgram://, ntfys://, mailto://, json://, …; checked with "
                   "Apprise on save). type, method, data_key and headers apply to webhooks.",
    "additionalProperties": False,
    "properties": {
        "type": {"enum": [*TYPES, *(t.upper() for t in TYPES)], "default": "json"},
        "method": {"enum": [*METHODS, *(m.lower() for m in METHODS)], "default": "POST"},
        "url": {"type": "string", "minLength": 1, "maxLength": 8192},
        "data_key": {"type": "string", "minLength": 1, "default": "data"},
        "headers": {"type": "array", "items": _header},
    },
}
_read_only = {
    "id": {"type": "integer"},
    "last_status": {"anyOf": [{"enum": ["ok", "failed"]}, {"type": "null"}]},
    "last_error": {"type": ["string", "null"]},
    "last_sent_at": {"type": ["number", "null"], "description": "Unix time of the last send."},
    "waiting": {"type": "integer", "minimum": 0, "description": "Notices waiting for it (its "
                "queue, a retry); kept across a restart."},
}
_fields = {
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
    "on": {**_names, "items": {"enum": list(EVENTS)}, "description": "Events; empty: all."},
    "presets": {**_names, "description": "Presets of the items; empty: all."},
    "enabled": {"type": "boolean", "default": True},
}
_target = {
    "type": "object",
    "required": ["id", "name", "on", "presets", "enabled", "request", "last_status",
                 "last_error", "last_sent_at", "waiting"],
    "description": "Secrets in request.url and header values are masked (****); sending a "
                   "masked value back keeps the stored secret.",
    "properties": {**_fields, "request": {**_request, "required": [
        "type", "method", "url", "data_key", "headers"]}, **_read_only},
}
_write = {
    "type": "object", "required": ["name", "request"], "additionalProperties": False,
    "properties": {**_fields, "request": {**_request, "required": ["url"]},
                   **{k: {} for k in _read_only}},
}
_patch = {
    "type": "object", "additionalProperties": False,
    "properties": {**_fields, "request": _request, **{k: {} for k in _read_only}},
}
_file_targets = {
    "type": "object", "required": ["path", "targets"],
    "description": "Targets read from apprise.yml in the config folder at start-up (read-only; "
                   "all events).",
    "properties": {"path": {"type": "string"}, "targets": {"type": "array", "items": {
        "type": "object", "properties": {"name": {"type": "string"}, "request": _request}}}},
}
_result = {
    "type": "object", "required": ["id", "name", "ok", "status", "error"],
    "properties": {
        "id": {"type": ["integer", "null"], "description": "null for apprise.yml targets."},
        "name": {"type": "string"},
        "ok": {"type": "boolean"},
        "status": {"type": ["integer", "null"], "description": "HTTP status, when known."},
        "error": {"type": "string"},
    },
}
_target_id = path_param("target_id", "The target's id.", {"type": "string"})
_bad = error("Bad input: a missing or wrong field, a bad method or type, an URL that is not "
             "http(s) nor a valid Apprise URL (with Apprise's reason).")

PATHS: dict[str, dict[str, Any]] = {
    "/api/notifications": {
        "get": {
            "tags": _tags, "operationId": "listNotificationTargets",
            "summary": "Notification targets, paginated",
            "parameters": openapi_parameters(),
            "responses": {
                "200": json_response("One page of targets, and the apprise.yml targets.", {
                    "type": "object", "required": ["items", "pagination", "apprise_config"],
                    "properties": {
                        "items": {"type": "array", "items": _target},
                        "pagination": {"$ref": "#/components/schemas/Pagination"},
                        "apprise_config": _file_targets,
                    },
                }, headers=dict(OPENAPI_HEADERS)),
                "400": error("Bad page or per_page."),
            },
        },
        "post": {
            "tags": _tags, "operationId": "createNotificationTarget",
            "summary": "Create a notification target",
            "requestBody": json_body(_write),
            "responses": {
                "200": json_response("The created target.", _target),
                "400": _bad,
                "409": error("A target with this name exists."),
            },
        },
    },
    "/api/notifications/events": {
        "get": {
            "tags": _tags, "operationId": "listNotificationEvents",
            "summary": "The events a target can subscribe to",
            "responses": {"200": json_response("Event names.", {
                "type": "object", "required": ["events"],
                "properties": {"events": {"type": "array", "items": {"type": "string"}}},
            })},
        },
    },
    "/api/notifications/test": {
        "post": {
            "tags": _tags, "operationId": "testNotificationTargets",
            "summary": "Send a test event to every enabled target",
            "description": "Sent at once to all enabled targets (whatever their on and presets "
                           "say), without retries; answers when each has answered or the send "
                           "timeout (YTP_NOTIFY_TIMEOUT) has passed.",
            "responses": {"200": json_response("What each target answered.", {
                "type": "object", "required": ["results"],
                "properties": {"results": {"type": "array", "items": _result}},
            }), "503": WAITING_OUTSIDE},
        },
    },
    "/api/notifications/{target_id}": {
        "parameters": [_target_id],
        "get": {
            "tags": _tags, "operationId": "getNotificationTarget",
            "summary": "One notification target",
            "responses": {"200": json_response("The target.", _target),
                          "404": error(NOT_FOUND)},
        },
        "patch": {
            "tags": _tags, "operationId": "patchNotificationTarget",
            "summary": "Change some fields of a target (request is merged key by key)",
            "requestBody": json_body(_patch),
            "responses": {"200": json_response("The updated target.", _target), "400": _bad,
                          "404": error(NOT_FOUND), "409": error("The new name is taken.")},
        },
        "put": {
            "tags": _tags, "operationId": "replaceNotificationTarget",
            "summary": "Replace a target",
            "requestBody": json_body(_write),
            "responses": {"200": json_response("The updated target.", _target), "400": _bad,
                          "404": error(NOT_FOUND), "409": error("The new name is taken.")},
        },
        "delete": {
            "tags": _tags, "operationId": "deleteNotificationTarget",
            "summary": "Delete a target",
            "responses": {"200": json_response("The deleted target.", _target),
                          "404": error(NOT_FOUND)},
        },
    },
}
