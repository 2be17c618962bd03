"""Whether a finished download is media, or what a site sent in its place: a login, captcha
or block page (HTML) or a JSON error, with status 200 at a video's address. yt-dlp saves
whatever comes; without a look the item finished, an NFO was written beside a broken ``.mp4``,
its id went into the archive (so a task never fetched it again), and a media server showed a
broken episode.

Part of the download process (``engine.child``): yt-dlp's progress hook names each file as it
is finished (``FinishedFiles.hook``), in the job's temp folder, before any post-processor
(a merge, a conversion) and before the move into the download folder. A refused file fails
the job there (``NotMedia``): nothing is moved, recorded or written beside it, and the engine
removes the temp folder with the failed item's end, so the junk never reaches the download
folder, and a retry downloads again.

A wrong verdict must never cost a good file, so the look is cheap and refuses only what is
certain:

1. the file's head (``HEAD_BYTES``): a known media signature passes at once (every real
   download: no program is started for it); an empty file, and a head that is text --
   valid UTF-8 (or UTF-16 with its mark) without a control character in ``HEAD_BYTES`` --
   are refused: no media container starts so, and a text format yt-dlp downloads
   (subtitles, storyboards, manifests) is never judged;
2. a head that is neither goes to ffprobe, bounded in time and in what it says, and only its
   plain refusal ("Invalid data found when processing input") refuses the file. ffprobe not
   installed, slow, killed or saying anything else: no verdict, and the download finishes as
   before.

Files that are no audio or video are never judged: subtitles (no format of the item),
thumbnails, storyboards, manifests, and formats that say they have neither (``vcodec`` and
``acodec`` both ``none``).
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from yt_dlp.utils import MEDIA_EXTENSIONS, DownloadError

from ..units import human_size

log = logging.getLogger("appliance.child")

# Enough for every signature below (MPEG-TS's third sync byte is at 376) and for a page's
# <html> after its comments and scripts' head.
HEAD_BYTES = 8192
# ffprobe reads a few hundred KiB of a file it cannot place; a crafted one may make it read
# and say much more.
PROBE_SECONDS = 20.0
KEPT_ERRORS = 4096
# How ffprobe is asked: what a test looks for among the programs a job started.
PROBE_ARGS = ("-v", "error", "-hide_banner", "-i")
REFUSED = b"Invalid data found when processing input"
# What the item quotes of a text head.
QUOTED = 60

# Files of a format that are not audio or video: never judged.
NOT_AV = frozenset({*MEDIA_EXTENSIONS.thumbnails, *MEDIA_EXTENSIONS.storyboards,
                    *MEDIA_EXTENSIONS.subtitles, *MEDIA_EXTENSIONS.manifests,
                    "gif", "jpeg", "avif", "bmp", "json", "xml", "html", "htm", "txt", "ttml",
                    "dfxp", "srv1", "srv2", "srv3", "json3", "sbv", "ssa"})

# (offset, bytes, name): the heads of the containers and streams yt-dlp saves.
SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x1a\x45\xdf\xa3", "EBML (Matroska/WebM)"),
    (0, b"OggS", "Ogg"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "ID3 (MP3)"),
    (0, b"RIFF", "RIFF (WAVE/AVI)"),
    (0, b"FORM", "IFF (AIFF)"),
    (0, b"FLV\x01", "FLV"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x00\x00\x01\xb3", "MPEG video"),
    (0, b"\x00\x00\x00\x01", "H.264/H.265 stream"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF (WMA/WMV)"),
    (0, b"#!AMR", "AMR"),
    (0, b"YUV4MPEG2", "Y4M"),
    (0, b"DKIF", "IVF"),
    (0, b"caff", "CAF"),
    (0, b".snd", "AU"),
    (0, b".RMF", "RealMedia"),
    (0, b"MAC ", "APE"),
    (0, b"wvpk", "WavPack"),
    (0, b"MPCK", "Musepack"),
    (0, b"\x06\x0e\x2b\x34", "MXF"),
    (0, b"\x0b\x77", "AC-3"),
    (0, b"\x7f\xfe\x80\x01", "DTS"),
)
# ISO BMFF (mp4, m4a, mov, 3gp) and QuickTime: a box's type at offset 4.
BOXES = frozenset({b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"wide",
                   b"sidx", b"pnot", b"uuid", b"pdin", b"emsg", b"prft"})
TS_PACKETS = (188, 192)  # MPEG-TS and M2TS (a 4-byte time code before each packet)
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"))
HTML_TAGS = ("<!doctype html", "<html", "<head", "<body", "<title", "<script", "<meta")
CONTROLS = frozenset(chr(c) for c in range(32)) - set("\t\n\r\f\v")


class NotMedia(DownloadError):
    """A finished file of the job is no media (the engine's words for it: ``failures``)."""


@dataclass(frozen=True)
class Verdict:
    """What a file was found to be: ``media`` (the format's name, or None when no verdict
    could be had), or the ``kind`` of what came instead (``html``, ``xml``, ``json``, ``text``,
    ``empty``, ``unreadable``: what ``failures`` explains); ``probed`` when ffprobe was run."""

    file: str
    media: str | None = None
    kind: str | None = None
    probed: bool = False
    quoted: str = ""

    def report(self) -> dict[str, Any]:
        return {"file": os.path.basename(self.file), "media": self.media, "kind": self.kind,
                "probed": self.probed}


def signature(head: bytes) -> str | None:
    """The media format ``head`` starts as; None when it is no known one."""
    for offset, magic, name in SIGNATURES:
        if head.startswith(magic, offset):
            return name
    if head[4:8] in BOXES:
        return "ISO BMFF (MP4/MOV)"
    for size in TS_PACKETS:
        start = size - 188
        if len(head) >= start + 2 * size + 1 and all(
                head[start + n * size] == 0x47 for n in range(3)):
            return "MPEG-TS"
    return _frame_sync(head)


def _frame_sync(head: bytes) -> str | None:
    """An MPEG audio frame (MP3 without tags) or an ADTS (AAC) header: eleven (twelve) bits of
    sync and fields no encoder writes reserved values in (a UTF-16 page's mark, FF FE, is
    sync too, and fails them)."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:  # ADTS: layer 0
        return "ADTS (AAC)" if (head[2] >> 2) & 0xF < 13 else None
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or layer == 0 or bitrate == 0xF or rate == 3:
        return None
    return "MPEG audio"


def text_kind(head: bytes) -> tuple[str, str] | None:
    """``(kind, quoted)`` when ``head`` is text (``html``, ``xml``, ``json``, ``text``, as far
    as its first bytes tell) and its first words; None when it is not text."""
    codec, body = "utf-8", head
    for mark, name in BOMS:
        if head.startswith(mark):
            codec, body = name, head[len(mark):]
            break
    try:  # the head may cut a character in two: only its last one may be incomplete
        text = codecs.getincrementaldecoder(codec)().decode(body, final=False)
    except UnicodeDecodeError:
        return None
    if not text.strip() or not CONTROLS.isdisjoint(text):
        return None
    start = text.lstrip()
    lowered = start[:HEAD_BYTES].lower()
    if any(tag in lowered for tag in HTML_TAGS):
        kind = "html"
    elif start.startswith("<"):
        kind = "xml"
    elif start[0] in "{[":
        kind = "json"
    else:
        kind = "text"
    return kind, " ".join(start[:QUOTED * 2].split())[:QUOTED]


def probe(path: str) -> bool | None:
    """True when ffprobe says plainly that ``path`` is no media it knows; None for any other
    answer: not installed, too slow (killed after PROBE_SECONDS), stopped, or a file it read.

    The path is given as ``file:PATH``, absolute: a name that starts with ``-`` is no option
    and one with ``:`` no protocol, and the download process's audit hook checks it lies in
    the job's folders (``programs``)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    command = [ffprobe, *PROBE_ARGS, "file:" + os.path.abspath(path)]
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as exc:
        log.warning("media check: ffprobe could not be started on %r: %s", path, exc)
        return None
    deadline = time.monotonic() + PROBE_SECONDS
    with process:
        said = _said(process, deadline)
        try:  # (it may close its error stream and go on)
            returncode = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            said = None
        if said is None:
            process.kill()
            log.warning("media check: ffprobe took longer than %g s on %r: no verdict; the "
                        "download stands", PROBE_SECONDS, path)
            return None
    return True if returncode > 0 and REFUSED in said else None


def _said(process: subprocess.Popen[bytes], deadline: float) -> bytes | None:
    """The last KEPT_ERRORS bytes ``process`` wrote on its error stream until it closed it;
    None when the deadline came first."""
    assert process.stderr is not None
    kept = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                return bytes(kept)
            kept += chunk
            del kept[:-KEPT_ERRORS]


def judge(path: str) -> Verdict:
    """What the finished file ``path`` is (see the module's rules)."""
    try:
        with open(path, "rb") as file:
            head = file.read(HEAD_BYTES)
    except OSError as exc:  # gone, or not readable: nothing to judge
        log.warning("media check: %r could not be read (%s): no verdict", path, exc)
        return Verdict(path)
    if not head:
        return Verdict(path, kind="empty")
    media = signature(head)
    if media is not None:
        return Verdict(path, media=media)
    text = text_kind(head)
    if text is not None:
        return Verdict(path, kind=text[0], quoted=text[1])
    refused = probe(path)
    return Verdict(path, kind="unreadable" if refused else None, probed=True)


def judged(filename: str, info: dict[str, Any]) -> bool:
    """Whether the file yt-dlp finished is one of the item's audio or video formats."""
    if info.get("format_id") is None:  # a subtitle's download (its own info)
        return False
    ext = os.path.splitext(filename)[1][1:].lower()
    return ext not in NOT_AV and not (info.get("vcodec") == "none"
                                      and info.get("acodec") == "none")


class FinishedFiles:
    """yt-dlp's progress hook for one job: judges each media file as it is finished, and
    fails the job (``NotMedia``) on the first that is none."""

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    def hook(self, d: dict[str, Any]) -> None:
        filename = d.get("filename")
        if d.get("status") != "finished" or not filename or \
                not judged(filename, d.get("info_dict") or {}):
            return
        verdict = judge(filename)
        self.verdicts.append(verdict)
        if verdict.kind is not None:
            raise NotMedia(refusal(verdict))

    def report(self) -> list[dict[str, Any]]:
        return [verdict.report() for verdict in self.verdicts]


def refusal(verdict: Verdict) -> str:
    """The job's error for a file that is no media: its kind for ``failures`` to explain, its
    name, size and first words for the person to recognise it."""
    size = None
    with contextlib.suppress(OSError):
        size = os.path.getsize(verdict.file)
    said = [os.path.basename(verdict.file), human_size(size) or "0 B"]
    if verdict.quoted:
        said.append(f"it begins {verdict.quoted!r}")
    return f"Not media ({verdict.kind}): {', '.join(said)}"
