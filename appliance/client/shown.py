"""Text from the service, made safe to write to a terminal.

Titles, uploaders, file names, log lines and error texts come from sites and from whoever
uses the API. Written as they are, an ``ESC`` in a video's title is a terminal sequence on the
reader's screen: ``ESC ] 2 ;`` retitles the window, others hide or forge what is shown, write
the clipboard (OSC 52) or make the terminal answer with text it then reads as typed input.
Here C0 controls become their Unicode control pictures (``␛``), DEL ``␡`` and C1 controls
``�``. The characters a terminal takes as layout, not text, are left out or ``�`` too
(:data:`UNSEEN`, :data:`REPLACED`).
Only what is shown changes: a name the client sends back is never passed through this.
"""

from __future__ import annotations

import math
from typing import Any

# Unicode's format characters (Cf), line and paragraph separators (Zl, Zp) and surrogates
# (Cs): a terminal takes them as layout, not as text. Bidi overrides and isolates reorder
# what follows them: a file "clip\u202egpj.exe" reads "clipexe.jpg", and in a table row the
# columns after it are reordered too (in terminals that do bidi: VTE's, Konsole). Zero-width
# and tag characters hide text. A lone surrogate, which JSON can carry and no UTF-8 holds, is
# written to a terminal as "\ud800" (six cells where the layout counted one) or not at all
# (`appliance status` stopped on UnicodeEncodeError).
# Those the TUI's layout (Rich) counts no cell for are left out, which keeps every column
# where it was counted (the TUI replaces them after the layout: appliance.tui.controls).
# Not the zero-width joiner and non-joiner (0x200C, 0x200D): they are text, joining emoji
# ("👩‍💻", which the layout counts as one picture) and shaping scripts (Persian, Devanagari).
# 0x13439-0x1343F are Cf since Unicode 15 (Python 3.13's tables), unassigned before.
UNSEEN = ((0x061C, 0x061C), (0x180E, 0x180E), (0x200B, 0x200B), (0x200E, 0x200F),
          (0x2028, 0x202E),
          (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
          (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001),
          (0xE0020, 0xE007F))
# The rest, counted one cell each: shown as U+FFFD.
REPLACED = ((0x00AD, 0x00AD), (0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F),
            (0x0890, 0x0891), (0x08E2, 0x08E2), (0xD800, 0xDFFF), (0x110BD, 0x110BD),
            (0x110CD, 0x110CD))


def _each(ranges: tuple[tuple[int, int], ...]) -> list[int]:
    return [code for first, last in ranges for code in range(first, last + 1)]


PICTURES = ({code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
            | dict.fromkeys(range(0x80, 0xA0), 0xFFFD)
            | dict.fromkeys(_each(REPLACED), 0xFFFD) | dict.fromkeys(_each(UNSEEN)))


def shown(text: str) -> str:
    """``text`` with every control character replaced by a printable stand-in, and every
    layout character left out or replaced."""
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


def removed_options(answer: dict[str, Any]) -> str:
    """The options an add's answer says were removed, as text ("" for none): its list, or the
    one value another version (or a hostile service) gives instead. ``join`` of a number
    raised TypeError: a traceback of ``appliance add``, the TUI's paste stopped."""
    removed = answer.get("removed_options") or []
    return " ".join(map(str, removed if isinstance(removed, list) else [removed]))


def shown_lines(text: str) -> str:
    """:func:`shown` line by line, the line ends kept (a report written to a terminal)."""
    return "".join(shown(line) + "\n" for line in text.splitlines())
