"""Flasharr's ``PUT /api/settings`` at its edges (round mutation18: planted bugs in
api/flasharr_settings.py that passed the suite): the values at the ends of each range and
JSON's 2.0 taken, the nested form with both its names, a folder that is already there, and
every refusal's words whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from falcon.testing import TestClient

from appliance.events import Event
from appliance.runtime import Runtime

Start = Callable[..., tuple[Runtime, TestClient]]
CAN = ("max_concurrent_downloads, max_downloads_per_site, download_directory, output_template, "
       "stall_timeout")


def _put(client: TestClient, body: Any) -> Any:
    return client.simulate_put("/api/settings", body=json.dumps(body),
                               headers={"Content-Type": "application/json"})


def _refusal(client: TestClient, body: Any) -> str:
    answer = _put(client, body)
    assert answer.status_code == 400, answer.text
    return answer.json["error"]


def test_the_ends_of_each_range_are_taken_and_clients_told(app_with: Start) -> None:
    runtime, client = app_with()
    said: list[Event] = []
    runtime.bus.subscribe(said.append)
    for body in ({"max_concurrent_downloads": 2.0}, {"max_downloads_per_site": 64},
                 {"stall_timeout": 5}):
        assert _put(client, body).json == {"success": True}, body
    view = client.simulate_get("/api/settings").json
    assert (view["max_concurrent_downloads"], view["max_downloads_per_site"],
            view["stall_timeout"]) == (2, 64, 5.0)
    assert type(view["max_concurrent_downloads"]) is int
    assert runtime.settings.stall_timeout == 5.0
    told = [e.data for e in said if e.name == "config_update"]
    assert told[-1] == {"feature": "settings", "action": "update", "data": view}


def test_settings_that_cannot_be_saved_are_said_so(app_with: Start) -> None:
    runtime, client = app_with()
    (runtime.settings.config_path / "settings.json").mkdir()  # not a file to write
    answer = _put(client, {"max_downloads_per_site": 3})
    assert answer.status_code == 500, answer.text
    assert answer.json["code"] == "INTERNAL_ERROR"
    assert runtime.settings.max_workers_per_extractor == 2  # not applied either


def test_each_refusal_says_what_to_send(app_with: Start) -> None:
    runtime, client = app_with()
    assert _refusal(client, {}) == f"No settings given; these can change: {CAN}."
    assert _refusal(client, {"colour": "blue", "auth_enabled": False}) == (
        f"These settings cannot be changed here: auth_enabled, colour. These can: {CAN}.")
    assert _refusal(client, {"downloads": {"directory": "/x", "colour": 1}}) == (
        "downloads must be an object with directory, max_concurrent.")
    assert _refusal(client, {"stall_timeout": 4.5}) == (
        "stall_timeout must be a number of seconds, at least 5.")
    assert _refusal(client, {"output_template": "%(title)s\x00.%(ext)s"}) == (
        "output_template must be a non-empty string.")
    assert runtime.settings.output_template == "%(title)s.%(ext)s"  # nothing was applied


def test_a_download_folder_already_there_or_given_nested_is_taken_and_refusals_name_it(
        app_with: Start, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.yml").write_text(f"download_path: {tmp_path / 'downloads'}\n")
    runtime, client = app_with({"YTP_CONFIG_PATH": str(config),
                                "YTP_TEMP_PATH": str(tmp_path / "tmp")})
    there = tmp_path / "there"
    there.mkdir()
    assert _put(client, {"download_directory": str(there)}).json == {"success": True}
    assert runtime.settings.download_path == there
    other = tmp_path / "other"
    assert _put(client, {"downloads": {"directory": str(other), "max_concurrent": 2}}).json \
        == {"success": True}
    assert (runtime.settings.download_path, runtime.settings.max_workers) == (other, 2)

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert _refusal(client, {"download_directory": str(blocker / "sub")}) == (
        f"download_directory: cannot create {blocker / 'sub'}: Not a directory.")
    assert _refusal(client, {"download_directory": "relative/x"}) == (
        "download_directory must be an absolute path.")
    # the settings' own check names the setting as the API calls it
    assert _refusal(client, {"download_directory": str(config / "media")}) == (
        f"download_directory: {config / 'media'} is, contains or lies inside the config "
        f"folder ({config}); choose a folder of its own for downloads")
    assert runtime.settings.download_path == other
