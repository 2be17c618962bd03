"""Editing an item (``POST /api/history/{id}``): any item may be retitled or given new
extras; a waiting item may also change where and how it will download.

Part of ``DownloadEngine`` (engine.py), under its owners and rules: a running item is changed
only by its download thread (the edit is sent to its run); a waiting one under the engine's
lock; a history item through its record, under ``_order``.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from .. import events
from ..errors import AppError, invalid, not_found
from ..store import Item
from ..store.records import QUEUE
from .options import resolve_folder
from .requests import parse_add_request

EDITABLE_ALWAYS: dict[str, type] = {"title": str, "extras": dict}
EDITABLE_WAITING: dict[str, type] = {
    "preset": str, "folder": str, "template": str, "cli": str, "cookies": str,
}
EDITABLE_SAID = (f"These can: {', '.join(EDITABLE_ALWAYS)} (any item); "
                 f"{', '.join(EDITABLE_WAITING)} (an item that waits).")
# A field's type as the JSON a client sends names it ("title must be a str." was Python's).
_JSON_KINDS = {str: "a string", dict: "an object"}


class Edits:
    """Item edits for ``DownloadEngine``."""

    def update_item(self, item_id: str, changes: dict[str, Any]) -> tuple[Item, bool]:
        """Edit an item (``POST /api/history/{id}``); returns the item and whether it changed.

        Any item may be retitled or given new extras; a waiting item may also change where and
        how it will download. A running item refuses the latter (409).
        """
        unknown = sorted(set(changes) - EDITABLE_ALWAYS.keys() - EDITABLE_WAITING.keys())
        if unknown:
            raise invalid(f"These fields cannot be changed: {', '.join(unknown)}. "
                          f"{EDITABLE_SAID}")
        for name, value in changes.items():
            expected = {**EDITABLE_ALWAYS, **EDITABLE_WAITING}[name]
            if not isinstance(value, expected):
                raise invalid(f"{name} must be {_JSON_KINDS[expected]}.")
        waiting = set(changes) & EDITABLE_WAITING.keys()
        with self._lock:
            live = item_id in self._items
            running = self._live_run(item_id) is not None
        if waiting and running:
            raise self._not_waiting(waiting)
        checked = self._check_changes(changes)
        if not live:
            return self._update_record(item_id, checked, waiting)
        with self._lock:
            item = self._items.get(item_id)
            run = self._live_run(item_id)
            if item is None:
                raise AppError("The item just left the queue; try again.", "CONFLICT")
            if waiting and run is not None:
                raise self._not_waiting(waiting)
            pending = run.edits if run is not None else {}
            changed = {k: v for k, v in checked.items() if pending.get(k, getattr(item, k)) != v}
            if run is not None:  # its download thread sets them (it alone changes the item)
                if changed and not run.request_edit(changed):
                    raise AppError("The item is ending right now; try again.", "CONFLICT")
                return dataclasses.replace(item, **changed), bool(changed)
            before = self._set(item, changed)
        if changed:
            self._commit_change(item, before, changed)
        return self.get(item_id) or item.snapshot(), bool(changed)

    @staticmethod
    def _not_waiting(fields: set[str]) -> AppError:
        return AppError(f"{', '.join(sorted(fields))} can only change while the item waits in "
                        "the queue.", "CONFLICT")

    def _update_record(self, item_id: str, checked: dict[str, Any], waiting: set[str]
                       ) -> tuple[Item, bool]:
        """Edit an item in the history (its record only: nothing in memory holds it)."""
        with self._order:
            item = self.store.get(item_id)
            if item is None:
                raise not_found("Item not found.")
            if waiting and item.kind != QUEUE:
                raise self._not_waiting(waiting)
            changed = {k: v for k, v in checked.items() if getattr(item, k) != v}
            if not changed:
                return item, False
            for name, value in changed.items():
                setattr(item, name, value)
            self.store.save(item)
            self.bus.publish(events.ITEM_UPDATED, item.to_dict())
        return item, True

    def _check_changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        if not set(changes) & EDITABLE_WAITING.keys():
            return dict(changes)
        merged = {k: v for k, v in changes.items() if k in EDITABLE_WAITING}
        request = parse_add_request({"url": "http://placeholder.invalid/", **merged},
                                    self.presets, self.dl_fields)
        resolve_folder(self.settings.download_path, request.folder)
        checked = dict(changes)
        if "cli" in checked:
            checked["cli"] = shlex.join(request.cli_args)
        if "template" in checked:
            checked["template"] = request.template
        return checked
