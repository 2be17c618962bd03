"""Subtitle files (srt, ass, vtt) as WebVTT in UTF-8, for a browser's text track.

yt-dlp writes UTF-8, but people's own subtitles come from old Windows tools: UTF-16 (little or
big endian, with its byte order mark, sometimes without), Windows-1252, a UTF-8 mark in front.
The file's text is decoded here, once, by what it says of itself (``decoded``), and ffmpeg
converts UTF-8 only: it read UTF-16 as no subtitles at all (a 400), and a .vtt so written was
sent as it was, said to be UTF-8.
"""

from __future__ import annotations

import codecs
import io
import os
import subprocess

from .. import errors
from ..recent import Recent
from ..slots import Slots
from . import segments, source

SUBTITLE_TIMEOUT = 30.0
MAX_SUBTITLE = 10 * 1024 * 1024
# A file that is neither UTF-8 nor UTF-16 was most likely written on Windows in the West (an
# old SubRip file): read as Windows-1252, it shows instead of failing; what has no letter
# there (five bytes) becomes a replacement mark.
FALLBACK_CHARSET = "cp1252"
# A file ffmpeg could not convert (or not within SUBTITLE_TIMEOUT) is refused again from memory
# while it is unchanged, for this long: each try held one of the player's ffmpeg places up to
# SUBTITLE_TIMEOUT (a site's SubRip file of one cue a megabyte long took 25-40 s), and a
# player asks again at every play. At most REFUSALS_KEPT files are remembered.
REFUSAL_KEPT = 600.0
REFUSALS_KEPT = 64
# The marks a file may begin with, longest first (UTF-32's begin as UTF-16's do).
_MARKS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
          (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
          (codecs.BOM_UTF16_BE, "utf-16-be"))


def decoded(raw: bytes) -> str:
    """``raw``'s text, by its byte order mark, else as UTF-16 without a mark (NULs in every
    other byte), UTF-8, else FALLBACK_CHARSET; what cannot be decoded is a replacement mark,
    never an error."""
    for mark, charset in _MARKS:
        if raw.startswith(mark):
            return raw[len(mark):].decode(charset, errors="replace")
    # No text holds NUL bytes, and every subtitle's times and numbers are ASCII: NULs on one
    # side of a quarter of the byte pairs or more are UTF-16 (which is valid UTF-8 too, NULs
    # and all); a stray NUL in UTF-8 text is not.
    odd, even, pairs = raw[1::2].count(0), raw[0::2].count(0), len(raw) // 2
    if odd > 4 * even and odd * 4 >= pairs:
        return raw.decode("utf-16-le", errors="replace")
    if even > 4 * odd and even * 4 >= pairs:
        return raw.decode("utf-16-be", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode(FALLBACK_CHARSET, errors="replace")


def to_webvtt(media: io.FileIO, info: os.stat_result, slots: Slots,
              refusals: Recent[tuple[int, ...], str]) -> bytes:
    """A subtitle file (srt, ass, vtt), opened by ``files.reading.open_regular`` (``info``
    its ``fstat``), as WebVTT in UTF-8; 400 for one that is too big, holds no text, or that
    ffmpeg cannot convert, said again from ``refusals`` while the file is the same (device,
    inode, size, modification time): a file changed is tried again."""
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if (said := refusals.get(key)) is not None:
        raise errors.invalid(said)
    try:
        return _webvtt(media, info.st_size, slots)
    except errors.AppError as exc:
        if exc.code == errors.INVALID_REQUEST:  # the file's (not a busy player's 503)
            refusals.keep(key, exc.message)
        raise


def _webvtt(media: io.FileIO, size: int, slots: Slots) -> bytes:
    name = os.path.basename(str(media.name))
    if size > MAX_SUBTITLE:
        raise errors.invalid("The subtitle file is too big to convert.")
    # (a NUL means nothing in a subtitle, and ffmpeg's text ended at it: the cue lost)
    text = decoded(media.read(MAX_SUBTITLE)).replace("\x00", "")
    if not text.strip():
        raise errors.invalid(f"'{name}' holds no subtitles (it is empty).")
    utf8 = text.encode("utf-8", errors="replace")  # (a lone surrogate UTF-16 may hold)
    if name.lower().endswith(".vtt"):
        if not text.lstrip("\ufeff").startswith("WEBVTT"):
            raise errors.invalid(f"'{name}' is not WebVTT (it does not begin with WEBVTT).")
        return utf8
    slots.take()
    try:
        done = _convert(utf8)
    except subprocess.TimeoutExpired:
        raise errors.invalid("Converting the subtitles took too long.") from None
    finally:
        slots.give_back()
    if done.returncode != 0 or not done.stdout.startswith(b"WEBVTT"):
        if source.refused(done.stderr.decode(errors="replace")):
            raise errors.invalid(f"'{name}' is not a subtitle file the player plays "
                                 "(srt, ass, vtt).")
        raise errors.invalid(f"ffmpeg cannot convert '{name}' to WebVTT.")
    return done.stdout


def _convert(utf8: bytes) -> subprocess.CompletedProcess[bytes]:
    """ffmpeg's WebVTT of the subtitles ``utf8``, on its standard input (no temp file a full
    disk could refuse; the demuxers whitelisted as for a file of the folder, and no protocol
    but the pipe)."""
    return subprocess.run([*segments._BASE, *source.input_args(
                              "pipe:0", source.SUBTITLE_FORMATS, "pipe"), "-f", "webvtt",
                           "pipe:1"],
                          input=utf8, capture_output=True, timeout=SUBTITLE_TIMEOUT,
                          check=False)
