"""The look at each finished download (engine.media_check), in the download process's job
runner driven in this process: real yt-dlp, real ffmpeg and ffprobe. Every real download
passes on its head, without a program started for it; what is no media is refused, text at
once, other bytes on ffprobe's word; sidecars and formats that are no audio or video are
never judged; and the look is bounded against hostile files."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from support.origin import MediaOrigin
from test_not_media import (
    HTML,
    JSON,
    NOISE,
    Site,
    serving_site,  # noqa: F401 (the fixture "site")
)

from appliance.engine import child, media_check
from appliance.engine.failures import explain
from appliance.engine.options import parse_cli
from appliance.engine.presets import BUILTIN

FFMPEG = [shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
          "-y"]
SOURCES = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1",
           "-f", "lavfi", "-i", "sine=frequency=440:duration=1"]
# What each kind of file is made of (after the sources).
MADE = {
    "clip.webm": ["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"],
    "clip.mkv": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    "song.m4a": ["-vn", "-c:a", "aac"],
    "song.mp3": ["-vn", "-c:a", "libmp3lame"],
    "picture.mp4": ["-an", "-c:v", "libx264", "-preset", "ultrafast"],
    "poster.jpg": ["-frames:v", "1", "-an"],
}
TYPES = {".webm": "video/webm", ".mkv": "video/x-matroska", ".m4a": "audio/mp4",
         ".mp3": "audio/mpeg", ".jpg": "image/jpeg"}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("made")
    for name, codecs in MADE.items():
        subprocess.run([*FFMPEG, *SOURCES, *codecs, str(folder / name)], check=True,
                       timeout=120)
    return {name: (folder / name).read_bytes() for name in MADE}


class Starts:
    """The programs this process starts (an audit hook: every start Python makes), while a
    test listens."""

    listening: list[list[str]] | None = None

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event == "subprocess.Popen" and cls.listening is not None:
            argv = args[1]
            cls.listening.append([os.fsdecode(a) for a in (
                [argv] if isinstance(argv, str | bytes) else argv)])


sys.addaudithook(Starts.hook)


@pytest.fixture
def starts() -> Iterator[list[list[str]]]:
    Starts.listening = started = []
    yield started
    Starts.listening = None


def probes(started: list[list[str]]) -> list[list[str]]:
    """The media check's ffprobe runs among ``started``."""
    return [argv for argv in started if os.path.basename(argv[0]) == "ffprobe"
            and tuple(argv[1:1 + len(media_check.PROBE_ARGS)]) == media_check.PROBE_ARGS]


def job(tmp_path: Path, url: str, args: list[str] | None = None,
        template: str = "out.%(ext)s") -> dict[str, Any]:
    return {"op": "download", "job": "j1", "url": url, "args": args or [],
            "home": str(tmp_path / "home"), "temp": str(tmp_path / "temp"),
            "template": template, "default_template": "%(title)s.%(ext)s"}


def download(job: dict[str, Any]) -> dict[str, Any]:
    return child.run_download(job, child.Channel(os.open(os.devnull, os.O_WRONLY)))


def passed_on_heads(result: dict[str, Any]) -> list[str]:
    """The formats the check named the finished files by; it fails the test when one was
    judged otherwise than by its head."""
    assert result["media"], result
    for verdict in result["media"]:
        assert verdict["kind"] is None and verdict["probed"] is False, verdict
    return [verdict["media"] for verdict in result["media"]]


@pytest.mark.parametrize("preset", BUILTIN, ids=[p["name"] for p in BUILTIN])
def test_every_shipped_preset_finishes_a_real_download_without_a_probe(
        tmp_path: Path, origin: MediaOrigin, starts: list[list[str]],
        preset: dict[str, str]) -> None:
    result = download(job(tmp_path, origin.watch_url("clip"), parse_cli(preset["cli"]).args,
                          preset.get("template") or "out.%(ext)s"))

    assert Path(result["filepath"]).is_file()
    assert all(passed_on_heads(result))
    assert probes(starts) == []


@pytest.mark.parametrize("name", ["clip.webm", "clip.mkv", "song.m4a", "song.mp3"])
def test_real_media_of_each_container_passes_on_its_head(
        tmp_path: Path, site: Site, made: dict[str, bytes], starts: list[list[str]],
        name: str) -> None:
    url = site.serve(name, made[name], TYPES[Path(name).suffix])
    result = download(job(tmp_path, url))

    assert Path(result["filepath"]).read_bytes() == made[name]
    assert passed_on_heads(result) == [{"clip.webm": "EBML (Matroska/WebM)",
                                        "clip.mkv": "EBML (Matroska/WebM)",
                                        "song.m4a": "ISO BMFF (MP4/MOV)",
                                        "song.mp3": "ID3 (MP3)"}[name]]
    assert probes(starts) == []


