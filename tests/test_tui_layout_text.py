"""Text from the service that a terminal takes as layout, not as text: bidi overrides and
isolates (which reorder what follows), zero-width and tag characters (which hide text), line
separators, and lone surrogates (JSON carries them, no UTF-8 holds one). In ``appliance
tui`` (the pilot, against the hostile service: tests/support/hostile.py) and ``appliance
status`` none of them reaches the terminal, every column stays where the layout put it, and
a name that holds one is never a crash when it goes back in a request."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from support.commands import isolated_home, run
from support.hostile import HostileService, hostile_service
from support.tui_pilot import drive, until
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog

from appliance.client import ApiClient, ApiError, Connection
from appliance.client.shown import shown
from appliance.tui.app import ApplianceApp
from appliance.tui.screens.details import DetailsScreen
from appliance.tui.screens.text import TextScreen

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)
home = pytest.fixture(isolated_home)

LAYOUT = ("Cf", "Zl", "Zp", "Cs")  # format, line and paragraph separators, surrogates
# A title with one of each kind: a right-to-left override ("clip.exe" would read as
# "clipexe.jpg"), an isolate, a zero-width space, a line separator, a tag character, a lone
# surrogate, a soft hyphen; and the joiner of an emoji, which is text.
TITLE = "clip\u202egpj.exe \u2066x\u2069 a\u200bb 👩\u200d💻 l\u2028m \U000e0041 s\ud800 h\xadi"
PLAIN = "clipgpj.exe x ab 👩\u200d💻 lm  s\ufffd h\ufffdi"
JOINERS = "\u200c\u200d"  # format characters that are text: they join and shape


@pytest.fixture(autouse=True)
def _no_crash_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield
    assert not (tmp_path / "state" / "appliance" / "tui.log").exists()


def layout_characters(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in LAYOUT and ch not in JOINERS]


def test_every_layout_character_is_left_out_or_takes_the_cell_counted_for_it() -> None:
    """Over every code point this Python's Unicode tables call a format character, a line or
    paragraph separator or a surrogate: none is left, and what stands for it takes the cells
    the TUI's layout (Rich) counted for the character (else the columns after it move)."""
    found = 0
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        if unicodedata.category(ch) not in LAYOUT or ch in JOINERS:
            continue
        found += 1
        assert shown(ch) in {"", "\ufffd"}, hex(code)
        assert cell_len(shown(ch)) == cell_len(ch), hex(code)
    assert found > 2048  # the surrogates alone are 2048
    assert shown(TITLE) == PLAIN
    assert shown(JOINERS) == JOINERS
    # text around them as it was: letters, marks, wide characters, variation selectors
    assert shown("é e\u0301 日本 ❤\ufe0f") == "é e\u0301 日本 ❤\ufe0f"


def screen_lines(app: ApplianceApp) -> list[str]:
    """What the terminal gets, a line each: every widget's lines as drawn, after the line
    filters (the compositor's strips, as Textual writes them)."""
    return ["".join(segment.text for segment in strip)
            for strip in app.screen._compositor.render_strips()]


def test_the_tui_draws_no_layout_character_and_keeps_its_columns(
        service: HostileService) -> None:
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {
        "a": {"title": TITLE, "status": "downloading", "kind": "queue", "created_at": 1},
        "b": {"title": PLAIN, "status": "downloading", "kind": "queue", "created_at": 2}}}
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count == 2, "both rows")
        await pilot.pause()
        lines = screen_lines(app)
        assert not layout_characters("".join(lines))
        rows = [line for line in lines if "downloading" in line]
        assert len(rows) == 2
        # the same text once shown: the same line, its status in the same column
        assert rows[0] == rows[1], rows
        assert rows[0].startswith(" clipgpj.exe x ab ")

    drive(app, scenario, size=(120, 30))
    assert not app.crash_report


def test_status_writes_text_a_terminal_takes(service: HostileService, home: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """What ``appliance status`` writes is UTF-8 (a lone surrogate stopped it with a
    UnicodeEncodeError traceback) with no layout character."""
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {
        "a": {"title": TITLE, "status": "downloading\u202e", "percent": 5.0}}}
    code, out, err = run(capsys, "status", "--url", service.url)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"downloading       5.0% {PLAIN}"
    out.encode("utf-8")  # (strict, as sys.stdout writes in a UTF-8 locale)
    assert not layout_characters(out)


def test_a_name_no_request_can_carry_is_an_error_not_a_crash(service: HostileService) -> None:
    """A file, folder or item id that holds a lone surrogate cannot go in a request's path
    (it is percent-encoded as UTF-8): the details of such a file or item say so, where a
    UnicodeEncodeError from the worker stopped the TUI."""
    service.answers["/api/file/browser/"] = {
        "path": "/", "pagination": {"page": 1, "total": 1, "total_pages": 1},
        "contents": [{"type": "file", "name": "s\ud800.mp4", "path": "s\ud800.mp4"}]}
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {
        "i\udce9": {"title": "t", "status": "pending", "kind": "queue"}}}
    service.answers["/api/system/configuration"]["websocket"]["path"] = "/ws\ud800"
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))
    said = "a name that is no UTF-8 text (it holds a lone surrogate) cannot be sent"

    async def scenario(pilot: Pilot) -> None:
        # the websocket's path: one clear screen (the feed never starts)
        await until(pilot, lambda: said in str(getattr(app.screen, "reason", "")),
                    "the websocket's path refused")
        service.answers["/api/system/configuration"]["websocket"]["path"] = "/ws"
        await pilot.press("r")
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("enter")  # the item's details: what the queue knew stays
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details")
        await pilot.pause(0.2)
        assert "t" in str(app.screen.query_one("#details-fields").render())
        await pilot.press("escape", "6")
        table = app.screen.query_one("#files-table", DataTable)
        await until(pilot, lambda: table.row_count == 1, "the file")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, TextScreen), "the file's details")
        body = app.screen.query_one(RichLog)
        await until(pilot, lambda: said in "".join(s.text for line in body.lines
                                                  for s in line), "the error said")
        assert app.is_running

    drive(app, scenario, size=(120, 30))
    assert not app.crash_report
    assert not any("\ud800" in asked or "\udce9" in asked for asked in service.asked)


def test_the_client_refuses_a_path_no_request_can_carry(service: HostileService) -> None:
    client = ApiClient(Connection(service.url, token="t"))
    for call in (lambda: client.item("\udce9"), lambda: client.browse("a\ud800"),
                 lambda: client.file_info("b\udfff.mp4"), lambda: client.run_task("\ud800")):
        with pytest.raises(ApiError) as refused:
            call()
        assert refused.value.message.startswith("a name that is no UTF-8 text")
    assert service.asked == []
