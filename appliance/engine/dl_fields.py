"""Download fields: extra inputs a client shows when adding a URL. An add request carries
their values as ``"dl_fields": {"<field>": value}``.

A field is either a yt-dlp option (``--embed-subs``, ``--format``): the value is that
option's; or, like the contract's own example ``"field": "title"``, the name of a metadata
field of the download (title, artist, album, …): the value replaces that field before the
file is named and tagged (yt-dlp's ``--parse-metadata``), so ``%(title)s`` in the output
template and ``--embed-metadata`` use what the person typed.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import invalid
from .options import PATH_FIELDS, Context, _parser, refusal
from .records import RecordService, check_types

FIELDS = ("name", "description", "field", "kind", "order", "value", "icon", "extras")
KINDS = ("text", "string", "number", "bool")
# A metadata field's name: an info-dict key as output templates name them. Names starting
# with "_" are yt-dlp's internals and are not offered.
METADATA_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_METADATA_VALUE = 1000


def is_option(field: str) -> bool:
    return field.startswith("-")


def metadata_arguments(field: str, value: str) -> list[str]:
    """yt-dlp arguments that set metadata ``field`` to ``value``, whatever its characters.

    ``--parse-metadata FROM:TO`` reads FROM as an output template (``%`` doubled), split at
    the first colon with no backslash before it, and then turns every ``\\:`` into ``:``.
    A backslash is only special there before a colon, so escaping each colon alone
    round-trips, except a backslash at the end of the value, which would escape the
    separator: FROM is wrapped in "=" on both sides, so it never ends in one (the leading
    "=" also keeps a plain word from being read as a field name). TO takes what is between
    the first and the last "=" of the evaluated text, which is exactly the value."""
    literal = value.replace("%", "%%").replace(":", "\\:")
    return ["--parse-metadata", f"={literal}=:(?s)\\A=(?P<{field}>.*)=\\Z"]


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
        if "field" in clean and not is_option(clean["field"]):
            if not METADATA_FIELD.match(clean["field"]):
                raise invalid(f"field '{clean['field']}' is neither a yt-dlp option (--name) "
                              "nor a metadata field name (letters, digits, _).")
            if clean.get("kind") == "bool":
                raise invalid(f"{clean['field']} is a metadata field; its kind cannot be bool.")
            if clean["field"] in PATH_FIELDS:
                raise invalid(f"field '{clean['field']}' is where yt-dlp keeps the path of the "
                              "download's file: it cannot be set.")
        elif "field" in clean:
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
                args += self._value_arguments(record, str(value))
            elif value not in (None, ""):
                if not isinstance(value, str):
                    raise invalid(f"{record['name']} must be a string.")
                args += self._value_arguments(record, value)
        return args

    @staticmethod
    def _value_arguments(record: dict[str, Any], value: str) -> list[str]:
        if is_option(record["field"]):
            return [record["field"], value]
        if len(value) > MAX_METADATA_VALUE:
            raise invalid(f"{record['name']} is longer than {MAX_METADATA_VALUE} characters.")
        return metadata_arguments(record["field"], value)
