"""Subtitle files as people have them, in process on the real ffmpeg: not UTF-8 (an old
SubRip file written on Windows), holding markup, and served as a site's text is (nothing a
browser would run or guess another type for, asked again once the file changed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient

from appliance.api import player as player_api
from appliance.api.app import create_app
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

WINDOWS = "Café crème, \u201cquoted\u201d \u2013 déjà vu"  # every letter in Windows-1252
SRT = "1\n00:00:01,000 --> 00:00:02,000\n{}\n"
ASS = ("[Script Info]\nScriptType: v4.00+\n\n[Events]\nFormat: Layer, Start, End, Style, "
       "Name, MarginL, MarginR, MarginV, Effect, Text\n"
       "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{}\n")
VTT = "WEBVTT\n\n00:01.000 --> 00:02.000\n{}\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "player-subtitles"):
        yield runtime, TestClient(create_app(runtime))


@pytest.mark.parametrize(("name", "form"), [("old.srt", SRT), ("old.ass", ASS), ("old.vtt", VTT)])
@pytest.mark.parametrize("charset", ["utf-8", "cp1252"])
def test_a_subtitle_not_in_utf8_is_read_as_windows_wrote_it(
        app: tuple[Runtime, TestClient], name: str, form: str, charset: str) -> None:
    """Before, an srt or ass file in Windows-1252 was a 400 (ffmpeg's "Invalid UTF-8"), and a
    vtt file was sent as it is, said to be UTF-8: its accents came out as replacement marks."""
    runtime, client = app
    (runtime.settings.download_path / name).write_bytes(form.format(WINDOWS).encode(charset))
    answer = client.simulate_get(f"/api/player/subtitle/{name}.vtt")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/vtt; charset=UTF-8"
    text = answer.content.decode()  # UTF-8, whatever the file was
    assert text.startswith("WEBVTT") and WINDOWS in text, text
    assert "00:01.000 --> 00:02.000" in text
    if name == "old.vtt":
        assert answer.content == form.format(WINDOWS).encode()  # no ffmpeg
    assert runtime.player.slots.taken == 0


@pytest.mark.parametrize("name", ["junk.srt", "junk.ass", "junk.vtt"])
def test_bytes_in_no_charset_at_all_are_replacement_marks(
        app: tuple[Runtime, TestClient], name: str) -> None:
    """Bytes Windows-1252 has no letter for either (0x81, 0x90) are replacement marks, the
    rest of the line as it was (an srt so written was a 400 of the whole file)."""
    runtime, client = app
    form = {"srt": SRT, "ass": ASS, "vtt": VTT}[name[-3:]]
    (runtime.settings.download_path / name).write_bytes(
        form.format("A\x81\x90B \xe9t\xe9").encode("latin-1"))
    answer = client.simulate_get(f"/api/player/subtitle/{name}.vtt")
    assert answer.status_code == 200, answer.text
    assert "A\ufffd\ufffdB été" in answer.content.decode()
    assert runtime.player.slots.taken == 0


UTF16_NAMES = [("utf-16", "bom"), ("utf-16-le", "no mark"), ("utf-16-be", "no mark"),
               ("utf-16-be", "bom"), ("utf-8-sig", "bom"), ("utf-32", "bom")]


@pytest.mark.parametrize(("name", "form"), [("wide.srt", SRT), ("wide.ass", ASS),
                                            ("wide.vtt", VTT)])
@pytest.mark.parametrize(("charset", "mark"), UTF16_NAMES)
def test_a_subtitle_in_utf16_plays_as_utf8(
        app: tuple[Runtime, TestClient], name: str, form: str, charset: str, mark: str) -> None:
    """What Windows' Notepad and old subtitle tools save ("Unicode": UTF-16, little endian,
    with a byte order mark; big endian; without a mark; UTF-8 with one) is WebVTT in UTF-8,
    letters of any script kept. Before, an srt or ass in UTF-16 was a 400 (ffmpeg found no
    subtitles in it) and a vtt came out as Windows-1252 of every byte, NULs and all."""
    runtime, client = app
    line = f"{WINDOWS} \u65e5\u672c\u8a9e \U0001f600 \u0416"
    encoded = form.format(line).replace("\n", "\r\n").encode(charset)
    if charset == "utf-16-be" and mark == "bom":
        encoded = b"\xfe\xff" + encoded
    path = runtime.settings.download_path / f"{charset}-{mark.replace(' ', '')}-{name}"
    path.write_bytes(encoded)
    answer = client.simulate_get(f"/api/player/subtitle/{path.name}.vtt")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/vtt; charset=UTF-8"
    text = answer.content.decode("utf-8")
    assert text.startswith("WEBVTT") and line in text, text
    assert "\x00" not in text and "\ufeff" not in text and "\ufffd" not in text
    assert "00:01.000 --> 00:02.000" in text
    assert runtime.player.slots.taken == 0


def test_a_stray_nul_in_utf8_text_is_no_utf16(app: tuple[Runtime, TestClient]) -> None:
    """One NUL byte (a tool's slip) in a UTF-8 file leaves it UTF-8 (read as UTF-16 it was
    other letters altogether), and is dropped (ffmpeg's cue ended at it)."""
    runtime, client = app
    (runtime.settings.download_path / "stray.srt").write_bytes(
        SRT.format(f"{WINDOWS}\x00 x").encode())
    answer = client.simulate_get("/api/player/subtitle/stray.srt.vtt")
    assert answer.status_code == 200, answer.text
    assert f"{WINDOWS} x" in answer.content.decode()


@pytest.mark.parametrize(("content", "error"), [
    (b"\xff\xfe", "'{}' holds no subtitles (it is empty)."),
    (b"\xef\xbb\xbf\r\n \r\n", "'{}' holds no subtitles (it is empty)."),
    (b"", "'{}' holds no subtitles (it is empty)."),
    ("no times here\n".encode("utf-16"), "ffmpeg cannot convert '{}' to WebVTT."),
    (b"\xff\xfe\x00\xd8\x41\x00", "ffmpeg cannot convert '{}' to WebVTT."),  # a lone surrogate
])
def test_a_hostile_subtitle_is_a_plain_400(
        app: tuple[Runtime, TestClient], content: bytes, error: str) -> None:
    """A byte order mark and nothing else, blanks, nothing at all, text with no cue, half a
    UTF-16 pair: a 400 saying so, never a 500, the slot given back."""
    runtime, client = app
    for suffix in ("srt", "vtt"):
        name = f"hostile-{len(content)}-{content[-1:].hex()}.{suffix}"
        (runtime.settings.download_path / name).write_bytes(content)
        answer = client.simulate_get(f"/api/player/subtitle/{name}.vtt")
        assert answer.status_code == 400, answer.text
        if suffix == "vtt" and "cannot convert" in error:
            assert answer.json["error"] == (f"'{name}' is not WebVTT (it does not begin "
                                            "with WEBVTT).")
        else:
            assert answer.json["error"] == error.format(name)
        assert runtime.player.slots.taken == 0


def test_a_vtt_is_webvtt_from_its_first_byte(app: tuple[Runtime, TestClient]) -> None:
    """WebVTT begins with WEBVTT, after at most a byte order mark (a browser refuses the
    file otherwise): blank lines before it are a 400 saying so; a mark written twice (a tool
    that added one to a file that had one) is one mark, sent once."""
    runtime, client = app
    root = runtime.settings.download_path
    (root / "blank-first.vtt").write_bytes(b"\n \n" + VTT.format("Hi").encode())
    refused = client.simulate_get("/api/player/subtitle/blank-first.vtt.vtt")
    assert refused.status_code == 400, refused.text
    assert refused.json["error"] == ("'blank-first.vtt' is not WebVTT (it does not begin with "
                                     "WEBVTT).")
    (root / "two-marks.vtt").write_bytes(b"\xef\xbb\xbf" * 2 + VTT.format("Hi").encode())
    sent = client.simulate_get("/api/player/subtitle/two-marks.vtt.vtt")
    assert sent.status_code == 200, sent.text
    assert sent.content == b"\xef\xbb\xbf" + VTT.format("Hi").encode()


def test_a_subtitles_markup_is_never_a_page(app: tuple[Runtime, TestClient]) -> None:
    """A site's subtitles are its text: the HTML a SubRip file may hold is not carried into
    the WebVTT (ffmpeg keeps the tags WebVTT has), and the answer is served as every file of
    the folder is (no script runs if it is opened as a page, no other type guessed)."""
    runtime, client = app
    root = runtime.settings.download_path
    script = "<script>alert(document.cookie)</script><img src=x onerror=alert(1)>"
    (root / "markup.srt").write_text(SRT.format(f"<i>Hi</i> {script}"))
    (root / "markup.vtt").write_text(VTT.format(f"<i>Hi</i> {script}"))
    converted = client.simulate_get("/api/player/subtitle/markup.srt.vtt")
    assert converted.status_code == 200, converted.text
    assert "<i>Hi</i>" in converted.text
    assert "<script" not in converted.text and "onerror" not in converted.text
    sent = client.simulate_get("/api/player/subtitle/markup.vtt.vtt")
    for answer in (converted, sent):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "sandbox"


def test_a_subtitle_changed_is_the_next_answer(app: tuple[Runtime, TestClient]) -> None:
    """Its URL names no version of the file: the browser asks again each time (its ETag
    makes that a 304 while the file is the same) instead of keeping it by a guess from its
    date."""
    runtime, client = app
    path = runtime.settings.download_path / "changing.en.srt"
    path.write_text(SRT.format("first"))
    first = client.simulate_get("/api/player/subtitle/changing.en.srt.vtt")
    assert first.headers["cache-control"] == player_api.ASKED_AGAIN
    same = client.simulate_get("/api/player/subtitle/changing.en.srt.vtt",
                               headers={"If-None-Match": first.headers["etag"]})
    assert same.status_code == 304 and same.headers["cache-control"] == player_api.ASKED_AGAIN
    path.write_text(SRT.format("second, longer"))
    changed = client.simulate_get("/api/player/subtitle/changing.en.srt.vtt",
                                  headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and "second, longer" in changed.text



def test_a_subtitle_ffmpeg_refused_is_refused_again_without_it_until_it_changes(
        app: tuple[Runtime, TestClient]) -> None:
    """Each conversion holds one of the player's ffmpeg places (up to 30 s for a cue a
    megabyte long); a player asks again at every play: a file ffmpeg refused is refused
    from memory while unchanged, even with every place taken, and tried again once changed."""
    runtime, client = app
    path = runtime.settings.download_path / "refused-once.srt"
    path.write_bytes("no times here\n".encode("utf-16"))
    first = client.simulate_get("/api/player/subtitle/refused-once.srt.vtt")
    assert first.status_code == 400, first.text
    slots = runtime.player.slots
    waited = slots.wait
    for _ in range(slots.count):
        slots.take()
    try:
        again = client.simulate_get("/api/player/subtitle/refused-once.srt.vtt")
        assert again.status_code == 400, again.text
        assert again.json == first.json
        # A busy player is no refusal of the file: not remembered, said as it is.
        (runtime.settings.download_path / "busy.srt").write_text(SRT.format("Hi"))
        slots.wait = 0.0
        busy = client.simulate_get("/api/player/subtitle/busy.srt.vtt")
        assert busy.status_code == 503, busy.text
    finally:
        slots.wait = waited
        for _ in range(slots.count):
            slots.give_back()
    assert client.simulate_get("/api/player/subtitle/busy.srt.vtt").status_code == 200
    path.write_text(SRT.format("Hi"))  # changed (its size at least): converted again
    converted = client.simulate_get("/api/player/subtitle/refused-once.srt.vtt")
    assert converted.status_code == 200, converted.text
    assert "Hi" in converted.content.decode()