def test_an_hls_download_passes_on_its_head(
        tmp_path: Path, origin: MediaOrigin, starts: list[list[str]]) -> None:
    result = download(job(tmp_path, origin.hls_url))

    assert Path(result["filepath"]).is_file()
    assert passed_on_heads(result) == ["MPEG-TS"]  # judged as saved, before yt-dlp's fixup
    assert probes(starts) == []


def test_subtitles_and_a_thumbnail_beside_the_video_are_never_judged(
        tmp_path: Path, site: Site, origin: MediaOrigin, made: dict[str, bytes],
        starts: list[list[str]]) -> None:
    # Subtitles are text: judged, they would be refused at once.
    subtitles = b"WEBVTT\n\n00:00.000 --> 00:01.000\n<b>Hello</b>\n"
    video = site.serve("clip.mp4", origin.path_for(origin.clip_url).read_bytes())
    page = site.serve("show.html", (
        '<!DOCTYPE html><html><head><title>Show</title></head><body>'
        f'<video poster="{site.serve("poster.jpg", made["poster.jpg"], "image/jpeg")}">'
        f'<source src="{video}" type="video/mp4">'
        f'<track kind="subtitles" srclang="en" label="English" '
        f'src="{site.serve("subs.vtt", subtitles, "text/vtt")}"></video>'
        '</body></html>').encode(), "text/html; charset=utf-8")
    result = download(job(tmp_path, page, ["--write-subs", "--write-thumbnail"]))

    home = tmp_path / "home"
    assert sorted(p.name for p in home.iterdir()) == ["out.en.vtt", "out.jpg", "out.mp4"]
    assert [v["file"] for v in result["media"]] == ["out.mp4"]
    assert passed_on_heads(result) == ["ISO BMFF (MP4/MOV)"]

    subtitles_only = download(job(tmp_path / "subs", page, ["--skip-download", "--write-subs"]))
    assert subtitles_only["skipped"] and (tmp_path / "subs/home/out.en.vtt").is_file()
    assert probes(starts) == []


def formats(video: str, audio: str) -> dict[str, Any]:
    """An item's info with a video-only and an audio-only format, as a site's page gives it
    (the job is handed it, as the engine hands it what it read moments ago)."""
    return {"id": "pair", "title": "Pair", "extractor": "generic", "extractor_key": "Generic",
            "webpage_url": video, "formats": [
                {"format_id": "v", "url": video, "ext": "mp4", "vcodec": "avc1.64000d",
                 "acodec": "none"},
                {"format_id": "a", "url": audio, "ext": "m4a", "vcodec": "none",
                 "acodec": "mp4a.40.2"}]}


def test_the_parts_of_a_merge_are_judged_each_before_ffmpeg_merges_them(
        tmp_path: Path, site: Site, made: dict[str, bytes], starts: list[list[str]]) -> None:
    video = site.serve("picture.mp4", made["picture.mp4"])
    audio = site.serve("song.m4a", made["song.m4a"], "audio/mp4")
    merged = download({**job(tmp_path, video, ["-f", "v+a"]), "info": formats(video, audio)})

    assert Path(merged["filepath"]).name == "out.mp4"
    assert [v["file"] for v in merged["media"]] == ["out.fv.mp4", "out.fa.m4a"]
    assert passed_on_heads(merged) == ["ISO BMFF (MP4/MOV)"] * 2
    assert probes(starts) == []

    starts.clear()
    refused = {**job(tmp_path / "junk", video, ["-f", "v+a"]),
               "info": formats(video, site.serve("denied.m4a", JSON, "audio/mp4"))}
    with pytest.raises(media_check.NotMedia, match=r"^Not media \(json\): out\.fa\.m4a, "):
        download(refused)
    assert not any(os.path.basename(argv[0]) == "ffmpeg" for argv in starts)  # no merge


@pytest.mark.parametrize(("body", "kind"), [(HTML, "html"), (JSON, "json")],
                         ids=["html", "json"])
