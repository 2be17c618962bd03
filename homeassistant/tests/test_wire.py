"""Both ``/ws`` envelopes the service may send reach the coordinator as (event, payload).

The real service (in the other tests) sends ``{"event", "data": payload}`` today; YTPTube's
envelope, which the service is moving to, wraps the payload in an Event record."""

from __future__ import annotations

from custom_components.appliance.api import unwrap_event

ITEM = {"id": "a1", "status": "finished", "title": "Clip"}


def test_plain_envelope() -> None:
    assert unwrap_event({"event": "item_completed", "data": ITEM}) == ("item_completed", ITEM)


def test_ytptube_event_envelope() -> None:
    message = {"event": "item_completed", "data": {
        "id": "e9", "created_at": "2026-12-03T00:00:00Z", "event": "item_completed",
        "title": "Download completed", "message": "Clip", "data": ITEM}}
    assert unwrap_event(message) == ("item_completed", ITEM)


def test_not_events() -> None:
    assert unwrap_event(["item_completed"]) is None
    assert unwrap_event({"data": ITEM}) is None
    # A payload that merely has an "event" key is not an Event record.
    odd = {"id": "a1", "event": "x"}
    assert unwrap_event({"event": "item_updated", "data": odd}) == ("item_updated", odd)
