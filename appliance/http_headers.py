"""What a header a person configures (a webhook's, a task definition's) may hold: what
http.client can send. One rule, checked on save and again before sending."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed


def header_problem(name: str, value: str) -> tuple[str, str] | None:
    """What cannot be sent -- ("name" or "value", why) -- or None. Spaces around a value are
    not part of it in HTTP: the caller trims them (requests refuses a leading one)."""
    if not _TOKEN.fullmatch(name):
        return "name", ("is not a valid header name: letters, digits and !#$%&'*+-.^_`|~ "
                        "only (no spaces, colons or accented letters)")
    if _CONTROL.search(value):
        return "value", ("must be on one line: line breaks and other control characters "
                         "(but tab) are not allowed")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as exc:
        return "value", (f"holds {value[exc.start]!r}, which an HTTP header cannot carry "
                         "(latin-1 characters only; encode it, e.g. as base64 or %XX)")
    return None
