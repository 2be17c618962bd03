"""A cancel or a delete that comes as yt-dlp moves a download's finished files home: the move
ends whole, or nothing of it is home.

yt-dlp moves the sidecars first (the .description, the .info.json), the media last. A cancel
killed that move part way: the item ended 'cancelled', what had moved stayed in the download
folder, no item's, out of any delete's reach. A delete was spared once the engine had read the
process's "moving", but not in the moments before: the process moved on at once.

The process's move is held once its first file is home, and its question to the engine
(``held_moves``): each window stays open until the test lets go.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import Result, TestClient
from support.download_moves import files, nothing_left
from support.held_moves import ASKED, MOVED, Gate, of_this_checkout
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine.engine import DownloadEngine
from appliance.engine.runs import Run
from appliance.runtime import Runtime

SIDECARS = "--write-info-json --write-description"
ALL = ["Moved.description", "Moved.info.json", "Moved.mp4"]


@pytest.fixture
def holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Gate]]:
    folder = tmp_path / "holds"
    folder.mkdir()
    gates = of_this_checkout(monkeypatch, folder, MOVED, ASKED)
    yield gates
    for gate in gates.values():
        gate.close()


def test_a_cancel_as_yt_dlp_moves_the_files_home_lets_the_move_end_and_finishes(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        holds: dict[str, Gate]) -> None:
    rt, client = app_with()
    said: list[str] = []
    rt.bus.subscribe(lambda event: said.append(event.name))
    holds[ASKED].release()  # (only the move is held here)
    [item] = rt.engine.add([{"url": origin.watch_url("clip", title="Moved"),
                             "template": "Moved.%(ext)s", "cli": SIDECARS}])
    home = rt.settings.download_path
    wait_for(lambda: holds[MOVED].reached(), timeout=90, message="the move, held part way")
    assert len(files(home)) == 1, files(home)  # the first file is home, the rest are not
    answer = client.simulate_post("/api/history/cancel", json={"ids": [item.id]})
    assert answer.json == {item.id: "ok"}, answer.text
    holds[MOVED].release()
    done = wait_for(lambda: (i := rt.engine.get(item.id)) is not None and i.kind == "done"
                    and i, timeout=90, message="the item's end")
    # the old code: 'cancelled', its first sidecar home, no item's
    assert (done.status, done.filename) == ("finished", "Moved.mp4"), (done.status, done.msg)
    assert files(home) == ALL
    assert not (rt.settings.temp_path / item.id).exists()
    assert "item_cancelled" not in said
    assert "item_completed" in said


def test_a_delete_before_the_engine_reads_that_the_move_begins_leaves_nothing_home(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        holds: dict[str, Gate], monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete comes once the process said the move begins and before the engine reads
    it: the process moved on at once, and the delete killed it part way."""
    rt, client = app_with(YTP_REMOVE_FILES="true")
    answers: list[Result] = []
    on_message = DownloadEngine._on_message

    def delete_before_reading(engine: DownloadEngine, run: Run, message: dict[str, Any]
                              ) -> None:
        if message.get("type") == "moving" and not answers:
            # the process went on to move (the code before), or waits for the answer
            wait_for(lambda: holds[MOVED].reached() or holds[ASKED].reached(), timeout=60,
                     message="the process to move or to wait")
            asking = threading.Thread(target=lambda: answers.append(client.simulate_delete(
                "/api/history", json={"type": "queue", "ids": [run.item.id],
                                      "remove_file": True})))
            asking.start()
            asking.join(timeout=60)
            for gate in holds.values():
                gate.release()
        on_message(engine, run, message)

    monkeypatch.setattr(DownloadEngine, "_on_message", delete_before_reading)
    [item] = rt.engine.add([{"url": origin.watch_url("clip", title="Moved"),
                             "template": "Moved.%(ext)s", "cli": SIDECARS}])
    nothing_left(rt, item.id, answers)  # the old code: the first sidecar home, no item's
