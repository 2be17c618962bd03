"""Flasharr's settings (``GET|PUT /api/settings``) through falcon.testing, on a real engine:
what they show, what they refuse, what they change at once and what survives a restart."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_settings, runtime_of_module
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for
from test_flasharr import add, assert_error, send, task, wait_state

from appliance.api.app import create_app
from appliance.config import SettingsError
from appliance.runtime import Runtime

Start = Callable[..., tuple[Runtime, TestClient]]


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    """One runtime for the refused changes: a refusal changes nothing."""
    for runtime in runtime_of_module(tmp_path_factory, "refusing"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def start(app_with: Start) -> Start:
    """Runtimes on one folder (a restart is a second call after ``stop``)."""
    return app_with


def test_settings_view(client: TestClient, runtime: Runtime) -> None:
    view = client.simulate_get("/api/settings").json
    assert view["max_concurrent_downloads"] == runtime.settings.max_workers == 3
    assert view["download_directory"] == str(runtime.settings.download_path)
    assert view["max_downloads_per_site"] == 2
    assert view["output_template"] == "%(title)s.%(ext)s"
    assert view["auth_enabled"] is False and view["cors_origins"] == []
    # the test settings give the folders in the environment: they are pinned
    assert view["pinned"] == {"download_directory": "YTP_DOWNLOAD_PATH"}
    assert "auth_password" not in view


@pytest.mark.parametrize(("body", "text"), [
    ({}, "No settings given"),
    ({"max_concurrent_downloads": "3"}, "max_concurrent_downloads must be a whole number."),
    ({"max_concurrent_downloads": True}, "max_concurrent_downloads must be a whole number."),
    ({"max_concurrent_downloads": 2.5}, "max_concurrent_downloads must be a whole number."),
    ({"max_concurrent_downloads": 0}, "max_concurrent_downloads must be between 1 and 64."),
    ({"max_concurrent_downloads": 65}, "max_concurrent_downloads must be between 1 and 64."),
    ({"max_downloads_per_site": None}, "max_downloads_per_site must be a whole number."),
    ({"stall_timeout": 1}, "stall_timeout must be a number of seconds, at least 5."),
    ({"stall_timeout": "10"}, "stall_timeout must be a number"),
    ({"output_template": "../../%(title)s"}, "must stay inside the download folder"),
    ({"output_template": ""}, "output_template must be a non-empty string."),
    ({"download_directory": 5}, "download_directory must be a non-empty string."),
    ({"max_concurrent_downloads": 2, "colour": "blue"},
     "These settings cannot be changed here: colour."),
    ({"auth_enabled": False}, "cannot be changed here: auth_enabled"),
])
def test_settings_put_bad_input(refusing: tuple[Runtime, TestClient], body: dict,
                                text: str) -> None:
    runtime, client = refusing
    assert_error(send(client, "PUT", "/api/settings", body), 400, "INVALID_REQUEST", text)
    assert runtime.settings.max_workers == 3  # nothing was applied
    assert not (runtime.settings.config_path / "settings.json").exists()


def test_settings_put_malformed_bodies(client: TestClient) -> None:
    malformed = client.simulate_put("/api/settings", body="{",
                                    headers={"Content-Type": "application/json"})
    assert_error(malformed, 400, "INVALID_REQUEST", "Invalid JSON")
    assert_error(send(client, "PUT", "/api/settings", [1]), 400, "INVALID_REQUEST",
                 "JSON object")
    assert_error(client.simulate_put("/api/settings"), 400, "INVALID_REQUEST")
    assert_error(client.simulate_put("/api/settings", body="max=1",
                                     headers={"Content-Type": "text/plain"}),
                 415, "UNSUPPORTED_MEDIA_TYPE")


def test_env_pinned_setting_is_a_conflict(start, tmp_path: Path) -> None:
    runtime, client = start(YTP_MAX_WORKERS="3")
    assert client.simulate_get("/api/settings").json["pinned"]["max_concurrent_downloads"] \
        == "YTP_MAX_WORKERS"
    conflict = send(client, "PUT", "/api/settings", {"max_concurrent_downloads": 1})
    assert_error(conflict, 409, "CONFLICT", "pinned by YTP_MAX_WORKERS")
    assert_error(send(client, "PUT", "/api/settings", {"download_directory": str(tmp_path)}),
                 409, "CONFLICT", "pinned by YTP_DOWNLOAD_PATH")
    assert runtime.settings.max_workers == 3


def test_raising_the_limit_starts_a_waiting_download_at_once(start,
                                                             origin: MediaOrigin) -> None:
    runtime, client = start()
    assert send(client, "PUT", "/api/settings",
                {"max_concurrent_downloads": 1}).json == {"success": True}
    ids = [add(client, {"url": origin.slow_url, "template": f"{n}.%(ext)s"})["id"]
           for n in ("first", "second")]

    def one_runs_one_waits() -> tuple[str, str] | None:
        # whichever got its info first runs; the other has its info and waits for a slot
        states = {i: task(client, i)["state"] for i in ids}
        running = [i for i in ids if states[i] == "downloading"]
        waiting = [i for i in ids if states[i] == "queued" and runtime.engine.get(i).extractor]
        return (running[0], waiting[0]) if len(running) == len(waiting) == 1 else None

    running, waiting = wait_for(one_runs_one_waits, timeout=90,
                                message="one download running and one waiting")
    assert runtime.engine.stats()["active_downloads"] == 1

    assert send(client, "PUT", "/api/settings",
                {"max_concurrent_downloads": 2}).json == {"success": True}
    wait_state(client, waiting, {"downloading"}, timeout=30)
    assert task(client, running)["state"] == "downloading"  # both at once
    assert client.simulate_get("/api/settings").json["max_concurrent_downloads"] == 2
    assert client.simulate_get("/api/engine/stats").json["active_downloads"] == 2


def test_settings_survive_a_restart_and_win_over_config_yml(start, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.yml").write_text("max_workers: 4\nstall_timeout: 60\n")
    runtime, client = start()
    assert runtime.settings.max_workers == 4
    changed = send(client, "PUT", "/api/settings", {"max_concurrent_downloads": 2,
                                                    "output_template": "%(id)s.%(ext)s"})
    assert changed.json == {"success": True}
    assert runtime.engine.settings.max_workers == 2
    assert json.loads((config / "settings.json").read_text()) == {
        "max_workers": 2, "output_template": "%(id)s.%(ext)s"}
    runtime.stop()

    again, client = start()  # the same config folder
    assert again.settings.max_workers == 2  # settings.json wins over config.yml
    assert again.settings.stall_timeout == 60  # untouched values still come from config.yml
    view = client.simulate_get("/api/settings").json
    assert view["max_concurrent_downloads"] == 2
    assert view["output_template"] == "%(id)s.%(ext)s"
    again.stop()

    # an environment variable still wins, and pins the setting
    pinned, client = start(YTP_MAX_WORKERS="5")
    assert pinned.settings.max_workers == 5
    assert client.simulate_get("/api/settings").json["max_concurrent_downloads"] == 5


def test_download_directory_change_applies_to_new_downloads(start, tmp_path: Path,
                                                            origin: MediaOrigin) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.yml").write_text(f"download_path: {tmp_path / 'downloads'}\n")
    env = {"YTP_CONFIG_PATH": str(config), "YTP_TEMP_PATH": str(tmp_path / "tmp")}
    runtime, client = start(env)
    assert "download_directory" not in client.simulate_get("/api/settings").json["pinned"]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_error(send(client, "PUT", "/api/settings",
                      {"download_directory": str(blocker / "sub")}),
                 400, "INVALID_REQUEST", "cannot create")
    assert_error(send(client, "PUT", "/api/settings", {"download_directory": "relative/x"}),
                 400, "INVALID_REQUEST", "absolute path")
    # a folder where a download's file would change the service: refused, and not made
    for refused in (config / "media", tmp_path / "tmp"):
        assert_error(send(client, "PUT", "/api/settings", {"download_directory": str(refused)}),
                     400, "INVALID_REQUEST", "choose a folder of its own")
    assert not (config / "media").exists()
    target = tmp_path / "new" / "media"
    assert send(client, "PUT", "/api/settings",
                {"download_directory": str(target)}).json == {"success": True}
    assert target.is_dir()
    added = add(client, {"url": origin.clip_url})
    done = wait_state(client, added["id"], {"completed", "failed"})
    assert done["state"] == "completed", done
    assert (target / "clip.mp4").is_file()
    assert not (tmp_path / "downloads" / "clip.mp4").exists()
    runtime.stop()
    again, _client = start(env)
    assert again.settings.download_path == target


def test_corrupt_saved_settings_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text("{not json")
    with pytest.raises(SettingsError, match=r"settings\.json: cannot read saved settings"):
        make_settings(tmp_path)
    (tmp_path / "config" / "settings.json").write_text('{"max_workers": 0}')
    with pytest.raises(SettingsError, match=r"settings\.json max_workers: must be at least 1"):
        make_settings(tmp_path)
    (tmp_path / "config" / "settings.json").write_text('{"port": 1, "max_workers": 2}')
    settings = make_settings(tmp_path)  # keys that cannot be saved there are ignored
    assert settings.max_workers == 2 and settings.port == 8081
