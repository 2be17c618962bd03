"""A red team's try at the post-processors: an item's options may rename the file they work
on. ``--parse-metadata`` and ``--replace-in-metadata`` at ``post_process`` set any field of
the info, ``filepath`` too, and the post-processors after them (ffmpeg's, in a process of its
own that the audit hook does not see) read that file and wrote beside it: a media file
outside the download folder was remuxed there (``victim.mkv``) and rewritten
(``victim.temp.mp4``). Each is refused before it runs, and the item fails saying so."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import Server

ATTACKS = [
    pytest.param("--parse-metadata 'post_process:title:(?P<filepath>.+)' --remux-video mkv",
                 id="parse-metadata-remux"),
    pytest.param("--parse-metadata 'post_process:title:(?P<filepath>.+)' --embed-metadata",
                 id="parse-metadata-embed"),
    pytest.param("--replace-in-metadata 'post_process:filepath' '^.*$' '{victim}' -x",
                 id="replace-in-metadata-extract-audio"),
    # the last post-processor: the item named the file outside as its own, and the service
    # wrote its NFO file beside it (victim.nfo)
    pytest.param("--parse-metadata 'after_move:title:(?P<filepath>.+)'", id="after-move"),
]


@pytest.mark.parametrize("cli", ATTACKS)
def test_a_post_processor_never_works_on_a_file_outside(
        make_server: Callable[..., Server], origin: MediaOrigin, tmp_path: Path,
        cli: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.mp4"
    shutil.copyfile(origin.path_for(origin.clip_url), victim)
    before = victim.read_bytes()
    server = make_server()
    [added] = server.post("/api/history", {
        "url": origin.watch_url("clip", title=str(victim)), "preset": "media-server-tv",
        "template": "%(id)s.%(ext)s", "cli": cli.format(victim=victim)}).json()
    item = server.wait_status(added["id"], {"finished", "error", "skip"}, timeout=90)
    assert item["status"] == "error", item
    assert item["error"] == (f"Refused: {str(victim)!r} is outside the download folder; the "
                             "job was stopped."), item["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["victim.mp4"]
    assert victim.read_bytes() == before
