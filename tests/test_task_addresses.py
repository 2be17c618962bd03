"""Where a task's requests may connect: the page or feed a task reads is at a URL a client
wrote, so it connects only where webhooks may (appliance/outbound.py) — never the cloud's
metadata service, whose answer would come back through inspect's preview."""

from __future__ import annotations

from collections.abc import Callable

import falcon.testing
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.webhooks import Receiver

from appliance.runtime import Runtime

Client = falcon.testing.TestClient


def test_a_feed_at_a_refused_address_is_not_read(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A task's URL is whatever a client wrote: the page or feed it reads must not be the
    cloud's metadata service (its answer would come back through inspect's preview). ``0``
    resolves to 0.0.0.0, which Linux connects to this machine: it stands for such a name. A
    redirect to it is refused too; the origin itself, by an allowed name, is read."""
    _, client = app_with()
    origin.feeds.set("meta", [FeedEntry("m1", origin.watch_url("clip"), "credentials")])
    disguised = origin.base_url.replace("127.0.0.1", "0", 1) + "/feeds/meta.rss"
    refused = client.simulate_post("/api/tasks/inspect", json={"url": disguised})
    assert refused.status_code == 400, refused.text
    assert refused.json["error"] == ("Inspection failed: 0 is 0.0.0.0, the unspecified "
                                     "address: task requests may not go there.")
    receiver = Receiver()
    try:
        redirect = receiver.url(f"/status/302?Location={disguised}") + "#handler=rss"
        redirected = client.simulate_post("/api/tasks/inspect", json={"url": redirect})
        assert redirected.status_code == 400, redirected.text
        assert redirected.json["error"] == refused.json["error"]
    finally:
        receiver.close()
    allowed = client.simulate_post("/api/tasks/inspect",
                                   json={"url": f"{origin.base_url}/feeds/meta.rss"})
    assert [item["title"] for item in allowed.json["items"]] == ["credentials"]
