"""NFO files as media servers read them, whole: each field from the site's metadata, its
fallbacks (a release date, a channel, the extractor), and text XML must escape."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from appliance.engine.nfo import write_nfo

HEAD = "<?xml version='1.0' encoding='utf-8'?>\n"


def test_an_episode_from_the_fallback_fields(tmp_path: Path) -> None:
    media = tmp_path / "Clip.MP4"
    info = {"title": "A ]]> <b> & c", "release_date": "20240309", "channel": "Chan",
            "duration": 5400.4, "id": "x1", "tags": ["t1", 2], "description": ""}
    written = write_nfo(media, "tv", info)
    assert written == tmp_path / "Clip.nfo"
    assert written.read_text() == HEAD + (
        "<episodedetails>\n"
        "  <title>A ]]&gt; &lt;b&gt; &amp; c</title>\n"
        "  <showtitle>Chan</showtitle>\n"
        "  <season>2024</season>\n"
        "  <episode>309</episode>\n"
        "  <aired>2024-03-09</aired>\n"
        "  <runtime>90</runtime>\n"
        '  <uniqueid type="ytdlp" default="true">x1</uniqueid>\n'
        "  <tag>t1</tag>\n"
        "  <tag>2</tag>\n"
        "</episodedetails>")
    assert ET.parse(written).getroot().findtext("title") == "A ]]> <b> & c"


def test_a_movie_from_the_first_fields(tmp_path: Path) -> None:
    info = {"title": "T", "upload_date": 20231231, "release_date": "20000101",
            "uploader": "U", "channel": "C", "duration": 0.2, "id": "x1",
            "extractor": "YouTube", "description": 'said "hi"'}
    written = write_nfo(tmp_path / "clip", "movie", info)
    assert written == tmp_path / "clip.nfo"
    assert written.read_text() == HEAD + (
        "<movie>\n"
        "  <title>T</title>\n"
        '  <plot>said "hi"</plot>\n'
        "  <year>2023</year>\n"
        "  <premiered>2023-12-31</premiered>\n"
        "  <studio>U</studio>\n"
        "  <runtime>1</runtime>\n"  # a minute at least
        '  <uniqueid type="youtube" default="true">x1</uniqueid>\n'
        "</movie>")


@pytest.mark.parametrize("duration", [
    float("inf"), float("nan"), pytest.param(10**400, id="400-digits"), -5, "abc", [60], "",
    None])
def test_a_duration_that_is_no_length_leaves_the_runtime_out(
        tmp_path: Path, duration: Any) -> None:
    """Site metadata (or a preset's --parse-metadata) can make it anything; an exception
    other than the ones the download's end expects (an OverflowError, a TypeError) left the
    item "downloading" for good, its slot taken."""
    info = {"title": "T", "upload_date": "20240102", "id": "x", "duration": duration}
    root = ET.parse(write_nfo(tmp_path / "clip.mp4", "movie", info)).getroot()
    assert root.find("runtime") is None
    assert root.findtext("title") == "T"


def test_a_duration_given_as_text_is_read(tmp_path: Path) -> None:
    info = {"title": "T", "upload_date": "20240102", "id": "x", "duration": " 125 "}
    root = ET.parse(write_nfo(tmp_path / "clip.mp4", "movie", info)).getroot()
    assert root.findtext("runtime") == "2"  # (--parse-metadata writes text)


def test_what_the_site_does_not_say_is_left_out(tmp_path: Path) -> None:
    info = {"upload_date": "20240102", "channel": "C", "title": None, "tags": None}
    written = write_nfo(tmp_path / "clip.mp4", "movie", info)
    assert written.read_text() == HEAD + (
        "<movie>\n"
        "  <year>2024</year>\n"
        "  <premiered>2024-01-02</premiered>\n"
        "  <studio>C</studio>\n"
        "</movie>")
