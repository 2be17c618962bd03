"""Conditions: a filter on an item's info and an action when it matches (more yt-dlp options,
another preset, or skip). Filters are parsed once, when saved; enabled conditions are tried
by priority (higher first) and the first match acts.

A condition whose regular expressions run out of their time bound (see appliance.patterns) has
failed: when an item is added it is logged as a warning (which reaches clients as a
``log_warning`` event) and treated as not matching; the condition test answers 400."""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Callable
from typing import Any

from ..errors import INVALID_REQUEST, REGEX_TIMEOUT, AppError, invalid
from ..patterns import PatternTimeout
from ..store.collections import Collection
from .filters import Filter, FilterSyntaxError, parse_filter
from .options import parse_cli
from .presets import Presets
from .records import RecordService, check_types

log = logging.getLogger(__name__)

FIELDS = ("name", "filter", "cli", "extras", "enabled", "priority", "description")


class Conditions(RecordService):
    label = "condition"
    fields = FIELDS
    defaults = {"cli": "", "extras": {}, "enabled": True, "priority": 0, "description": ""}

    def __init__(self, table: Collection, presets: Presets,
                 check_values: Callable[[str], object]) -> None:
        super().__init__(table)
        self.presets = presets
        # yt-dlp's own word on the options' values, in a download process (engine.converted)
        self.check_values = check_values
        self._lock = threading.Lock()
        self._compiled: list[tuple[Filter, dict[str, Any]]] | None = None

    # --- evaluation ---------------------------------------------------------------------

    def _active(self) -> list[tuple[Filter, dict[str, Any]]]:
        with self._lock:
            if self._compiled is None:
                records = [r for r in self.table.all() if r["enabled"]]
                records.sort(key=lambda r: (-r["priority"], r["id"]))
                self._compiled = [(f, r) for r in records
                                  if (f := self._parsed(r)) is not None]
            return self._compiled

    @staticmethod
    def _parsed(record: dict[str, Any]) -> Filter | None:
        """A saved filter, or None (with a warning) if it no longer passes the checks, e.g. a
        regular expression saved before expressions were bounded."""
        try:
            return parse_filter(record["filter"])
        except FilterSyntaxError as exc:
            log.warning("Condition '%s' is passed over: its filter is refused now (%s).",
                        record["name"], exc.message)
            return None

    def enabled(self) -> bool:
        return bool(self._active())

    def match(self, info: dict[str, Any]) -> dict[str, Any] | None:
        """The first enabled condition (by priority) whose filter matches ``info``."""
        for compiled, record in self._active():
            try:
                if compiled.matches(info):
                    return record
            except PatternTimeout as exc:
                log.warning("Condition '%s' failed on '%s' and was skipped: %s.",
                            record["name"], info.get("title") or info.get("webpage_url"), exc)
        return None

    @staticmethod
    def parsed(expression: str) -> Filter:
        """``expression`` parsed; 400 naming the position of what is wrong with it."""
        try:
            return parse_filter(expression)
        except FilterSyntaxError as exc:
            raise invalid(f"Invalid filter: {exc.message}", position=exc.position) from None

    @staticmethod
    def test(condition: Filter, info: dict[str, Any]) -> bool:
        """Whether ``info`` passes ``condition`` (parsed first, before a URL is read for it:
        a filter with a typo costs no request to the site)."""
        try:
            return condition.matches(info)
        except PatternTimeout as exc:
            raise AppError(f"The condition failed: {exc}.", REGEX_TIMEOUT) from None

    # --- records ------------------------------------------------------------------------

    def _notify(self, action: str, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._compiled = None  # re-parse the enabled filters on next use
        return super()._notify(action, record)

    def validate(self, values: dict[str, Any], partial: bool) -> dict[str, Any]:
        clean = dict(values)
        check_types(clean, {"name": str, "filter": str, "cli": str, "description": str,
                            "enabled": bool, "priority": int, "extras": dict})
        for name in ("name", "filter"):
            if not partial or name in clean:
                clean[name] = (clean.get(name) or "").strip()
                if not clean[name]:
                    raise invalid(f"{name} is required.")
        if "filter" in clean:
            self.parsed(clean["filter"])
        if clean.get("cli"):
            options = parse_cli(clean["cli"])
            if options.removed or options.archive or options.folder:
                bad = (options.removed + (["--download-archive"] if options.archive else [])
                       + (["--paths"] if options.folder else []))
                raise invalid(f"These options are not allowed here: {', '.join(bad)}.")
            clean["cli"] = shlex.join(options.args)
            if options.args:
                self.check_values(clean["cli"])
        if clean.get("extras"):
            self._check_extras(clean["extras"])
        return clean

    def naming_preset(self, name: str) -> list[str]:
        """The conditions whose extras choose the preset ``name``, for the people who ask."""
        return [f"condition '{record['name']}'" for record in self.table.all()
                if (record.get("extras") or {}).get("preset") == name]

    def _check_extras(self, extras: dict[str, Any]) -> None:
        if "preset" in extras:
            if not isinstance(extras["preset"], str):
                raise invalid("extras.preset must be a preset name.")
            self.presets.check(extras["preset"], INVALID_REQUEST)
        if "skip" in extras and not isinstance(extras["skip"], bool):
            raise invalid("extras.skip must be true or false.")
