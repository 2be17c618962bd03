"""Red team, a delete removes exactly what it says: a file two items record.

The same video queued twice ends 'finished' twice, one file (the second finds the first's
file under its name, losses16's rule). A delete of one of them with its files removed the
file, and its sidecars, that the other still records: the other then named a file that was
gone, and the answer said nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from falcon.testing import TestClient
from support.browsing import act
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import DONE, FINISHED, new_id


def finished(rt: Runtime, url: str) -> Item:
    [item] = rt.engine.add([{"url": url, "cli": "--write-info-json"}])
    wait_for(lambda: rt.engine.get(item.id).status == "finished", timeout=90,
             message=f"item {item.id} to finish")
    return rt.engine.get(item.id)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_file_another_item_records_stays_and_the_answer_says_why(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    rt, client = app_with(YTP_REMOVE_FILES="true")
    url = origin.watch_url("clip", title="Trailer")
    first, again = finished(rt, url), finished(rt, url)
    assert first.filename == again.filename == "Trailer.mp4"
    folder = rt.settings.download_path
    assert names(folder) == ["Trailer.info.json", "Trailer.mp4"]

    answer = client.simulate_delete("/api/history", json={
        "type": "done", "ids": [first.id], "remove_file": True})
    assert answer.status_code == 200, answer.text
    # the old code: both files gone, the answer {"<id>": "deleted"} alone
    assert names(folder) == ["Trailer.info.json", "Trailer.mp4"]
    assert answer.json[first.id] == "deleted"
    kept = answer.json["files_kept"][first.id]
    assert kept.startswith("Its file 'Trailer.mp4' was kept, with its sidecars: another "
                           "item records it too"), kept
    assert again.id in kept
    assert rt.engine.get(first.id) is None

    # the last item that records it takes it, sidecars and all; said in the filter's answer
    answer = client.simulate_delete("/api/history", json={
        "type": "done", "status": "finished", "remove_file": True})
    assert answer.json == {"items": {again.id: "deleted"}, "deleted": 1}
    assert names(folder) == []


def test_the_file_browsers_delete_of_a_shared_file_is_said_by_every_item_that_recorded_it(
        app_with: Callable[..., tuple[Runtime, TestClient]]) -> None:
    """The browser's delete is of the file itself, as the person chose: it is handled when
    each item that recorded the file names none afterwards (a later file of that name is not
    theirs to delete)."""
    rt, client = app_with(YTP_BROWSER_CONTROL_ENABLED="true")
    folder = rt.settings.download_path
    (folder / "Trailer.mp4").write_bytes(b"one file")
    size = (folder / "Trailer.mp4").stat().st_size
    both = [Item(id=new_id(), url="http://example.invalid/t", kind=DONE, status=FINISHED,
                 filename="Trailer.mp4", file_size=size, download_folder=str(folder),
                 created_at=rt.store.stamp()) for _ in range(2)]
    rt.store.insert(both)
    done = act(client, {"action": "delete", "path": "Trailer.mp4"})
    assert done.status_code == 200 and all(r["ok"] for r in done.json), done.text
    for item in both:
        now = rt.engine.get(item.id)
        assert (now.filename, now.file_size) == ("", None)
        assert now.msg == "Its file was deleted in the file browser ('Trailer.mp4')."