def test_text_is_refused_at_once_and_other_bytes_on_ffprobes_word(
        tmp_path: Path, site: Site, starts: list[list[str]], body: bytes, kind: str) -> None:
    with pytest.raises(media_check.NotMedia, match=rf"^Not media \({kind}\): out\.mp4, "):
        download(job(tmp_path, site.serve("v.mp4", body)))
    assert probes(starts) == []  # text costs no program

    with pytest.raises(media_check.NotMedia, match=r"^Not media \(unreadable\): out\.mp4, "):
        download(job(tmp_path / "noise", site.serve("n.mp4", NOISE)))
    assert len(probes(starts)) == 1
    # nothing moved where a media server looks
    assert [p for p in tmp_path.rglob("home/**/*") if p.is_file()] == []


def test_a_real_file_of_a_container_the_check_does_not_name_is_probed_and_kept(
        tmp_path: Path, starts: list[list[str]]) -> None:
    """A wrong verdict must never cost a good file: a head no signature names is no refusal;
    ffprobe is asked, and reads it."""
    nut = tmp_path / "-clip:file:x.mp4"  # (ffmpeg's own container, NUT, under another name)
    subprocess.run([*FFMPEG, *SOURCES, "-c:v", "mpeg4", "-c:a", "pcm_s16le", "-f", "nut",
                    str(nut)], check=True, timeout=120)

    assert media_check.signature(nut.read_bytes()[:media_check.HEAD_BYTES]) is None
    verdict = media_check.judge(str(nut))
    assert (verdict.kind, verdict.probed) == (None, True)
    assert probes(starts)[0][-1] == f"file:{nut}"  # not an option, not a protocol


@pytest.mark.parametrize(("head", "named"), [
    (bytes.fromhex("fffb9064") + bytes(60), "MPEG audio"),  # MPEG-1 layer III, 128 kb/s
    (bytes.fromhex("fff15080") + bytes(60), "ADTS (AAC)"),
    ((b"\x47" + bytes(187)) * 3, "MPEG-TS"),
    ((bytes(4) + b"\x47" + bytes(187)) * 3, "MPEG-TS"),  # M2TS
    (b"\x00\x00\x00\x18ftypisom", "ISO BMFF (MP4/MOV)"),
    (b"\x00\x00\x00\x08free\x00\x00\x00\x10mdat", "ISO BMFF (MP4/MOV)"),
    (b"\xff\xfe<\x00h\x00t\x00m\x00l\x00>\x00", None),  # a UTF-16 page's mark: no frame sync
    (b"\xff\xfb\xf0\x00" + bytes(60), None),  # reserved bit rate
    (b"GIF89a", None),
    # each field of a frame's header, one at a time (the four bytes are all it reads)
    (bytes.fromhex("fffb9064"), "MPEG audio"),
    (bytes.fromhex("fffb90"), None),  # too short to hold a header
    (bytes.fromhex("7ffb9064"), None),  # sync in the second byte only
    (bytes.fromhex("ff1b9064"), None),  # sync in the first byte only
    (bytes.fromhex("fff39064"), "MPEG audio"),  # MPEG-2 layer III
    (bytes.fromhex("ffe39064"), "MPEG audio"),  # MPEG-2.5 layer III
    (bytes.fromhex("ffeb9064"), None),  # reserved version
    (bytes.fromhex("ffe19064"), None),  # reserved layer
    (bytes.fromhex("fffb8c64"), None),  # reserved sample rate
    (bytes.fromhex("fff13080"), "ADTS (AAC)"),  # the highest sample rate index, 12
    (bytes.fromhex("fff13480"), None),  # reserved sample rate index (13)
    (bytes.fromhex("fff13c80"), None),  # reserved sample rate index (15)
])
def test_heads_are_named_only_by_their_formats_signatures(head: bytes, named: str | None
                                                          ) -> None:
    assert media_check.signature(head) == named


# Each format's head as its specification gives it (not read from the module's table: a wrong
# byte there would be tested against itself).
HEADS = {
    "EBML (Matroska/WebM)": b"\x1a\x45\xdf\xa3", "Ogg": b"OggS", "FLAC": b"fLaC",
    "ID3 (MP3)": b"ID3", "RIFF (WAVE/AVI)": b"RIFF", "IFF (AIFF)": b"FORM", "FLV": b"FLV\x01",
    "MPEG-PS": b"\x00\x00\x01\xba", "MPEG video": b"\x00\x00\x01\xb3",
    "H.264/H.265 stream": b"\x00\x00\x00\x01",
    "ASF (WMA/WMV)": b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "AMR": b"#!AMR",
    "Y4M": b"YUV4MPEG2", "IVF": b"DKIF", "CAF": b"caff", "AU": b".snd", "RealMedia": b".RMF",
    "APE": b"MAC ", "WavPack": b"wvpk", "Musepack": b"MPCK", "MXF": b"\x06\x0e\x2b\x34",
    "AC-3": b"\x0b\x77", "DTS": b"\x7f\xfe\x80\x01",
}
# ISO BMFF's and QuickTime's box types a file may start with.
BOX_TYPES = [b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"wide", b"sidx",
             b"pnot", b"uuid", b"pdin", b"emsg", b"prft"]


