"""A task with retention by age whose two downloads finished (real yt-dlp from the origin),
the first made 3 days old and the second a minute short of 2: what retention tests start
from."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import falcon.testing

from appliance.runtime import Runtime
from appliance.store.records import FINISHED, Item

from .feeds import FeedEntry
from .origin import MediaOrigin
from .server import wait_for


def aged_task(runtime: Runtime, client: falcon.testing.TestClient, origin: MediaOrigin,
              name: str, folder: str | None = None) -> tuple[dict[str, Any], list[Item]]:
    """The task (keeping 2 days, in folder ``name`` unless ``folder`` says another) and its
    items, oldest first."""
    origin.feeds.set(name, [FeedEntry("a", origin.clip_url, "a"),
                            FeedEntry("b", origin.clip2_url, "b")])
    made = client.simulate_post("/api/tasks", json={
        "name": name, "url": f"{origin.base_url}/feeds/{name}.rss",
        "folder": name if folder is None else folder,
        "keep_days": 2, "auto_start": True})
    assert made.status_code == 200, made.text
    task = made.json
    assert runtime.tasks.runner.execute(runtime.tasks.get(task["id"]), "manual")["queued"] == 2

    def finished() -> list[Item]:
        items = runtime.tasks.items(task["id"], 0, 10)[0]
        return items if [i.status for i in items] == [FINISHED, FINISHED] else []

    done = wait_for(finished, timeout=60, message="the downloads")
    old, recent = sorted(done, key=lambda i: i.url != origin.clip_url)
    now = time.time()
    old = dataclasses.replace(old, finished_at=now - 3 * 86400)
    recent = dataclasses.replace(recent, finished_at=now - 2 * 86400 + 60)
    runtime.engine.store.save(old)
    runtime.engine.store.save(recent)
    return task, [old, recent]
