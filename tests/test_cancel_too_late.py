"""A cancel that comes once the download's job has ended whole (its files moved home, its
result on its way to the engine) cannot stop anything: the item finishes with its files. It
ended 'cancelled' and its media stayed in the download folder, recorded by no item: out of
the history's and any delete's reach (deletes17's open end)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine.engine import DownloadEngine
from appliance.runtime import Runtime


def test_a_cancel_after_the_job_ended_whole_leaves_it_finished_with_its_file(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, _client = app_with()
    answers: list[dict[str, str]] = []
    said: list[str] = []
    rt.bus.subscribe(lambda event: said.append(event.name))
    end_run = DownloadEngine._end_run

    def cancel_first(engine: DownloadEngine, run: Any, result: Any, failure: Any) -> None:
        """The cancel, answered, after the job's result came and before its end is decided."""
        if result and result.get("type") != "error" and not answers:
            answers.append(engine.cancel_items([run.item.id]))
        end_run(engine, run, result, failure)

    monkeypatch.setattr(DownloadEngine, "_end_run", cancel_first)
    [added] = rt.engine.add([{"url": origin.clip_url, "template": "late.%(ext)s"}])
    done = wait_for(lambda: (i := rt.engine.get(added.id)) is not None and i.kind == "done"
                    and i, timeout=90, message="the item's end")
    # its end is said just after it is stored, where the look above may already find it
    wait_for(lambda: {"item_cancelled", "item_completed"} & set(said), timeout=30,
             message="the item's end said")
    assert answers, "no cancel was asked"
    # the old code: 'cancelled', and late.mp4 home, no item's
    assert done.status == "finished", (done.status, done.msg)
    assert done.filename == "late.mp4"
    assert (Path(rt.settings.download_path) / "late.mp4").is_file()
    assert "item_cancelled" not in said
    assert "item_completed" in said
