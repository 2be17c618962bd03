"""Small readers and writers of values people see: sizes and durations in messages, host
names in settings and targets, a file's stem, the free space a full disk is reported with,
yt-dlp's clock durations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import make_settings
from yt_dlp.utils import parse_duration as ytdlp_duration

from appliance.engine.failures import explain
from appliance.engine.ytdlp_numbers import parse_duration
from appliance.host_names import is_host_name
from appliance.kinds import own_sidecars, stem
from appliance.units import human_duration, human_size


@pytest.mark.parametrize(("size", "text"), [
    (1, "1 B"), (999, "999 B"), (1000, "1.0 KB"), (1_500_000, "1.5 MB"), (2.5e9, "2.5 GB"),
    (3e12, "3.0 TB"), (7e15, "7000.0 TB"),  # no unit past TB
    (0, None), (-5, None), ("5", None), (None, None),
    # site metadata: what float() or round() raised on (a message lost), or printed as "nan TB"
    (float("inf"), None), (float("nan"), None), pytest.param(10**400, None, id="400-digits"),
])
def test_sizes_as_people_read_them(size: object, text: str | None) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.6, "1 s"), (59.4, "59 s"), (60, "1 min"), (89, "1 min"), (91, "2 min"),
    (3599, "1 h"), (3600, "1 h"), (5400, "1 h 30 min"), (7200, "2 h"), (7260, "2 h 1 min"),
    (0, None), (-1, None), ("60", None),
    (float("inf"), None), (float("nan"), None), pytest.param(10**400, None, id="400-digits"),
    (-float("inf"), None),
])
def test_durations_as_people_read_them(seconds: object, text: str | None) -> None:
    assert human_duration(seconds) == text


def test_a_host_name_is_at_most_253_characters() -> None:
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(longest) == 253 and is_host_name(longest)
    assert not is_host_name(longest + "b")
    assert not is_host_name("a" * 64) and not is_host_name("a..b") and not is_host_name("-a")
    assert is_host_name("my_nas-2.lan")


def test_a_name_without_a_suffix_is_its_own_stem() -> None:
    assert (stem("README"), stem("clip.en.srt"), stem(".hidden")) == ("README", "clip.en", "")
    assert own_sidecars("clip", ["clip", "clip.nfo", ".hidden", "other.nfo"]) == ["clip.nfo"]


def test_a_full_disk_says_how_much_is_free(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.temp_path.mkdir(parents=True)
    explained = explain("unable to write data: [Errno 28] No space left on device", settings)
    assert re.match(r"The disk is full: \d+(\.\d)? [KMGT]?B free in ", explained), explained


@pytest.mark.parametrize("text", ["1:02:03:04:5", "3:04:05:250", "12:34:5", "1:00:00:00"])
def test_a_clock_duration_with_a_colon_before_its_fraction(text: str) -> None:
    assert parse_duration(text) == ytdlp_duration(text)
    assert parse_duration("1:02:03:04:5") == 93784.5
