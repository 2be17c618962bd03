"""What the service sends is shown in the terminal, never obeyed by it.

Titles, uploaders, file names, log lines and error texts come from sites and from whoever
uses the API; Textual writes a widget's text to the terminal as it is. An ``ESC`` in a video's
title was a terminal sequence on the administrator's screen: ``ESC ] 2 ;`` retitled the
window, others hide or forge what is shown, write the clipboard (OSC 52) or make the terminal
answer with text it then reads as typed input. So every line drawn goes through
:class:`ShownControls` (Textual's line filters, which every widget's lines pass): C0 controls
become their Unicode control pictures (``␛``), DEL ``␡`` and C1 controls ``�``. The text the
TUI sends back (a file's name to rename or delete) is never changed: only what is drawn.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

PICTURES = ({code: 0x2400 + code for code in range(0x20)} | {0x7F: 0x2421}
            | dict.fromkeys(range(0x80, 0xA0), 0xFFFD))


def shown(text: str) -> str:
    """``text`` with every control character replaced by a printable stand-in."""
    return text.translate(PICTURES)


def shown_lines(text: str) -> str:
    """:func:`shown` line by line: the line ends stay (a report written to the terminal)."""
    return "".join(shown(line) + "\n" for line in text.splitlines())


class ShownControls(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [segment if segment.control or segment.text.isprintable()
                else Segment(shown(segment.text), segment.style, segment.control)
                for segment in segments]
