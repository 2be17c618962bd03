"""Text from the service, made safe to write to a terminal.

Titles, uploaders, file names, log lines and error texts come from sites and from whoever
uses the API. Written as they are, an ``ESC`` in a video's title is a terminal sequence on the
reader's screen: ``ESC ] 2 ;`` retitles the window, others hide or forge what is shown, write
the clipboard (OSC 52) or make the terminal answer with text it then reads as typed input.
Here C0 controls become their Unicode control pictures (``␛``), DEL ``␡`` and C1 controls
``�``. Only what is shown changes: a name the client sends back is never passed through this.
"""

from __future__ import annotations

import math
from typing import Any

PICTURES = ({code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
            | dict.fromkeys(range(0x80, 0xA0), 0xFFFD))


def shown(text: str) -> str:
    """``text`` with every control character replaced by a printable stand-in."""
    return text.translate(PICTURES)


def number(value: Any) -> float | None:
    """``value`` when the wire gave a finite number (not text, not true/false, not the NaN or
    Infinity Python's JSON reads, not a whole number of 400 digits, which it reads too), else
    None: what is formatted as a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def shown_lines(text: str) -> str:
    """:func:`shown` line by line, the line ends kept (a report written to a terminal)."""
    return "".join(shown(line) + "\n" for line in text.splitlines())
