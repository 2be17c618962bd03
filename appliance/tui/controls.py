"""Every line the TUI draws shows control characters as pictures (see
:mod:`appliance.client.shown`): Textual writes a widget's text to the terminal as it is, and
most of that text comes from the service. A line filter (which every widget's lines pass) is
the one place that covers every view, screen, toast and dialog."""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from appliance.client.shown import shown


class ShownControls(LineFilter):
    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [segment if segment.control or segment.text.isprintable()
                else Segment(shown(segment.text), segment.style, segment.control)
                for segment in segments]
