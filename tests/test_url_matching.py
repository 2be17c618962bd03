"""Which extractor takes a URL: ``url_matching`` gives yt-dlp's own answer (the first
extractor, in its order, whose ``suitable`` says yes) for every URL, those that extractors
with a ``suitable`` of their own decide among them; and a job's extraction is told that
extractor."""

from __future__ import annotations

from typing import Any

import pytest
from yt_dlp.extractor import gen_extractor_classes

from appliance.engine import url_matching, ytdlp_tuning
from appliance.engine.containment import Containment

URLS = [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtu.be/dQw4w9WgXcQ",
    "https://www.youtube.com/shorts/dQw4w9WgXcQ",
    "https://www.youtube.com/playlist?list=PLFgquLnL59alCl_2TQvOiD5Vgm1hCaGSI",
    "https://www.youtube.com/@LinusTechTips/videos",
    "https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw",
    "https://music.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://vimeo.com/76979871",
    "https://www.twitch.tv/videos/123456789",
    "https://soundcloud.com/artist/track-name",
    "https://bandcamp.com/EmbeddedPlayer/album=1/track=2",
    "https://www.reddit.com/r/videos/comments/abc123/title/",
    "https://www.dailymotion.com/video/x7tgad0",
    "https://x.com/user/status/1234567890",
    "https://www.tiktok.com/@user/video/7000000000000000000",
    "https://archive.org/details/some_item",
    "http://127.0.0.1:8080/media/clip.mp4?feed=3&entry=new",
    "https://example.com/podcast/episode-12.mp3",
    "https://example.com/feeds/videos.xml?channel_id=UC_x5XG1OV2P6uZZ5FSM9Ttw",
    "ytsearch5:cats",
    "file:///etc/passwd",
    "not a url",
    "",
    "https://www.youtube.com/watch?v=" + "a" * 5000,
]


def yt_dlps_own(url: str) -> str | None:
    return next((e.ie_key() for e in gen_extractor_classes() if e.suitable(url)), None)


@pytest.fixture(scope="module")
def warm() -> None:
    ytdlp_tuning.warm_up()


@pytest.mark.parametrize("url", URLS)
def test_the_extractor_is_yt_dlps_own_choice(warm: None, url: str) -> None:
    assert url_matching.extractor_key(url) == yt_dlps_own(url)


def test_extractors_with_their_own_suitable_are_asked(warm: None) -> None:
    asked = {key for key, ask, _ in url_matching._TABLE if ask is not None}
    by_patterns = {key for key, ask, _ in url_matching._TABLE if ask is None}
    assert asked and len(by_patterns) > 1000
    # Some answers above come from an extractor that decides by more than its patterns.
    assert {url_matching.extractor_key(url) for url in URLS} & asked


def test_an_extraction_is_told_the_extractor(warm: None) -> None:
    told: list[Any] = []

    class Recording(ytdlp_tuning.YoutubeDL):
        def extract_info(self, url: str, download: bool = True, ie_key: Any = None,
                         **kwargs: Any) -> Any:
            told.append(ie_key)
            return {}

    containment = Containment("/tmp", "/tmp")
    with ytdlp_tuning.new_ydl({"quiet": True}, containment) as ydl:
        ydl.__class__ = Recording
        ytdlp_tuning.extract_info(ydl, "https://vimeo.com/76979871", download=False)
    # A YoutubeDL whose extractors a job restricted searches them itself.
    with ytdlp_tuning.new_ydl({"quiet": True, "allowed_extractors": ["vimeo"]},
                              containment) as ydl:
        ydl.__class__ = Recording
        ytdlp_tuning.extract_info(ydl, "https://vimeo.com/76979871", download=False)
    assert told == ["Vimeo", None]
