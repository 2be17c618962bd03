"""Download fields: extra inputs a client shows when adding a URL, each setting one yt-dlp
option. An add request carries their values as ``"dl_fields": {"<option>": value}``."""

from __future__ import annotations

from typing import Any

from ..errors import invalid
from .options import Context, _parser, refusal
from .records import RecordService, check_types

FIELDS = ("name", "description", "field", "kind", "order", "value", "icon", "extras")
KINDS = ("text", "string", "number", "bool")


def _option(flag: str) -> Any:
    parser = _parser()
    option = parser._long_opt.get(flag) or parser._short_opt.get(flag)
    if option is None:
        raise invalid(f"field '{flag}' is not a yt-dlp option.")
    reason = refusal(option.get_opt_string(), option, None, Context.DOWNLOAD)
    if option.dest == "outtmpl":
        reason = "sets the output template, which has a field of its own (template)"
    if reason:
        raise invalid(f"field '{flag}' is an option that is not allowed: it {reason}.")
    return option


class DlFields(RecordService):
    label = "download field"
    fields = FIELDS
    defaults = {"description": "", "order": 0, "value": "", "icon": "", "extras": {}}

    def validate(self, values: dict[str, Any], partial: bool) -> dict[str, Any]:
        clean = dict(values)
        check_types(clean, {"name": str, "description": str, "field": str, "kind": str,
                            "order": int, "value": str, "icon": str, "extras": dict})
        for name in ("name", "field", "kind"):
            if not partial or name in clean:
                clean[name] = (clean.get(name) or "").strip()
                if not clean[name]:
                    raise invalid(f"{name} is required.")
        if clean.get("kind") and clean["kind"] not in KINDS:
            raise invalid(f"kind must be one of {', '.join(KINDS)}.")
        if "field" in clean:
            option = _option(clean["field"])
            clean["field"] = option.get_opt_string()
            kind = clean.get("kind")
            if kind == "bool" and option.takes_value():
                raise invalid(f"{clean['field']} takes a value; its kind cannot be bool.")
            if kind in {"text", "string", "number"} and not option.takes_value():
                raise invalid(f"{clean['field']} takes no value; its kind must be bool.")
        return clean

    def arguments(self, values: Any) -> list[str]:
        """yt-dlp arguments for an add request's ``dl_fields`` values."""
        if values is None:
            return []
        if not isinstance(values, dict):
            raise invalid("dl_fields must be an object of option: value.")
        known = {r["field"]: r for r in self.table.all()}
        args: list[str] = []
        for flag, value in values.items():
            record = known.get(flag) or next(
                (r for r in known.values() if r["name"] == flag), None)
            if record is None:
                raise invalid(f"'{flag}' is not a configured download field.")
            if record["kind"] == "bool":
                if not isinstance(value, bool):
                    raise invalid(f"{record['name']} must be true or false.")
                args += [record["field"]] if value else []
            elif record["kind"] == "number":
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise invalid(f"{record['name']} must be a number.")
                args += [record["field"], str(value)]
            elif value not in (None, ""):
                if not isinstance(value, str):
                    raise invalid(f"{record['name']} must be a string.")
                args += [record["field"], value]
        return args
