"""After a reconnect the TUI reads what it missed from the history's pages, never an item at
a time: a queue of thousands that gained new items while the TUI was away (a subscription's
run, a bulk add) made a request for each of the 1,000 items it showed. Against the real
service, restarted under the TUI; the requests are counted, not timed."""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from support.hostile import hostile_service
from support.server import Server
from support.tui_pilot import Counted, connected, drive, until
from textual.pilot import Pilot

from appliance.client import ApiClient, Connection
from appliance.tui import catch_up as catching_up
from appliance.tui.app import ApplianceApp
from appliance.tui.catch_up import catch_up
from appliance.tui.model import MAX_ITEMS, Missed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tui")]


@pytest.fixture(scope="module")
def silent() -> Iterator[int]:
    """A port that takes connections and never answers: the service reads each waiting
    item's info, and one of a closed port failed at once, its item gone to the history."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


def queued(server: Server, count: int, port: int, first: int = 0) -> list[str]:
    """``count`` items that wait (``auto_start: false``: nothing downloads), added 1,000 a
    request, their URLs on the silent ``port``; their ids, oldest first."""
    ids: list[str] = []
    for start in range(first, first + count, 1000):
        body = [{"url": f"http://127.0.0.1:{port}/v{n}", "auto_start": False}
                for n in range(start, min(start + 1000, first + count))]
        answer = server.post("/api/history", body)
        assert answer.status_code == 200, answer.text
        ids += [str(a["id"]) for a in answer.json()]
    return ids


def away_and_back(server: Server, app: ApplianceApp, client: Counted,
                  meanwhile: Callable[[Server], None]
                  ) -> Callable[[Pilot], Coroutine[Any, Any, None]]:
    """A scenario: the service restarted under the TUI, ``meanwhile`` done on it before the
    TUI takes its snapshot, then every catch-up read ended."""
    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        client.hold.clear()
        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: app.connection_state != "connected", "the disconnect")
        restarted = await asyncio.to_thread(
            lambda: Server(server.root, server.env, port=server.port).start())
        try:
            client.calls.clear()
            await asyncio.to_thread(meanwhile, restarted)
            client.hold.set()
            await until(pilot, lambda: app.connection_state == "connected", "the reconnect")
            await until(pilot, lambda: not [w for w in app.workers
                                            if w.group == "final" and w.is_running],
                        "the catch-up read")
            app.repaint_queue()
        finally:
            await asyncio.to_thread(restarted.stop)

    return scenario


def test_a_reconnect_to_a_queue_of_thousands_reads_pages(
        make_server: Callable[..., Server], silent: int) -> None:
    server = make_server("thousands")
    queued(server, 5000, silent)
    client = Counted(Connection(server.url))
    app = ApplianceApp(client)
    snapshot: dict[str, Any] = {}

    def meanwhile(restarted: Server) -> None:
        queued(restarted, 2000, silent, first=5000)  # newer than every item the TUI shows
        snapshot.update(restarted.get("/api/history/live",
                                      params={"queue_limit": MAX_ITEMS}).json())

    drive(app, away_and_back(server, app, client, meanwhile))
    assert client.item_reads() == 0
    assert client.calls["GET /api/history"] == 1  # nothing ended: one page said so
    # What the queue shows is the service's newest 1,000, no stale item beside them.
    assert set(app.model.items) == set(snapshot["queue"])
    assert app.model.left_out
    assert snapshot["queue_count"] + snapshot["history_count"] == 7000


def test_what_ended_or_went_while_away_comes_from_one_page(
        make_server: Callable[..., Server], silent: int) -> None:
    server = make_server("few")
    cancelled, deleted, waiting = queued(server, 3, silent)
    client = Counted(Connection(server.url))
    app = ApplianceApp(client)
    unseen: list[str] = []

    def meanwhile(restarted: Server) -> None:
        unseen.extend(queued(restarted, 1, silent, first=3))  # added and ended unseen
        for ids in ([cancelled], unseen):
            assert restarted.post("/api/history/cancel", {"ids": ids}).status_code == 200
        answer = restarted.request("DELETE", "/api/history",
                                   json={"type": "queue", "ids": [deleted]})
        assert answer.status_code == 200, answer.text

    drive(app, away_and_back(server, app, client, meanwhile))
    items = app.model.items
    assert items[cancelled]["status"] == "cancelled"
    assert items[unseen[0]]["status"] == "cancelled"
    assert deleted not in items
    assert items[waiting]["status"] == "pending"
    assert client.item_reads() == 0 and client.calls["GET /api/history"] == 1


# --- the pages' bounds, against a service that answers what the test says -------------------

hostile = pytest.fixture(hostile_service)


def endless_history(query: str) -> dict[str, Any]:
    """A history of a billion items, ids ``h<n>`` created at ``-n``, newest first."""
    asked = urllib.parse.parse_qs(query)
    page, per_page = int(asked["page"][0]), int(asked["per_page"][0])
    first = (page - 1) * per_page
    return {"items": [{"id": f"h{n}", "created_at": -n, "status": "finished"}
                      for n in range(first, first + per_page)],
            "pagination": {"page": page, "total": 10**9, "total_pages": 10**9 // per_page}}


def pages_read(service: Any) -> list[tuple[str, str]]:
    return [(q["page"][0], q["per_page"][0]) for q in map(urllib.parse.parse_qs, service.queries)
            if "per_page" in q]


def test_the_pages_end_past_the_oldest_vanished_item(hostile: Any) -> None:
    hostile.answers["/api/history"] = endless_history
    client = ApiClient(Connection(hostile.url))
    # h1500 ended; "w" waits beyond the snapshot, created after it.
    caught = catch_up(client, Missed(["w", "h1500"], 0, oldest=-1500), newest=50)
    assert [i["id"] for i in caught.ended] == ["h1500"] and caught.gone == ["w"]
    assert pages_read(hostile) == [("1", "1000"), ("2", "1000")]
    hostile.queries.clear()
    # Created after the first page's last item and not on it: no page beyond it is read
    # (one created at the same time might be: then the next page is).
    caught = catch_up(client, Missed(["w"], 0, oldest=-998), newest=50)
    assert caught == catching_up.CaughtUp([], ["w"]) and pages_read(hostile) == [("1", "1000")]


def test_a_history_that_never_ends_is_read_a_bounded_number_of_pages(hostile: Any) -> None:
    hostile.answers["/api/history"] = endless_history
    client = ApiClient(Connection(hostile.url))
    caught = catch_up(client, Missed(["x", "y"], 3), newest=50)  # no creation time known
    assert len(pages_read(hostile)) == catching_up.MAX_PAGES
    assert caught.gone == ["x", "y"]
    assert [i["id"] for i in caught.ended] == ["h0", "h1", "h2"]  # the newest that ended


def test_only_the_newest_are_read_when_no_item_vanished(hostile: Any) -> None:
    hostile.answers["/api/history"] = endless_history
    client = ApiClient(Connection(hostile.url))
    assert catch_up(client, Missed([], 0), newest=50) == catching_up.CaughtUp([], [])
    assert pages_read(hostile) == []
    caught = catch_up(client, Missed([], 80), newest=50)
    assert pages_read(hostile) == [("1", "50")] and len(caught.ended) == 50
