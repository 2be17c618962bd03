"""A download that waits for the download folder's disk (shared by the tests of a disk gone
at start, unplugged, or never mounted yet)."""

from __future__ import annotations

from pathlib import Path

from appliance.runtime import Runtime
from appliance.store import Item
from support.origin import MediaOrigin
from support.server import wait_for


def queued_while_the_disk_is_missing(rt: Runtime, origin: MediaOrigin, downloads: Path) -> Item:
    """Add an item and see it wait: its info read, the dispatcher round done, still pending,
    and nothing written to the bare mount point (not even the folder's mark)."""
    [item] = rt.engine.add([{"url": origin.clip_url}])
    wait_for(lambda: (i := rt.engine.get(item.id)) and i.extractor, timeout=60,
             message="the item's info")
    assert rt.engine.alive(10)  # the dispatcher ran a round with the item ready
    assert rt.engine.get(item.id).status == "pending"
    assert list(downloads.iterdir()) == []
    return item
