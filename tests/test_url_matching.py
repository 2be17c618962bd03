"""Which extractor takes a URL: ``url_matching`` gives yt-dlp's own answer (the first
extractor, in its order, whose ``suitable`` says yes) for every URL, those that extractors
with a ``suitable`` of their own decide among them, and those whose site the URL does not
name; a pattern's literal is in every URL it matches; and a job's extraction is told that
extractor."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import variadic

from appliance import regex_forms
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
    # An attacker's URL that names other sites where it does not count (query, path, user):
    # their patterns are tried, and refuse it.
    "https://evil.example/?next=https://vimeo.com/76979871",
    "https://evil.example/vimeo.com/76979871/www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://vimeo.com@evil.example/76979871",
]


@functools.cache
def default_extractors() -> list[Any]:
    """What a YoutubeDL of yt-dlp's own asks, in its order (some extractors are disabled)."""
    with ytdlp_tuning.YoutubeDL({"quiet": True}) as ydl:
        return list(ydl._ies.values())


def yt_dlps_own(url: str) -> str | None:
    return next((e.ie_key() for e in default_extractors() if e.suitable(url)), None)


@pytest.fixture(scope="module")
def warm() -> None:
    ytdlp_tuning.warm_up()


@pytest.fixture(scope="module")
def site_urls() -> list[tuple[Any, str]]:
    """Every extractor of yt-dlp with the URLs its own tests use (~5,800)."""
    from yt_dlp.extractor import _extractors

    found = []
    for name, extractor in vars(_extractors).items():
        if name.endswith("IE") and isinstance(extractor, type):
            for test in extractor.__dict__.get("_TESTS") or []:
                if isinstance(test.get("url"), str):
                    found.append((extractor, test["url"]))
    assert len(found) > 3000
    return found


@pytest.mark.parametrize("url", URLS)
def test_the_extractor_is_yt_dlps_own_choice(warm: None, url: str) -> None:
    assert url_matching.extractor_key(url) == yt_dlps_own(url)


def test_yt_dlps_own_choice_for_the_urls_of_its_tests(
        warm: None, site_urls: list[tuple[Any, str]]) -> None:
    """A sample of the sites' own URLs, and each in capitals (a case-sensitive literal must
    not be taken for a case-insensitive pattern's)."""
    for _, url in site_urls[::7]:
        for variant in (url, url.upper()):
            assert url_matching.extractor_key(variant) == yt_dlps_own(variant), variant


def test_a_patterns_literals_one_is_in_every_url_it_matches(
        site_urls: list[tuple[Any, str]]) -> None:
    sifted = matched = 0
    for extractor, url in site_urls:
        if extractor._VALID_URL is False:
            continue
        for source in variadic(extractor._VALID_URL):
            literals = url_matching.required_literals(source)
            sifted += literals is not None
            if literals is not None and re.match(source, url):
                matched += 1
                assert any(literal in url for literal in literals), (
                    extractor.__name__, literals, url)
    assert sifted > 0.9 * len(site_urls) and matched > 4000


@pytest.mark.parametrize(("source", "literals"), [
    (r"https?://(?:www\.)?vimeo\.com/(?P<id>\d+)", ("vimeo.com/",)),
    # Verbose: the spaces are not part of it, the comment is not in it.
    ("(?x) https?:// (?:www\\.)? tele \\.example (?:\\.com)? /v/(?P<id>\\d+)  # .org/watch",
     ("tele.example",)),
    (r"https?://(?:video\.)?news\.example\.org/(?:embed/)?(?P<id>\d+)", ("news.example.org/",)),
    (r"https?://(?P<host>cdn)\.example\.net/(?:a|b)/x", ("://cdn.example.net/",)),
    (r"(?i)https?://(?:www\.)?example\.com/", None),  # any spelling of it
    (r"https?://examp(?i:le\.com)/path/", ("://examp",)),  # it stops where case is ignored
    (r"https?://ab?cdefgh", ("cdefgh",)),  # the optional b is not part of it
    (r"https?://(?:example\.com)?/watch/", ("/watch/",)),  # nor an optional group's
    # One of a branch's: each alternative's own.
    (r"https?://(?:example\.com|other\.org)/", ("example.com", "other.org")),
    (r"(?:site:|https?://(?:www\.)?site\.tv/v/)(?P<id>\d+)", ("site:", "site.tv/v/")),
    (r"https?://(?:example\.com|x)/", None),  # an alternative that tells nothing
    (r"https?://(?:a\.com|b\.com|c\.com|d\.com|e\.com)/v", None),  # too many to look for
    (r"https?://x/(?:abcdefg)+", ("abcdefg",)),  # repeated, at least once
    (r"https?://x/(?:abcdefg)*", ("://x/",)),  # perhaps not at all
    (r"https?://(?:[^/]+\.)?x/", None),
    (r"https?://www\.", None),
    (r"(unbalanced", None),
])
def test_the_literals_of_a_pattern(source: str, literals: tuple[str, ...] | None) -> None:
    assert url_matching.required_literals(source) == literals


