"""Red team: files the service itself writes over in the download folder (a channel's
metadata), against the real module on real files. Whoever can write in the download folder
swaps a folder for a link to another between the service's check and its write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance import errors
from appliance.engine.nfo import write_nfo
from appliance.tasks.metadata import write_metadata


def test_a_channel_folder_swapped_while_its_pictures_come_is_not_written_through(
        tmp_path: Path) -> None:
    """The pictures come from the site, as slowly as it likes; the folder checked before
    them was swapped for a link meanwhile, and every file was written where the link led,
    over the owner's files there (their tvshow.nfo, a poster.jpg)."""
    root = tmp_path / "downloads"
    (root / "chan").mkdir(parents=True)
    outside = tmp_path / "library"
    outside.mkdir()
    (outside / "tvshow.nfo").write_text("the owner's show")

    def slow_site(url: str) -> bytes:
        if not (root / "chan").is_symlink():
            (root / "chan").rename(root / "aside")
            (root / "chan").symlink_to(outside, target_is_directory=True)
        return b"\xff\xd8 a picture"

    info = {"id": "UC1", "title": "Chan",
            "thumbnails": [{"id": "avatar_uncropped", "url": "https://example.invalid/a.jpg"}]}
    with pytest.raises(errors.AppError) as refused:
        write_metadata(root, root / "chan", info, slow_site)
    assert refused.value.code == errors.CONFLICT
    assert os.listdir(outside) == ["tvshow.nfo"]
    assert (outside / "tvshow.nfo").read_text() == "the owner's show"
    assert os.listdir(root / "aside") == []
    (root / "chan").unlink()  # put back: written there
    (root / "aside").rename(root / "chan")
    answer = write_metadata(root, root / "chan", info, lambda url: b"\xff\xd8 a picture")
    assert answer["nfo_file"] == "chan/tvshow.nfo"
    assert {"Chan [UC1].info.json", "tvshow.nfo", "poster.jpg"} <= set(os.listdir(root / "chan"))
    assert not [n for n in os.listdir(root / "chan") if n.endswith(".tmp")]


def test_an_nfo_is_not_written_through_a_folder_swapped_once_the_video_is_there(
        tmp_path: Path) -> None:
    """The NFO is written by the service (no download's guard of its writes), once the
    video is in its folder: that folder swapped for a link to another meanwhile (an inotify
    watch on the folder sees the video land) had the NFO written over the file of its name
    where the link led."""
    root = tmp_path / "downloads"
    (root / "chan").mkdir(parents=True)
    (root / "chan" / "clip.mp4").write_bytes(b"the download")
    outside = tmp_path / "library"
    outside.mkdir()
    (outside / "clip.nfo").write_text("the owner's")
    (root / "chan").rename(root / "aside")
    (root / "chan").symlink_to(outside, target_is_directory=True)
    info = {"title": "clip", "upload_date": "20240102"}
    with pytest.raises(ValueError, match="was replaced"):
        write_nfo(root / "chan" / "clip.mp4", "tv", info, root=root, overwrite=True)
    assert os.listdir(outside) == ["clip.nfo"]
    assert (outside / "clip.nfo").read_text() == "the owner's"
    # a link to a folder inside is followed, to the folder it leads to
    (root / "chan").unlink()
    (root / "chan").symlink_to("aside", target_is_directory=True)
    assert write_nfo(root / "chan" / "clip.mp4", "tv", info, root=root, overwrite=True)
    assert sorted(os.listdir(root / "aside")) == ["clip.mp4", "clip.nfo"]
