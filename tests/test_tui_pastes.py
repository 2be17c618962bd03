"""A paste of many URLs in the add form, against the real service: queued in batches (a
paste of thousands, a playlist's export, was one request a URL: minutes of "Queueing …"),
a URL the service refuses still named alone and the rest queued; the answers bounded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support.server import Server
from support.tui_pilot import Counted, connected, drive, text_of, until
from textual import events
from textual.pilot import Pilot
from textual.widgets import Checkbox, TextArea

from appliance.client import Connection
from appliance.tui.app import ApplianceApp
from appliance.tui.screens import add

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tui")]


def test_a_paste_of_a_thousand_urls_is_queued_in_batches(
        make_server: Callable[..., Server]) -> None:
    server = make_server("paste")
    urls = [f"http://127.0.0.1:9/p{n}" for n in range(1000)]
    urls[500] = "ftp://127.0.0.1/refused"  # refused: the service stores none of its batch
    client = Counted(Connection(server.url))
    app = ApplianceApp(client)
    lines: list[str] = []

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("a")
        area = await until(pilot, lambda: app.screen.query("#add-urls")
                           and app.screen.query_one("#add-urls", TextArea), "the form")
        app.screen.query_one("#add-auto-start", Checkbox).value = False  # nothing downloads
        app.post_message(events.Paste("\n".join(urls) + "\n"))
        await until(pilot, lambda: urls[-1] in area.text, "the paste")
        await pilot.press("ctrl+s")
        answers = await until(pilot, lambda: "refused" in (t := text_of(app, "#add-answers"))
                              and t, "the answers", seconds=120)
        lines.extend(answers.splitlines())

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report
    live = server.get("/api/history/live", params={"queue_limit": 0}).json()
    # (each waiting item's info is read: one from port 9 fails and goes to the history)
    assert live["queue_count"] + live["history_count"] == 999
    # 5 batches; the refused one's halved down to the refused URL: 2 more requests a halving.
    assert client.calls["POST /api/history"] <= 5 + 2 * 8
    assert lines[0] == f"999 queued, 1 refused; {1000 - add.SHOWN_LINES:,} more lines not shown"
    assert lines[1].startswith("✗ ftp://127.0.0.1/refused: ")
    assert lines[2] == f"✓ queued: {urls[0]}" and len(lines) == 1 + add.SHOWN_LINES
