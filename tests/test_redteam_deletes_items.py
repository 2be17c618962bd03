"""Red team: an item's files removed with it (``engine.file_removal``), against the real
module on real files. Whoever can write in the download folder (a Samba share, another
program, the owner over SSH) changes it between the service's check and its removal, or puts
names beside the download that look like its own."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from appliance.engine.file_removal import Listings, remove_files_of
from appliance.store import Item
from appliance.store.records import DONE, FINISHED, new_id


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder.resolve()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def downloaded(root: Path, name: str, body: bytes = b"the download") -> Item:
    """A finished item whose file ``name`` (below ``root``) it wrote: its size and time."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    found = path.stat()
    return Item(id=new_id(), url=f"http://example.invalid/{name}", kind=DONE, status=FINISHED,
                filename=name, file_size=found.st_size, file_mtime_ns=found.st_mtime_ns,
                download_folder=str(root))


class SwappedWhileListed(Listings):
    """The folder's listing, during which someone moves ``folder`` aside and puts a link to
    ``to`` under its name: after the file was checked, before it is removed."""

    def __init__(self, folder: Path, to: Path) -> None:
        super().__init__()
        self.folder, self.to = folder, to

    def starting_with(self, folder: Path, prefix: str, opened: int) -> list[str]:
        if not self.folder.is_symlink():
            self.folder.rename(self.folder.with_name("aside"))
            self.folder.symlink_to(self.to, target_is_directory=True)
        return super().starting_with(folder, prefix, opened)


def test_a_folder_swapped_for_a_link_after_the_check_is_not_removed_through(
        root: Path, outside: Path) -> None:
    """Removed by its path, the download's folder swapped for a link to another folder after
    the check had the same names removed there (outside, any file, its size never judged)
    and the download left; the file and its sidecars are removed in the folder checked."""
    item = downloaded(root, "channel/show.mp4")
    (root / "channel" / "show.en.srt").write_bytes(b"its subtitles")
    for name in ("show.mp4", "show.en.srt", "show.nfo"):
        (outside / name).write_bytes(b"not the service's")
    remove_files_of(item, {str(root)}, SwappedWhileListed(root / "channel", outside))
    assert sorted(os.listdir(outside)) == ["show.en.srt", "show.mp4", "show.nfo"]
    assert {(outside / n).read_bytes() for n in os.listdir(outside)} == {b"not the service's"}
    assert os.listdir(root / "aside") == []


def test_a_hardlink_kept_outside_survives_and_prefixes_of_the_name_are_judged_apart(
        root: Path, outside: Path) -> None:
    """The owner's hard link of the download in a library outside keeps its bytes; of the
    names that begin like the file's, only its own sidecars go: not another video's
    (``a.mp4 (1).mkv``'s NFO, ``a.english.ogv``'s subtitles: a video of a kind the service
    did not know), not a link, not the folder's poster; none while a media file of its own
    name stays (``b.mka``: they are its too)."""
    item = downloaded(root, "a.mp4")
    os.link(root / "a.mp4", outside / "a.mp4")
    (outside / "secret.srt").write_bytes(b"outside")
    own = ["a.en.srt", "a.mp4.nfo", "a.info.json"]
    others = ["a.mp4 (1).mkv", "a.mp4 (1).nfo", "a.english.ogv", "a.english.en.srt",
              "a.english.nfo", "poster.jpg", "ab.nfo"]
    for name in own + others:
        (root / name).write_bytes(b"x")
    (root / "a.fr.srt").symlink_to(outside / "secret.srt")
    remove_files_of(item, {str(root)})
    assert (outside / "a.mp4").read_bytes() == b"the download"
    assert (outside / "secret.srt").read_bytes() == b"outside"
    assert sorted(os.listdir(root)) == sorted([*others, "a.fr.srt"])
    item = downloaded(root, "b.mp4")
    for name in ("b.mka", "b.en.srt"):
        (root / name).write_bytes(b"x")
    remove_files_of(item, {str(root)})
    assert (root / "b.en.srt").is_file() and not (root / "b.mp4").exists()


def test_a_name_in_another_unicode_form_is_another_file(root: Path) -> None:
    """A name composed (NFC, as yt-dlp writes "café") and decomposed (NFD, as a Mac copies it
    onto a share): two names on Linux, two files; only the item's and its sidecars go."""
    composed, decomposed = unicodedata.normalize("NFC", "café"), unicodedata.normalize(
        "NFD", "café")
    item = downloaded(root, f"{composed}.mp4")
    for name in (f"{composed}.en.srt", f"{decomposed}.mp4", f"{decomposed}.en.srt"):
        (root / name).write_bytes(b"x")
    remove_files_of(item, {str(root)})
    assert sorted(os.listdir(root)) == [f"{decomposed}.en.srt", f"{decomposed}.mp4"]