@pytest.mark.parametrize(("name", "magic"), HEADS.items(), ids=HEADS.keys())
def test_each_signature_names_its_format_after_any_bytes(name: str, magic: bytes) -> None:
    assert media_check.signature(magic + NOISE[:64]) == name
    assert media_check.signature(b"\x5a" + magic + NOISE[:64]) is None  # at its offset only


@pytest.mark.parametrize("box", BOX_TYPES, ids=[box.decode() for box in BOX_TYPES])
def test_each_box_a_file_starts_with_names_it_iso_bmff(box: bytes) -> None:
    assert media_check.signature(b"\x00\x00\x00\x18" + box + NOISE[:64]) == \
        "ISO BMFF (MP4/MOV)"


@pytest.mark.parametrize(("head", "kind"), [
    (b"  \n<!doctype HTML><p>Blocked", "html"),
    *((f"<!-- blocked -->\n{tag}>".encode(), "html")
      for tag in ("<html", "<head", "<body", "<title", "<script", "<meta")),
    (b"\xfe\xff" + "<html>Zugriff verweigert</html>".encode("utf-16-be"), "html"),
    (b"\n  <?xml version='1.0'?><Error/>", "xml"),
    (b'\r\n {"error": "gone"}', "json"),
    (b"\xef\xbb\xbf<html lang=en>", "html"),
    ("<html>Accès refusé</html>".encode("utf-16"), "html"),
    (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", "xml"),
    (b'[{"error": "gone"}]', "json"),
    (b"Access denied\r\n", "text"),
    ("Zugriff verweigert: " + "ä" * 5000, "text"),  # a character cut by the head's end
])
def test_text_heads_are_told_by_kind(head: bytes | str, kind: str) -> None:
    data = head.encode()[:media_check.HEAD_BYTES] if isinstance(head, str) else head
    found = media_check.text_kind(data)
    assert found is not None and found[0] == kind


@pytest.mark.parametrize("head", [b"", b"   \n", b"<html>\x00\x01binary", b"\xc3\x28 not utf-8",
                                  NOISE[:media_check.HEAD_BYTES]])
def test_heads_that_are_not_text_are_not_refused_as_text(head: bytes) -> None:
    assert media_check.text_kind(head) is None


def test_a_huge_head_line_is_read_no_further_than_the_head(tmp_path: Path) -> None:
    page = tmp_path / "page.mp4"
    page.write_bytes(b"<html><body>" + b"x" * (32 << 20))  # one line of 32 MiB

    verdict = media_check.judge(str(page))
    assert verdict.kind == "html" and verdict.probed is False
    assert len(verdict.quoted) <= media_check.QUOTED
    assert media_check.refusal(verdict) == \
        "Not media (html): page.mp4, 33.6 MB, it begins '<html><body>" + "x" * 48 + "'"


def test_an_empty_file_is_no_media(tmp_path: Path) -> None:
    (tmp_path / "e.mp4").write_bytes(b"")  # (as a resumed job finds one its last run left)
    verdict = media_check.judge(str(tmp_path / "e.mp4"))
    assert verdict.kind == "empty"
    assert media_check.refusal(verdict) == "Not media (empty): e.mp4, 0 B"
    (tmp_path / "e.mp4").unlink()  # (and one gone since: no size to say)
    assert media_check.refusal(verdict) == "Not media (empty): e.mp4, 0 B"


def test_a_finished_file_that_vanished_gives_no_verdict(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    finished = media_check.FinishedFiles()
    gone = str(tmp_path / "gone.mp4")
    with caplog.at_level(logging.WARNING, logger="appliance.child"):
        finished.hook({"status": "finished", "filename": gone,
                       "info_dict": {"format_id": "0", "ext": "mp4"}})
    assert finished.report() == [{"file": "gone.mp4", "media": None, "kind": None,
                                  "probed": False}]
    assert [r.getMessage() for r in caplog.records] == [
        f"media check: {gone!r} could not be read ([Errno 2] No such file or directory: "
        f"{gone!r}): no verdict"]


def test_a_probe_that_never_ends_is_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starts: list[list[str]],
        caplog: pytest.LogCaptureFixture) -> None:
    """ffprobe waits for ever on a pipe nobody writes (as on a file crafted to hold it): it is
    killed at the bound, and no verdict is given."""
    fifo = tmp_path / "held.mp4"
    os.mkfifo(fifo)
    monkeypatch.setattr(media_check, "PROBE_SECONDS", 1.0)

    with caplog.at_level(logging.WARNING, logger="appliance.child"):
        assert media_check.probe(str(fifo)) is None
    assert len(probes(starts)) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"media check: ffprobe took longer than 1 s on {str(fifo)!r}: no verdict; the download "
        "stands"]


