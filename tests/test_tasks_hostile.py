"""Tasks against what a feed or a site says on purpose or by mistake: entries no item may
have, pictures at this machine's own addresses or that are not pictures, channel titles that
XML or the file system cannot hold. Real feeds and pages from the local origin, the real
runtime in process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon.testing
from support.feeds import FeedEntry
from support.origin import MediaOrigin

from appliance.runtime import Runtime

Client = falcon.testing.TestClient


def create(client: Client, **fields: Any) -> dict[str, Any]:
    response = client.simulate_post("/api/tasks", json={"auto_start": False, **fields})
    assert response.status_code == 200, response.text
    return response.json


# --- F4: one bad entry ----------------------------------------------------------------------


def test_entries_no_item_may_have_are_refused_one_by_one(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The good entries are queued, each bad one is named in the log with the reason and
    counted as failed; the run is a success that says so, and so is every later one."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    good = [origin.watch_url("clip"), origin.watch_url("clip2")]
    bad = {"javascript:alert(1)": "must be an http(s) URL",
           "file:///etc/passwd": "must be an http(s) URL",
           "data:text/html,hello": "must be an http(s) URL",
           f"{origin.base_url}/watch/a b.html": "must not contain spaces",
           f"{origin.base_url}/{'a' * 8200}": "longer than 8192 characters"}
    urls = [good[0], *bad, good[1]]
    origin.feeds.set("mixed", [FeedEntry(f"e{n}", url) for n, url in enumerate(urls)])
    task = create(client, name="mixed", url=f"{origin.base_url}/feeds/mixed.rss")

    first = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert (first["status"], first["found"], first["queued"], first["skipped"],
            first["failed"]) == ("success", 7, 2, 0, 5)
    assert first["error"].startswith("5 entries refused, not queued: url 'javascript")
    queued = sorted(i.url for i in runtime.tasks.items(task["id"], 0, 10)[0])
    assert queued == sorted(good)
    stored = client.simulate_get(f"/api/executions/{first['id']}").json
    assert (stored["status"], stored["failed"], stored["error"]) == \
        ("success", 5, first["error"])
    warnings = [line for line in stored["log"] if " WARNING entry refused" in line]
    assert len(warnings) == 5
    for url, reason in bad.items():
        assert any(reason in line and repr(url[:200]) in line for line in warnings), url

    again = runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")
    assert (again["status"], again["queued"], again["skipped"], again["failed"]) == \
        ("success", 0, 2, 5)
    state = client.simulate_get(f"/api/tasks/{task['id']}").json
    assert (state["last_status"], state["failures"]) == ("success", 0)
    assert state["last_error"] == again["error"]
