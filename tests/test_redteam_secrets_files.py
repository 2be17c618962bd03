"""What another account of the box can read of the service's secrets at rest.

The unit's ``UMask=0027`` and the media folder's group are for the media server's user
(Jellyfin, Samba), which the README tells to join the service's group. Neither the
service's password nor an item's credentials may be readable through that group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for
from test_service_install import staging_root

from appliance.engine.containment import ContainedYoutubeDL
from appliance.runtime import Runtime
from appliance.service_install import ENV_PATH, Options, plan


def test_an_environment_file_the_group_reads_is_closed_by_the_install(
        tmp_path: Path) -> None:
    """An install wrote /etc/appliance/appliance.env (YTP_AUTH_PASSWORD) at mode 640, group
    appliance, and kept it so when run again: the media server's user read the password."""
    root, venv = staging_root(tmp_path)
    env = root / str(ENV_PATH).lstrip("/")
    env.parent.mkdir(parents=True)
    env.write_text("YTP_AUTH_PASSWORD=hunter22\n")
    env.chmod(0o640)
    options = Options(root=root, venv=venv)
    [closing] = [step for step in plan(options) if str(ENV_PATH) in step.says]
    assert closing.says.startswith(f"close {ENV_PATH} to others than its owner (mode 640 → 600)")
    closing.run()
    assert env.stat().st_mode & 0o777 == 0o600
    assert env.read_text() == "YTP_AUTH_PASSWORD=hunter22\n", "its settings are kept"
    assert not [step for step in plan(options) if str(ENV_PATH) in step.says], \
        "a closed one is left as it is"


def _secret_url(page: str) -> str:
    parts = urlsplit(page)
    return urlunsplit(parts._replace(netloc=f"me:USECRET42@{parts.netloc}",
                                     query="token=TSECRET42"))


def _masked(page: str) -> str:
    parts = urlsplit(page)
    return urlunsplit(parts._replace(netloc=f"me:********@{parts.netloc}",
                                     query="token=********"))


def test_an_items_info_json_names_its_url_without_its_secrets(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    """The .info.json written beside the media (read by the media server's group, shared on
    the LAN) held the item's URL whole, password and token, in webpage_url, original_url and
    each format's Referer header."""
    runtime, client = app_with()
    url = _secret_url(origin.watch_url("clip"))
    added = client.simulate_post("/api/history", json={"url": url, "cli": "--write-info-json"})
    assert added.status_code == 200, added.text
    item = wait_for(lambda: next(iter(runtime.engine.store.page("done", 1, 10).items), None),
                    timeout=90, message="the download")
    assert item.status == "finished", item.error
    [written] = Path(runtime.settings.download_path).rglob("*.info.json")
    text = written.read_text()
    assert "USECRET42" not in text and "TSECRET42" not in text
    info = json.loads(text)
    assert info["webpage_url"] == _masked(origin.watch_url("clip"))
    assert (Path(runtime.settings.download_path) / item.filename).stat().st_size > 0
    assert client.simulate_get(f"/api/history/{item.id}").json["url"] == url, \
        "its owner reads it back whole"
    # what the item keeps is its owner's, whole (a signed thumbnail the API fetches for a
    # client): the masking is what is written beside the media
    assert item.info["webpage_url"] == url


def test_a_channels_info_json_names_its_url_without_its_secrets(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    """A channel's metadata, written beside its media, held the task's URL whole."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    url = _secret_url(origin.watch_url("clip"))
    task = client.simulate_post("/api/tasks", json={
        "name": "channel", "url": url, "folder": "channel", "auto_start": False})
    assert task.status_code == 200, task.text
    written = client.simulate_post(f"/api/tasks/{task.json['id']}/metadata")
    assert written.status_code == 200, written.text
    text = (Path(runtime.settings.download_path) / written.json["json_file"]).read_text()
    assert "USECRET42" not in text and "TSECRET42" not in text
    assert json.loads(text)["webpage_url"] == _masked(origin.watch_url("clip"))


def test_what_is_written_of_an_info_masks_its_urls_wherever_they_stand() -> None:
    """As the download process writes it (yt-dlp's sanitize_info, ours)."""
    url = "http://me:pw@h.example/v?token=t1&list=PL1"
    info = {"webpage_url": url, "webpage_url_domain": "me:pw@h.example", "n": 3,
            "formats": [{"url": url, "http_headers": {"Referer": url, "Cookie": "a=1"}}]}
    masked = "http://me:********@h.example/v?token=********&list=PL1"
    written = ContainedYoutubeDL.sanitize_info(info)
    shown = ("webpage_url", "webpage_url_domain", "n", "formats")  # (and yt-dlp's version)
    assert {key: written[key] for key in shown} == {
        "webpage_url": masked, "webpage_url_domain": "h.example", "n": 3,
        "formats": [{"url": masked, "http_headers": {"Referer": masked}}]}
    assert info["webpage_url"] == url, "the info given is left as it was"
