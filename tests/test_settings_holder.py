"""One settings holder: every component reads the runtime's one ``SettingsHolder``, so a change
through ``PUT /api/settings`` reaches all of them in one step."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import falcon.testing
import pytest
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import events
from appliance.config import SettingsHolder
from appliance.runtime import Runtime
from appliance.store import Item


def _runtime(app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]],
             tmp_path: Path) -> tuple[Runtime, falcon.testing.TestClient]:
    config = tmp_path / "config"
    config.mkdir()
    # the download folder from config.yml: not pinned, so the API may change it
    (config / "config.yml").write_text(f"download_path: {tmp_path / 'downloads'}\n")
    return app_with({"YTP_CONFIG_PATH": str(config), "YTP_TEMP_PATH": str(tmp_path / "tmp"),
                     "YTP_KEEP_ARCHIVE": "false", "YTP_WORKER_IDLE_TIMEOUT": "30"})


def test_every_component_reads_the_one_holder(app_with, tmp_path: Path) -> None:
    rt, _client = _runtime(app_with, tmp_path)
    holder = rt.settings_holder
    readers = {
        "engine": rt.engine.settings_holder,
        "planner": rt.engine.planner.settings_holder,
        "presets": rt.engine.presets.settings,
        "auth": rt.auth.settings,
        "url info": rt.url_info.settings,
        "notifier": rt.notifier.settings,
    }
    assert {name for name, held in readers.items() if held is not holder} == set()
    # Settings the API does not change reach them too: a swap is a swap for everyone.
    holder.change(lambda s: s.replace(notify_timeout=7.0, url_info_cache_ttl=9.0,
                                      cors_origins=("https://tv.example",),
                                      max_workers=5, extract_info_concurrency=3))
    assert rt.notifier.timeout == 7.0
    assert rt.url_info._answer({}, "hit", "default", "", "key", 0.0)["_cached"]["ttl"] == 9.0
    assert rt.auth.browsers.listed("https://tv.example")
    assert rt.engine._pool_capacity() == 8


def test_an_api_change_reaches_every_component_in_one_step(
        app_with, tmp_path: Path, origin: MediaOrigin) -> None:
    rt, client = _runtime(app_with, tmp_path)
    before = rt.settings
    seen: list[dict] = []
    rt.bus.subscribe(lambda e: e.name == events.CONFIG_UPDATE
                     and e.data.get("feature") == "settings" and seen.append(e.data["data"]))
    swaps: list[tuple[Path, Path]] = []
    rt.settings_holder.on_change(lambda old, new: swaps.append((old.download_path,
                                                                new.download_path)))
    target = tmp_path / "elsewhere"
    answer = client.simulate_put("/api/settings", json={
        "download_directory": str(target), "output_template": "moved-%(title)s.%(ext)s",
        "stall_timeout": 42, "max_concurrent_downloads": 1})
    assert answer.status_code == 200, answer.text
    assert swaps == [(before.download_path, target)]  # one swap, all four values
    now = rt.settings
    assert (now.download_path, now.output_template, now.stall_timeout, now.max_workers) == (
        target, "moved-%(title)s.%(ext)s", 42.0, 1)
    assert rt.engine.settings is now and rt.engine.planner.settings is now
    plan = rt.engine.planner.plan(Item(id="x", url=origin.clip_url))
    assert plan.root == target
    command = rt.engine.command_line({"url": origin.clip_url})
    assert "moved-%(title)s.%(ext)s" in command and str(target) in command
    # the websocket's view of the change (its clients get this event)
    assert seen and seen[-1]["download_directory"] == str(target)
    assert seen[-1]["output_template"] == "moved-%(title)s.%(ext)s"
    # a preset's folder is checked against the new folder
    made = client.simulate_post("/api/presets", json={"name": "shows", "folder": "tv"})
    assert made.status_code in (200, 201), made.text
    # and a download lands there, recorded in the folder it ran in
    [added] = rt.engine.add([{"url": origin.clip_url}])
    done = wait_for(lambda: (i := rt.engine.get(added.id)) and i.kind == "done" and i,
                    timeout=90, message="the download to finish")
    assert done.status == "finished", done.error
    assert done.download_folder == str(target)
    assert (target / done.filename).is_file() and done.filename.startswith("moved-")


def test_changes_are_made_one_at_a_time(tmp_path: Path) -> None:
    """Two changes at once: the second edits what the first made (no change is lost)."""
    from conftest import make_settings

    holder = SettingsHolder(make_settings(tmp_path))
    inside = threading.Event()
    go_on = threading.Event()

    def slow(settings):
        inside.set()
        go_on.wait(timeout=30)
        return settings.replace(max_workers=settings.max_workers + 1)

    first = threading.Thread(target=holder.change, args=(slow,))
    first.start()
    assert inside.wait(timeout=30)
    second = threading.Thread(
        target=holder.change,
        args=(lambda s: s.replace(max_workers=s.max_workers + 10),))
    second.start()
    go_on.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert holder.current.max_workers == make_settings(tmp_path).max_workers + 11


def test_a_refused_change_changes_nothing(tmp_path: Path) -> None:
    from conftest import make_settings

    holder = SettingsHolder(make_settings(tmp_path))
    heard: list[object] = []
    holder.on_change(lambda old, new: heard.append(new))
    before = holder.current

    def refuse(settings):
        raise ValueError("no")

    with pytest.raises(ValueError):
        holder.change(refuse)
    assert holder.current is before and heard == []
    assert SettingsHolder.of(holder) is holder
    assert SettingsHolder.of(before).current is before
