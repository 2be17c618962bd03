"""The saved task definitions, through the store.

Apart from ``definitions`` (what a definition is, and its reading), which a download process
imports to read a site (``isolated``): that process has no use for the ORM under this.
"""

from __future__ import annotations

from typing import Any

from ..engine.records import RecordService, check_types
from ..errors import invalid
from ..store.tasks import DEFINITION_FIELDS
from .definitions import check_definition


class Definitions(RecordService):
    """The saved definitions: named, enabled or not, each checked on every save."""

    label = "task definition"
    fields = DEFINITION_FIELDS
    defaults = {"description": "", "enabled": True}

    def validate(self, values: dict[str, Any], partial: bool) -> dict[str, Any]:
        check_types(values, {"name": str, "description": str, "enabled": bool,
                             "definition": dict})
        clean = dict(values)
        if not partial or "name" in clean:
            name = (clean.get("name") or "").strip()
            if not name or len(name) > 100:
                raise invalid("name is required (1 to 100 characters).")
            clean["name"] = name
        if not partial and "definition" not in clean:
            raise invalid("definition is required.")
        if "definition" in clean:
            clean["definition"] = check_definition(clean["definition"])
        return clean