class Base(InfoExtractor):
    _VALID_URL = r"https?://base\.example/(?P<id>\d+)"


class Other(InfoExtractor):
    _VALID_URL = r"https?://other\.example/"


class Excluding(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return False if Other.suitable(url) else super().suitable(url)


class Joined(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return not Other.suitable(url) and cls._match_valid_url(url) is not None


class FromExcluding(Excluding):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return super().suitable(url) and "x" not in url


class Either(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return Other.suitable(url) or super().suitable(url)


class Negated(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return not Other.suitable(url)


class Rebound(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        url = url.replace("other", "base")
        return super().suitable(url)


class OthersPattern(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return Other._match_valid_url(url) is not None


class Skipping(Excluding):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return super(Excluding, cls).suitable(url)


class Delegating(Base):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return Other.suitable(url)


class SkippingToEither(Either):
    @classmethod
    def suitable(cls, url: str) -> bool:
        return False if "x" in url else super().suitable(url)


@pytest.mark.parametrize(("extractor", "requires"), [
    (Base, True), (Excluding, True), (Joined, True), (FromExcluding, True),
    (Skipping, True),  # super(Excluding, cls): Base's, which requires it
    (Either, False), (Negated, False), (Rebound, False), (OthersPattern, False),
    (Delegating, False),  # another's suitable(), not super()'s
    (SkippingToEither, False),  # its own does, but Either's does not
])
def test_a_suitable_read_from_its_source(extractor: type, requires: bool) -> None:
    """Only a suitable() that says yes only when its own pattern matches is read as one."""
    assert url_matching.requires_own_pattern(extractor) is requires


def test_a_url_holding_every_sites_literal_gets_yt_dlps_answer(warm: None) -> None:
    """The slowest case for the sifting (every pattern with a literal is tried) still gives
    yt-dlp's own answer."""
    literals = sorted({literal for _, literal, _, _ in url_matching._TABLE if literal})
    url = "https://evil.example/?" + "&".join(f"a={literal}" for literal in literals)
    assert url_matching.extractor_key(url) == yt_dlps_own(url)


def test_what_cannot_be_read_is_tried_for_every_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A pattern or a suitable() that the reading fails on (a newer yt-dlp's, a newer
    Python's parse) is tried for every URL: the answers stay yt-dlp's own."""
    def fails(*args: Any) -> Any:
        raise IndexError("a shape this reading does not know")

    monkeypatch.setattr(url_matching, "_requirement", fails)
    monkeypatch.setattr(url_matching._SuitableReading, "requires", fails)
    assert url_matching.required_literals(r"https?://(?:www\.)?vimeo\.com/(\d+)") is None
    assert not url_matching.requires_own_pattern(Excluding)
    try:
        url_matching.prepare(default_extractors())
        assert all(literal is None for _, literal, _, _ in url_matching._TABLE)
        for url in URLS:
            assert url_matching.extractor_key(url) == yt_dlps_own(url), url
    finally:
        monkeypatch.undo()
        url_matching.prepare(default_extractors())


def test_extractors_with_their_own_suitable_are_asked_where_the_url_names_their_site(
        warm: None) -> None:
    asked = {key for key, _, _, ask in url_matching._TABLE if ask is not None}
    by_patterns = {key for key, _, _, ask in url_matching._TABLE if ask is None}
    gated = {key for key, literal, _, ask in url_matching._TABLE
             if ask is not None and literal is not None}
    assert asked and len(by_patterns) > 1000 and len(gated) > 0.75 * len(asked)
    # Some answers above come from an extractor that decides by more than its patterns.
    assert {url_matching.extractor_key(url) for url in URLS} & asked
    # A URL no site's literal names is tried against a few dozen patterns, and asked of a
    # few extractors, not ~1,800 and ~80.
    tried = [row for row in url_matching._TABLE if row[1] is None]
    assert len(tried) < 60


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


def readings_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The patterns read (parsed) from now on."""
    parsed: list[str] = []
    parse = url_matching.sre_parse.parse
    monkeypatch.setattr(url_matching.sre_parse, "parse",
                        lambda source, *a: parsed.append(source) or parse(source, *a))
    return parsed


def table() -> list[tuple[Any, ...]]:
    return [(key, literal, pattern and (pattern.source, pattern.literals), ask)
            for key, literal, pattern, ask in url_matching._TABLE]


def test_what_was_read_is_kept_and_read_back(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """A zygote's warm-up reads ~1,900 patterns (0.6 s of CPU); the next reads the file."""
    kept = tmp_path / "url-matching.json"
    extractors = default_extractors()
    parsed = readings_made(monkeypatch)
    url_matching.prepare(extractors, remembered=kept)
    first = table()
    assert len(parsed) > 1000
    assert kept.stat().st_mode & 0o777 == 0o600
    written = kept.stat().st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == [kept.name]  # no temporary file left
    parsed = readings_made(monkeypatch)
    url_matching.prepare(extractors, remembered=kept)
    assert parsed == []
    assert table() == first
    assert kept.stat().st_mtime_ns == written  # nothing new: not written again
    for url in URLS:
        assert url_matching.extractor_key(url) == yt_dlps_own(url)


@pytest.mark.parametrize("content", [
    b"", b"\xff\xfe", b"[]", b'{"fingerprint": "another yt-dlp", "literals": {}, "own": {}}',
    b'{"literals": {}, "own": {}}',
    # the right fingerprint with wrong values: read again, not trusted
    b'{"fingerprint": "FP", "literals": {"x": 5}, "own": {}}',
    b'{"fingerprint": "FP", "literals": {"x": [""]}, "own": {}}',
    b'{"fingerprint": "FP", "literals": {}, "own": {"x": "yes"}}',
    b'{"fingerprint": "FP", "literals": [], "own": {}}',
    b'{"fingerprint": "FP", "literals": {}, "own": {}, "compiled": []}',
    b'{"fingerprint": "FP", "literals": {}, "own": {}, "compiled": {"x": "form"}}',
])
def test_a_file_of_another_yt_dlp_or_damaged_is_read_again_and_replaced(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: bytes) -> None:
    kept = tmp_path / "url-matching.json"
    kept.write_bytes(content.replace(b"FP", url_matching.fingerprint().encode()))
    parsed = readings_made(monkeypatch)
    url_matching.prepare(default_extractors(), remembered=kept)
    assert len(parsed) > 1000
    assert json.loads(kept.read_bytes())["fingerprint"] == url_matching.fingerprint()
    for url in URLS:
        assert url_matching.extractor_key(url) == yt_dlps_own(url)


def test_a_folder_that_refuses_the_file_costs_only_the_reading(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    readings_made(monkeypatch)
    url_matching.prepare(default_extractors(), remembered=tmp_path / "gone" / "u.json")
    assert not (tmp_path / "gone").exists()
    assert url_matching.extractor_key(URLS[0]) == yt_dlps_own(URLS[0])


PEERTUBE = "https://framatube.org/videos/watch/9c9de5e8-0a1e-484a-b099-e80766180a6d"


def forget_compiled() -> None:
    """As in a new process: no pattern compiled yet (re's cache, the extractors' own)."""
    re.purge()
    for extractor in default_extractors():
        kind = extractor if isinstance(extractor, type) else type(extractor)
        if "_VALID_URL_RE" in vars(kind):
            delattr(kind, "_VALID_URL_RE")


def kept_forms(kept: Path) -> dict[str, Any]:
    return json.loads(kept.read_bytes())["compiled"]


def test_a_second_warm_up_compiles_no_pattern_every_url_is_tried_against(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A zygote compiles the patterns every URL is tried against (0.2 s of CPU: PeerTube's
    is 65 KB, YouTube's 12 KB); the next one builds them from what the first kept. What is
    compiled still is a few small patterns that the ``suitable``s of others name (BBC's)."""
    kept = tmp_path / "url-matching.json"
    url_matching.prepare(default_extractors(), remembered=kept)
    forget_compiled()
    parsed = readings_made(monkeypatch)
    url_matching.prepare(default_extractors(), remembered=kept)
    assert url_matching.extractor_key("https://example.invalid/warm-up") == "Generic"
    largest = {extractor._VALID_URL for extractor in default_extractors()
               if extractor.ie_key() in ("PeerTube", "Youtube")}
    assert len(largest) == 2
    assert not largest & set(parsed)
    assert not set(kept_forms(kept)) & set(parsed)
    for url in [*URLS, PEERTUBE]:
        assert url_matching.extractor_key(url) == yt_dlps_own(url)


def test_a_kept_form_builds_the_pattern_re_compile_builds(tmp_path: Path) -> None:
    kept = tmp_path / "url-matching.json"
    url_matching.prepare(default_extractors(), remembered=kept)
    forms = kept_forms(kept)
    assert len(forms) > 20
    for source, form in forms.items():
        assert regex_forms.built(source, form) == re.compile(source)


@pytest.mark.parametrize("damage", [
    lambda form: [form[0], "AAAAAAAAAAA=", *form[2:]],  # code _sre refuses to run
    lambda form: [form[0], "not base64!", *form[2:]],
    lambda form: [form[0], form[1][:-2], *form[2:]],  # words cut short
    lambda form: ["flags", *form[1:]],
    lambda form: form[:3],
    lambda form: None,
])
def test_a_damaged_form_is_compiled_again_and_replaced(tmp_path: Path, damage: Any) -> None:
    kept = tmp_path / "url-matching.json"
    url_matching.prepare(default_extractors(), remembered=kept)
    content = json.loads(kept.read_bytes())
    source = next(source for source in content["compiled"] if "framatube" in source)
    whole = content["compiled"][source]
    content["compiled"][source] = damage(whole)
    kept.write_text(json.dumps(content))
    forget_compiled()
    url_matching.prepare(default_extractors(), remembered=kept)
    assert kept_forms(kept)[source] == whole
    for url in [*URLS, PEERTUBE]:
        assert url_matching.extractor_key(url) == yt_dlps_own(url)