def test_an_ffprobe_that_cannot_start_gives_no_verdict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An ffprobe on the PATH that the system cannot run (its interpreter gone)."""
    broken = tmp_path / "bin" / "ffprobe"
    broken.parent.mkdir()
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", str(broken.parent))
    (noise := tmp_path / "n.mp4").write_bytes(NOISE)

    with caplog.at_level(logging.WARNING, logger="appliance.child"):
        assert media_check.probe(str(noise)) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"media check: ffprobe could not be started on {str(noise)!r}: [Errno 2] No such file "
        f"or directory: {str(broken)!r}"]


def test_what_a_probe_says_is_kept_to_its_end() -> None:
    with subprocess.Popen(["sh", "-c", "head -c 5000000 /dev/zero >&2; echo last words >&2"],
                          stderr=subprocess.PIPE) as flood:
        said = media_check._said(flood, time.monotonic() + 60)
    assert said is not None and len(said) == media_check.KEPT_ERRORS
    assert said.endswith(b"last words\n")


@pytest.mark.parametrize(("name", "info", "judged"), [
    ("a.mp4", {"format_id": "18"}, True),
    ("a.unknown_video", {"format_id": "0"}, True),
    ("a.m4a", {"format_id": "140", "vcodec": "none", "acodec": "mp4a.40.2"}, True),
    ("a.en.vtt", {"ext": "vtt", "url": "u"}, False),  # a subtitle's download has no format
    ("a.mhtml", {"format_id": "sb0", "vcodec": "none", "acodec": "none"}, False),
    ("a.jpg", {"format_id": "0"}, False),
    ("a.webp", {"format_id": "0", "vcodec": "none", "acodec": "none"}, False),
])
def test_only_audio_or_video_formats_are_judged(name: str, info: dict[str, Any],
                                                judged: bool) -> None:
    assert media_check.judged(name, info) is judged


@pytest.mark.parametrize("ext", [
    "jpg", "png", "webp", "mhtml", "srt", "vtt", "ass", "lrc", "f4f", "f4m", "m3u8", "smil",
    "mpd", "gif", "jpeg", "avif", "bmp", "json", "xml", "html", "htm", "txt", "ttml", "dfxp",
    "srv1", "srv2", "srv3", "json3", "sbv", "ssa"])
def test_a_file_of_a_format_that_is_no_audio_or_video_is_never_judged(ext: str) -> None:
    assert media_check.judged(f"a.{ext.upper()}", {"format_id": "0"}) is False


@pytest.mark.parametrize(("kind", "sent"), [
    ("html", "a web page (HTML)"), ("xml", "an XML document"), ("json", "a JSON answer"),
    ("text", "plain text"), ("empty", "an empty file"), ("unreadable", "bytes no player reads")])
def test_each_kind_of_refusal_is_said_plainly_with_what_to_do(
        tmp_path: Path, kind: str, sent: str) -> None:
    message = f"Not media ({kind}): e.mp4, 5.1 KB"
    explained = explain(message, make_settings(tmp_path))
    assert explained.startswith(f"The site sent {sent}, not the video: ")
    assert "Open the address in a browser, or give cookies" in explained
    assert explained.endswith(f"({message})")


@pytest.mark.parametrize("quoted", ["[Errno 28] No space left on device",
                                    "HTTP Error 403: Forbidden", "Unsupported URL: x"])
def test_the_sites_words_quoted_in_a_refusal_read_as_no_other_failure(
        tmp_path: Path, quoted: str) -> None:
    message = f"Not media (text): e.mp4, 40 B, it begins {quoted!r}"
    assert explain(message, make_settings(tmp_path)).startswith(
        "The site sent plain text, not the video: ")


@pytest.mark.parametrize("message", ["Not media (other): e.mp4", "a Not media (html): e.mp4"])
def test_a_refusal_of_no_known_kind_is_left_as_it_is(tmp_path: Path, message: str) -> None:
    assert explain(message, make_settings(tmp_path)) == message
