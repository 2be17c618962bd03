"""How numbers look in the TUI: sizes, speeds, times, progress bars. Plain functions."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from rich.text import Text

from appliance.client.shown import number, shown

__all__ = ["bar", "clipped", "cut", "eta", "json_text", "name_of", "named", "number", "size",
           "speed", "when"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
BAR_WIDTH = 6
NANOSECONDS_FROM = 1e14  # seconds that large are far past year 3000000: nanoseconds
TOO_DEEP = "(nested too deep to show)"
# A message's text at most, where one line or a toast is meant (most come from the service:
# an error text of megabytes took the TUI seconds a megabyte to lay out, all that time
# frozen). The rest is cut with "…".
MESSAGE_CHARS = 2000
# A long text's start and end at most, where a screen shows it whole (the service writes
# log records of up to 65,536 characters; a long one is a traceback or a site's answer).
CLIP_HEAD = 6000
CLIP_TAIL = 2000
# A name's start and end at most, where a dialog or a heading names what it is about (a
# title, a path, a subscription's): a delete's question for an item titled with a megabyte
# froze the TUI for 13 s while it was laid out (at a load of 3). The end is kept: a file's
# extension, a question's "to:".
NAME_HEAD = 200
NAME_TAIL = 100


def size(value: Any) -> str:
    amount = number(value)
    if amount is None or amount < 0:
        return ""
    for unit in _UNITS:
        if amount < 1024 or unit == _UNITS[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""  # unreachable: the loop returns on its last unit


def speed(bps: float | None) -> str:
    return f"{size(bps)}/s" if bps else ""


def eta(seconds: float | None) -> str:
    if seconds is None or not 0 <= seconds < math.inf:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def when(epoch: Any) -> str:
    """Local time of Unix seconds (or nanoseconds, as YTPTube's ``timestamp`` has them)."""
    epoch = number(epoch)
    if epoch is None:
        return ""
    if epoch > NANOSECONDS_FROM:
        epoch = epoch / 1e9
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
    except (OverflowError, OSError, ValueError):
        return str(epoch)


def bar(percent: float | None, status: str) -> Text:
    """``████░░  75%``: six cells and the percentage; no colour needed to read it."""
    if percent is None:
        return Text("")
    percent = max(0.0, min(100.0, percent))
    eighths = round(percent / 100 * BAR_WIDTH * 8)
    full, part = divmod(eighths, 8)
    cells = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    cells = cells.ljust(BAR_WIDTH, "░")
    style = "green" if status == "finished" else "cyan"
    return Text.assemble((cells, style), f" {percent:3.0f}%")


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` (an answer's part) written as JSON. What the service nests close to
    Python's recursion limit is read in a worker thread but written where the stack is
    deeper (the UI's): a RecursionError there stopped the TUI."""
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, default=str)
    except RecursionError:
        return TOO_DEEP


def cut(text: str) -> str:
    """``text`` up to :data:`MESSAGE_CHARS` characters."""
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 1] + "…"


def clipped(text: str, head: int = CLIP_HEAD, tail: int = CLIP_TAIL) -> str:
    """A long text as a screen shows it (a log record, an item's error, a file's title):
    its start and its end when it is longer than ``head`` + ``tail`` characters (the end
    of a traceback says what went wrong), with the count left out between. The service's
    texts may be megabytes (the client bounds an answer at 32 MiB): each was laid out whole
    in the UI thread, the TUI frozen for seconds a megabyte (72 s for five log records of
    4 MiB, 44 s for the details of an item whose error was 4 MiB), and the Logs view kept
    2,000 records of any size."""
    if len(text) <= head + tail:
        return text
    left_out = len(text) - head - tail
    return f"{text[:head]} … ({left_out:,} characters left out) … {text[-tail:]}"


def named(text: str) -> str:
    """A name as a dialog or a heading shows it: :func:`clipped` to :data:`NAME_HEAD` and
    :data:`NAME_TAIL` characters, in one line. Its line breaks are shown as pictures, as
    its other controls are: a title's breaks made lines of the delete's question ("Cat" and
    a line "Delete every video?" below it), and a few dozen pushed its keys off the dialog."""
    return shown(clipped(text, NAME_HEAD, NAME_TAIL))


def name_of(record: dict[str, Any], *keys: str) -> str:
    """What a record is called where it is asked about: the first of its ``keys`` that shows
    something (an item's title, then its URL; a preset's name, then its id). A title of
    zero-width or bidi characters (left out on the screen) or of spaces asked "Delete ?":
    which one, the person could not tell."""
    for key in keys:
        value = record.get(key)
        if value is not None and shown(str(value)).strip():
            return str(value)
    return "(no name)"
