"""The API's configuration side in process: what a client reads at start
(``/api/system/configuration``), health and engine figures, pause and resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient

from appliance.api.system import MAX_FOLDERS, list_folders
from appliance.runtime import Runtime

AppWith = Callable[..., tuple[Runtime, TestClient]]


@pytest.mark.parametrize(("host", "url"), [
    ("[::1]:8081", "ws://[::1]:{port}/ws"),
    ("[fe80::1]", "ws://[fe80::1]:{port}/ws"),
    ("media.lan:8081", "ws://media.lan:{port}/ws"),
    ("192.168.1.20", "ws://192.168.1.20:{port}/ws"),
])
def test_the_websocket_url_is_on_the_host_the_request_came_to(
        client: TestClient, host: str, url: str) -> None:
    websocket = client.simulate_get("/api/system/configuration",
                                    headers={"Host": host}).json["websocket"]
    assert websocket["url"] == url.format(port=websocket["port"])
    assert websocket["path"] == "/ws" and websocket["flasharr_path"] == "/api/ws"


def _tree(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).mkdir(parents=True)


def test_folders_are_listed_sorted_to_their_depth_hidden_ones_left_out(tmp_path: Path) -> None:
    _tree(tmp_path, "b/two/deep", "a/one", ".hidden/inner", "a/.dot")
    (tmp_path / "a" / "file.mp4").write_bytes(b"")
    assert list_folders(tmp_path, 0) == []
    assert list_folders(tmp_path, 1) == [{"name": "a", "path": "a"}, {"name": "b", "path": "b"}]
    assert list_folders(tmp_path, 2) == [
        {"name": "a", "path": "a"}, {"name": "b", "path": "b"},
        {"name": "one", "path": "a/one"}, {"name": "two", "path": "b/two"}]
    assert {"name": "deep", "path": "b/two/deep"} in list_folders(tmp_path, 3)


def test_folders_stop_at_the_most_a_configuration_lists(tmp_path: Path) -> None:
    _tree(tmp_path, *(f"f{n:04}" for n in range(MAX_FOLDERS + 5)))
    folders = list_folders(tmp_path, 2)
    assert len(folders) == MAX_FOLDERS
    assert folders[-1] == {"name": f"f{MAX_FOLDERS - 1:04}", "path": f"f{MAX_FOLDERS - 1:04}"}


def test_the_configuration_lists_folders_to_the_depth_set(app_with: AppWith) -> None:
    runtime, client = app_with(YTP_FOLDER_DEPTH="1")
    _tree(runtime.settings.download_path, "shows/s1")
    folders = client.simulate_get("/api/system/configuration").json["folders"]
    assert {"name": "shows", "path": "shows"} in folders
    assert not [f for f in folders if f["path"].startswith("shows/")]
