"""Red team, a download is never lost: two videos whose files take one name.

The default output template has no id (``%(title)s.%(ext)s``): two videos of one title (a
playlist's two 'Trailer' entries, two channels' 'Episode 1') render one file name. The second
to finish ended 'finished' naming the first's file: found there at its start it was "already
downloaded", its own video never fetched; run at once, its file replaced the first's, whose
item then named a video not its own. Either way one video was gone and nothing said so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime

ENDED = {"finished", "error", "skip", "cancelled"}


def ended(rt: Runtime, item_id: str):
    wait_for(lambda: rt.engine.get(item_id).status in ENDED, timeout=90,
             message=f"item {item_id} to end")
    return rt.engine.get(item_id)


def media_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_a_video_whose_name_another_videos_file_has_ends_in_error_saying_why(
        start_runtime, origin: MediaOrigin) -> None:
    rt = start_runtime()
    first = rt.engine.add([{"url": origin.watch_url("clip", title="Trailer")}])[0]
    first = ended(rt, first.id)
    assert (first.status, first.filename) == ("finished", "Trailer.mp4")
    file = rt.settings.download_path / "Trailer.mp4"
    clip = origin.path_for(origin.clip_url).read_bytes()
    assert file.read_bytes() == clip

    other = rt.engine.add([{"url": origin.watch_url("clip2", title="Trailer")}])[0]
    other = ended(rt, other.id)
    # the old code: 'finished', naming the first video's file, the second never fetched
    assert other.status == "error", (other.status, other.filename, other.msg)
    assert other.error.startswith("Not saved: its file's name 'Trailer.mp4' is already another "
                                  "video's file ('Trailer', "), other.error
    assert "Put %(id)s in the template" in other.error
    assert other.filename == ""  # the other video's file is never this item's to delete
    assert file.read_bytes() == clip
    assert media_files(rt.settings.download_path) == [file]
    assert not (rt.settings.temp_path / other.id).exists()
    # Its failed item names no file: tried again, the video is no owner of the name either.
    retry = rt.engine.add([{"url": origin.watch_url("clip2", title="Trailer")}])[0]
    assert ended(rt, retry.id).status == "error"

    # The same video again finds its own file there: one file, both items name it.
    again = rt.engine.add([{"url": origin.watch_url("clip", title="Trailer")}])[0]
    again = ended(rt, again.id)
    assert (again.status, again.filename, again.error) == ("finished", "Trailer.mp4", "")
    assert media_files(rt.settings.download_path) == [file]


def test_two_direct_links_of_one_file_name_are_two_videos(
        start_runtime, origin: MediaOrigin) -> None:
    """The generic extractor's id of a direct link is its file's name: two sites' clip.mp4
    are 'generic clip' both, so the id alone took them for one video."""
    rt = start_runtime()
    first = ended(rt, rt.engine.add([{"url": origin.clip_url}])[0].id)
    assert (first.status, first.filename, first.video_id) == ("finished", "clip.mp4", "clip")
    other = ended(rt, rt.engine.add([{"url": origin.other_clip_url}])[0].id)
    # the old code: 'finished', naming the first site's clip
    assert (other.status, other.video_id) == ("error", "clip"), other.filename
    assert "'clip.mp4' is already another video's file" in other.error
    # its id is the other's: %(id)s would name both alike again
    assert other.error.endswith("gives both one name. Give this item a template of its own, "
                                "then retry."), other.error
    file = rt.settings.download_path / "clip.mp4"
    assert file.read_bytes() == origin.path_for(origin.clip_url).read_bytes()
    assert media_files(rt.settings.download_path) == [file]


def test_two_direct_links_of_one_file_name_each_downloaded_are_two_archive_lines(
        start_runtime, origin: MediaOrigin) -> None:
    """With the archive on (the service's default), each with a name of its own: the second
    was skipped, "Already downloaded: 'generic clip' is in the archive", and never fetched
    (every episode of a podcast whose files are all media.mp3, after the first)."""
    rt = start_runtime(YTP_KEEP_ARCHIVE="true")
    first = ended(rt, rt.engine.add([{"url": origin.clip_url,
                                      "template": "first.%(ext)s"}])[0].id)
    other = ended(rt, rt.engine.add([{"url": origin.other_clip_url,
                                      "template": "second.%(ext)s"}])[0].id)
    assert (first.status, other.status) == ("finished", "finished"), other.msg
    folder = rt.settings.download_path
    assert (folder / "second.mp4").read_bytes() == \
        origin.path_for(origin.other_clip_url).read_bytes()
    again = ended(rt, rt.engine.add([{"url": origin.other_clip_url + "?signed=2",
                                      "template": "third.%(ext)s"}])[0].id)
    assert again.status == "skip" and "Already downloaded" in again.msg, again.msg


def test_a_file_of_the_same_name_landed_while_a_download_ran_is_not_replaced(
        start_runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = start_runtime()
    monkeypatch.setattr(origin, "slow_rate", 20_000)  # until the first has landed
    slow = rt.engine.add([{"url": origin.slow_url, "template": "Trailer.%(ext)s"}])[0]
    wait_for(lambda: (rt.engine.get(slow.id).downloaded_bytes or 0) > 0, timeout=60,
             message="the slow download to be under way")
    fast = rt.engine.add([{"url": origin.clip_url, "template": "Trailer.%(ext)s"}])[0]
    fast = ended(rt, fast.id)
    assert (fast.status, fast.filename) == ("finished", "Trailer.mp4")
    assert rt.engine.get(slow.id).status == "downloading"  # it was there before the other
    origin.slow_rate = 200_000_000
    slow = ended(rt, slow.id)

    file = rt.settings.download_path / "Trailer.mp4"
    # the old code: the slow video replaced the clip, both items 'finished' naming it
    assert file.read_bytes() == origin.path_for(origin.clip_url).read_bytes()
    assert slow.status == "error", (slow.status, slow.filename, slow.msg)
    assert "'Trailer.mp4' is already another video's file" in slow.error
    assert media_files(rt.settings.download_path) == [file]


def test_the_same_video_queued_twice_at_once_ends_in_one_file_both_name(
        start_runtime, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """yt-dlp's move replaced the file the other had moved there: removed, then copied over.
    The other's look at its file fell in between (in 2 runs of 3 on the old code) and its
    item ended 'skip', "Not downloaded: yt-dlp wrote no file and gave no error"."""
    rt = start_runtime()
    monkeypatch.setattr(origin, "slow_rate", 20_000)  # until both are under way
    both = rt.engine.add([{"url": origin.slow_url}, {"url": origin.slow_url}])
    wait_for(lambda: all((rt.engine.get(i.id).downloaded_bytes or 0) > 0 for i in both),
             timeout=60, message="both to be under way")
    origin.slow_rate = 200_000_000
    both = [ended(rt, i.id) for i in both]
    assert [i.status for i in both] == ["finished", "finished"], [(i.msg, i.filename) for i in both]
    assert [i.filename for i in both] == ["slow.mp4", "slow.mp4"]
    file = rt.settings.download_path / "slow.mp4"
    assert media_files(rt.settings.download_path) == [file]
    assert file.read_bytes() == origin.path_for(origin.slow_url).read_bytes()
    assert [i.file_size for i in both] == [file.stat().st_size] * 2
