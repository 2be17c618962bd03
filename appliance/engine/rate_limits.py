"""How long a site that limits requests asks to wait. A 429 Too Many Requests comes with a
``Retry-After`` header (seconds, or an HTTP date) that yt-dlp's message leaves out ("HTTP Error
429: Too Many Requests"): the download process finds it on the answer (``asked_wait``, while
the date is still relative to now) and adds it to the message in a form ``failures`` says
plainly and takes off yt-dlp's words.

The engine retries no failed item by itself: the wait is the person's to keep (or a task's
next run). A site's value is hostile until read: only digits or a date, its text bounded, and
a wait past LONGEST said as LONGEST or more."""

from __future__ import annotations

import datetime
import email.utils
import re
import time
from typing import Any

from ..units import human_duration

LONGEST = 7 * 24 * 3600
HEADER_LIMIT = 64  # an HTTP date is 29 characters
# Where yt-dlp keeps the answer that failed: the error itself, the extractor's cause, the
# exception it was raised from.
_CHAIN = ("cause", "__cause__", "__context__")
_DEPTH = 8
MARK = re.compile(r" \[the site asks to wait (\d+) s\]\Z")


def asked_wait(exc: BaseException | None, now: float | None = None) -> int | None:
    """The seconds a 429 answer in ``exc``'s chain asks to wait (its ``Retry-After``); None
    when there is none, or it is not one the standard allows, or it asks for no wait."""
    seen: list[Any] = [exc]
    for found in seen:
        if len(seen) > _DEPTH:
            break
        response = getattr(found, "response", None)
        if getattr(found, "status", None) == 429 and response is not None:
            return _seconds(response.headers.get("Retry-After"), now)
        seen += [after for name in _CHAIN
                 if (after := getattr(found, name, None)) is not None and after not in seen]
    return None


def _seconds(header: Any, now: float | None) -> int | None:
    text = str(header or "").strip()[:HEADER_LIMIT]
    if text.isdigit() and text.isascii():
        seconds = int(text) if len(text) <= 12 else LONGEST
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": a date in UTC
            when = when.replace(tzinfo=datetime.UTC)
        seconds = round(when.timestamp() - (time.time() if now is None else now))
    return min(seconds, LONGEST) if seconds > 0 else None


def said(seconds: int) -> str:
    """The wait in words, as the item's error tells it."""
    more = " or more" if seconds >= LONGEST else ""
    return f"It asks to wait {human_duration(seconds)}{more} before the next try."


def marked(message: str, seconds: int | None) -> str:
    """``message`` with the wait the site asked for, for ``failures`` to say."""
    return f"{message} [the site asks to wait {seconds} s]" if seconds else message
