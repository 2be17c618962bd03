"""A name cut to the file system's byte limit, written as a real file: the cut name, what
yt-dlp adds to it while it works, and its sidecars, which keep the media file's stem."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.engine.containment import STEM_MAX, fit_name
from appliance.path_limits import NAME_MAX, byte_length

# What yt-dlp adds to a name while it works: a partial file, a format's, a fragment's.
WORKING = ("", ".part", ".f251-drc.part", "-Frag1234.part", ".ytdl")


@pytest.mark.parametrize("stem", ["a" * 300, "音" * 100, "😀" * 80],
                         ids=["1-byte", "3-byte", "4-byte"])
@pytest.mark.parametrize("ext", ["😀" * 16, "é" * 16, "e" * 16, "😀" * 4, "😀" * 4 + "e"],
                         ids=["16 emoji", "16 two-byte", "16 letters", "4 emoji", "17 bytes"])
def test_a_cut_name_and_what_yt_dlp_adds_to_it_are_files(tmp_path: Path, stem: str,
                                                         ext: str) -> None:
    """Sixteen emoji for an extension (64 bytes) after a stem cut to its limit made a name
    one byte over the file system's: the download failed on it (ENAMETOOLONG)."""
    media = fit_name(f"{stem}.{ext}", STEM_MAX, ext)
    sidecar = fit_name(f"{stem}.info.json", STEM_MAX, "info.json")
    for name in (*(media + added for added in WORKING), sidecar):
        (tmp_path / name).write_bytes(b"x")
        assert byte_length(name) <= NAME_MAX
    kept = sidecar.removesuffix(".info.json")
    assert media.startswith(kept) and stem.startswith(kept) and kept
    # its extension kept whole, or cut with the name as a part of it
    assert media == f"{kept}.{ext}" or f"{stem}.{ext}".startswith(media)
