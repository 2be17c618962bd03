"""The event bus and YTPTube's frame: what subscribers get (a progress event marked so, odd
payloads as they are), a subscriber that raises or leaves while an event is handed out."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

import pytest

from appliance import events
from appliance.events import Event, EventBus, envelope


def test_subscribers_get_each_event_with_its_kind() -> None:
    bus = EventBus()
    got: list[Event] = []
    bus.subscribe(got.append)
    state = bus.publish(events.ITEM_UPDATED, {"id": "a"})
    progress = bus.publish(events.ITEM_UPDATED, {"id": "a", "percent": 5}, progress=True)
    assert got == [state, progress]
    assert (state.progress, progress.progress) == (False, True)  # only progress may be dropped


@pytest.mark.parametrize("data", [None, "text", 5, [1, "two"], {"nested": {"x": [None]}},
                                  {"title": 5, "message": None}])
def test_any_payload_is_framed_as_it_is(data: Any) -> None:
    for name in ("log_error", events.ITEM_ADDED):
        frame = envelope(name, data, at=0.5)
        assert frame["event"] == name
        body = frame["data"]
        assert uuid.UUID(body["id"]).version == 4
        assert body["created_at"] == "1970-01-01T00:00:00.500000+00:00"
        assert (body["event"], body["data"]) == (name, data)
        lifted = isinstance(data, dict) and name == "log_error"
        assert body["title"] == (data.get("title") if lifted else None)
        assert body["message"] == (data.get("message") if lifted else None)


def test_an_events_frame_keeps_when_it_happened() -> None:
    event = EventBus().publish(events.PAUSED, {"paused": True})
    frame = event.envelope()
    assert frame["data"]["created_at"] == datetime.datetime.fromtimestamp(
        event.at, datetime.UTC).isoformat()
    assert frame["data"]["data"] == {"paused": True}
    assert envelope("x", None)["data"]["id"] != envelope("x", None)["data"]["id"]


def test_a_message_lifts_its_title_and_text() -> None:
    bus = EventBus()
    event = bus.message("warning", "Disk", "Almost full", id="i1")
    assert event.name == "log_warning"
    assert set(event.data) == {"title", "message", "timestamp", "id"}
    assert (event.data["title"], event.data["message"], event.data["id"]) == (
        "Disk", "Almost full", "i1")
    assert abs(event.data["timestamp"] - event.at) < 60
    body = event.envelope()["data"]
    assert (body["title"], body["message"]) == ("Disk", "Almost full")


def test_a_subscriber_that_raises_or_leaves_breaks_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    got: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    def leaving(event: Event) -> None:
        got.append(f"leaving {event.name}")
        stop_leaving()

    bus.subscribe(broken)
    stop_leaving = bus.subscribe(leaving)
    stop_last = bus.subscribe(lambda e: got.append(f"last {e.name}"))
    with caplog.at_level(logging.ERROR, logger="appliance.events"):
        bus.publish("one", None)
    assert got == ["leaving one", "last one"]  # the one after the leaver is still called
    [record] = caplog.records
    assert record.getMessage().startswith("event subscriber <function ")
    assert record.getMessage().endswith(" failed on one") and record.exc_info is not None
    stop_last()
    stop_last()  # twice: no harm
    bus.publish("two", None)
    assert got == ["leaving one", "last one"]
