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
from yt_dlp.postprocessor.metadataparser import MetadataParserPP

from appliance.engine.containment import ContainedYoutubeDL, Containment, OutsideDownloadFolder

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
    # (refused with the item's options since, before a post-processor is reached)
    assert "may not set filepath" in item["error"], item["error"]
    assert sorted(p.name for p in outside.iterdir()) == ["victim.mp4"]
    assert victim.read_bytes() == before


def test_a_post_processor_s_file_is_checked_before_and_after_it_runs(tmp_path: Path) -> None:
    """Behind the options' refusal: whatever names a post-processor's file (a metadata
    post-processor, yt-dlp's own later ones), one outside the download folder stops the job
    before the post-processor works on it, and after one renamed it."""
    home = tmp_path / "home"
    home.mkdir()
    victim = str(tmp_path / "outside" / "victim.mp4")
    ydl = ContainedYoutubeDL({"paths": {"home": str(home)}}, auto_init=False)
    ydl.containment = Containment(str(home), str(tmp_path / "temp"))
    parse = MetadataParserPP(ydl, [(MetadataParserPP.Actions.INTERPRET, "title",
                                    "(?P<filepath>.+)")])
    with pytest.raises(OutsideDownloadFolder, match="post-processor's file is outside"):
        ydl.run_pp(parse, {"id": "x", "title": victim, "filepath": str(home / "x.mp4")})
    with pytest.raises(OutsideDownloadFolder, match="post-processor's file is outside"):
        ydl.run_pp(parse, {"id": "x", "title": "t", "filepath": victim})
    kept = ydl.run_pp(parse, {"id": "x", "title": str(home / "y.mp4"),
                              "filepath": str(home / "x.mp4")})
    assert kept["filepath"] == str(home / "y.mp4")
