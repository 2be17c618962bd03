"""The internet shortcuts of --write-link (``.url``, ``.webloc``, ``.desktop``) are a
download's sidecars like the others: written in the temporary folder, home with the media in
yt-dlp's move, and removed with the item's file.

yt-dlp wrote them in the download folder as the job started: a cancel, a delete or a failure
left them there for good, no item's; and a delete with files left them beside nothing (a name
of no known kind was no sidecar).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient
from support.download_moves import Seen, files
from support.held_moves import of_this_checkout
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import child
from appliance.runtime import Runtime

LINKS = ["--write-url-link", "--write-webloc-link", "--write-desktop-link"]
ALL = ["Linked.desktop", "Linked.mp4", "Linked.url", "Linked.webloc"]


def test_a_downloads_shortcuts_wait_in_the_temporary_folder_until_its_move(
        origin: MediaOrigin, tmp_path: Path) -> None:
    home = tmp_path / "home"
    channel = Seen(home)
    job = {"op": "download", "job": "j1", "url": origin.watch_url("clip", title="Linked"),
           "args": LINKS, "home": str(home), "temp": str(tmp_path / "temp"),
           "template": "Linked.%(ext)s", "default_template": "%(title)s.%(ext)s"}
    result = child.run_download(job, channel)  # type: ignore[arg-type]
    assert result["filepath"] == str(home / "Linked.mp4")
    # the old code: the three shortcuts home as the download began
    before = [seen for kind, status, seen in channel.said
              if kind == "moving" or status == "downloading"]
    assert before and all(seen == [] for seen in before), channel.said
    assert files(home) == ALL
    assert f"URL={origin.watch_url('clip', title='Linked')}" in \
        (home / "Linked.url").read_text()
    # a file manager shows a .desktop by its Name=: its own path, not the temporary folder's
    desktop = (home / "Linked.desktop").read_text()
    assert f"Name={str(home / 'Linked').replace(' ', chr(92) + 's')}\n" in desktop, desktop
    assert str(tmp_path / "temp") not in desktop


def test_a_delete_with_files_takes_the_shortcuts_too(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    of_this_checkout(monkeypatch, tmp_path)
    rt, client = app_with(YTP_REMOVE_FILES="true")
    [item] = rt.engine.add([{"url": origin.watch_url("clip", title="Linked"),
                             "template": "Linked.%(ext)s", "cli": " ".join(LINKS)}])
    wait_for(lambda: rt.engine.get(item.id).status == "finished", timeout=90,
             message="the item to finish")
    home = rt.settings.download_path
    assert files(home) == ALL
    answer = client.simulate_delete("/api/history", json={"type": "done", "ids": [item.id],
                                                          "remove_file": True})
    assert answer.json == {item.id: "deleted"}, answer.text
    # the old code: the .desktop, .url and .webloc left, beside nothing
    assert files(home) == []
