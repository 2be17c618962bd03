"""Output paths a request names cannot leave the download folder: yt-dlp's ``TYPE:TEMPLATE``
form of ``-o`` (``infojson:/elsewhere/x``) and templates that hold a colon are refused or
removed, and a real download writes nothing outside. Through the API on a real engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def add(client: TestClient, body: dict[str, Any]) -> Any:
    return client.simulate_post("/api/history", body=json.dumps(body),
                                headers={"Content-Type": "application/json"})


def assert_nothing_written_outside(client: TestClient, runtime: Runtime, body: dict[str, Any],
                                   outside: Path) -> dict[str, Any] | None:
    """The item as queued, or None when the request was refused."""
    response = add(client, body)
    if response.status_code == 400:  # refused outright
        assert response.json["code"] == "INVALID_REQUEST"
        return None
    assert response.status_code == 200, response.text
    [queued] = response.json
    item = wait_for(lambda: (i := client.simulate_get(f"/api/history/{queued['id']}").json)
                    ["kind"] == "done" and i, timeout=120, message="the download to end")
    assert sorted(outside.rglob("*")) == []
    if item["status"] == "finished":
        assert (runtime.settings.download_path / item["filename"]).is_file()
    return queued


@pytest.mark.parametrize("cli", [
    "--write-info-json -o 'infojson:{outside}/leak'",
    "--write-thumbnail -o 'thumbnail:{outside}/leak'",
    "-o 'pl_infojson:{outside}/leak' -o 'infojson:{outside}/leak' --write-info-json",
])
def test_typed_output_path_outside_is_removed(
        client: TestClient, runtime: Runtime, origin: MediaOrigin, outside: Path,
        cli: str) -> None:
    queued = assert_nothing_written_outside(client, runtime, {
        "url": origin.clip_url, "cli": cli.format(outside=outside)}, outside)
    assert queued is not None and "--output" in queued["removed_options"]


def test_cli_template_with_a_colon_cannot_name_an_absolute_folder(
        client: TestClient, runtime: Runtime, origin: MediaOrigin, outside: Path) -> None:
    assert_nothing_written_outside(client, runtime, {
        "url": origin.clip_url, "cli": f"-o '{outside}/x:y.%(ext)s'"}, outside)


def test_item_template_with_a_colon_cannot_name_an_absolute_folder(
        client: TestClient, runtime: Runtime, origin: MediaOrigin, outside: Path) -> None:
    assert_nothing_written_outside(client, runtime, {
        "url": origin.clip_url, "template": f"{outside}/x:y.%(ext)s"}, outside)
