"""What ffmpeg says when a download or a conversion yt-dlp hands it fails, taken at its word.

- **Why it failed.** yt-dlp runs the ffmpeg that downloads (HLS, DASH, a live stream) with
  ``-loglevel quiet`` (the download process's yt-dlp is quiet), so a failed download said only
  "ffmpeg exited with code 1", and ffmpeg's reason (a 403 on a segment, a refused ``file:``
  source, a broken stream) was said nowhere. In the download process, that ffmpeg now runs at
  ``-loglevel level+warning`` with ``-nostats``, its lines read from a pipe (the last few
  errors kept, each cut short), and they follow the exit code in the error. ``-nostats``
  matters beside the pipe: below ``info`` ffmpeg writes its status line straight to stderr
  twice a second, even while it waits for a byte that never comes, and the bytes a download's
  processes read count as work for the stall watch (``work_signs``).
- **A segment left out.** ffmpeg skips a segment of a stream it cannot open and ends as if
  whole, saying it only in a warning; each is said as yt-dlp says its own skipped fragments,
  which ``fragment_gaps`` counts for the finished item.
- **A cut file that "succeeded".** ffmpeg 5.1 (Debian 12, Raspberry Pi OS 12) exits 0 when its
  output could not be written whole ("Error writing trailer of …: No space left on device",
  "Error closing file …"): on a disk that filled, a download by ffmpeg, or a merge or remux
  after a download, finished with a cut file, and the merge's sources were deleted. Such a run
  is now a failure with those words, which ``disk_room`` reads as a full disk: the download
  waits for room and is done again.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import re
import subprocess
import threading
from typing import Any

LINES_KEPT = 3
LINE_BYTES = 300
SKIPPED_SEGMENT = "[ffmpeg] Skipped a segment it could not open: "
# ffmpeg's prefix of a line: the component and its context's address, which say nothing here.
_ADDRESS = re.compile(r"\[(\w+) @ 0x[0-9a-f]+\] ")
# What ffmpeg says when its output file was not written whole.
_OUTPUT_BROKEN = re.compile(
    r"^(?:Error writing trailer of |Error closing file |av_interleaved_write_frame\(\): )"
    r".*$", re.MULTILINE)
# A line of ffmpeg at ``-loglevel level+warning``, its address dropped: its part, its level.
_LINE = re.compile(r"(?:\[(?P<part>\w+)\] )?\[(?P<level>\w+)\] (?P<text>.*)")
_FAILED = frozenset({"error", "fatal", "panic"})
_SEGMENT_FAILED = re.compile(r"Failed to open segment (\d+) of playlist (\d+)")
# An address in ffmpeg's words: a stream's are signed (a token in the query, a user and
# password before the host), and the words go to the item's error, which any client and
# every notification target reads. Its scheme, host and path say enough.
_ADDRESS_SECRETS = re.compile(
    r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)(?P<user>[^/\s@]*@)?(?P<path>[^\s?#]*)"
    r"(?P<query>[?#]\S*?)?(?=[:,;.]?(?:\s|$))")


def _without_secrets(text: str) -> str:
    return _ADDRESS_SECRETS.sub(
        lambda m: m["scheme"] + m["path"] + ("?…" if m["query"] else ""), text)


class _Heard:
    """What the last ffmpeg a download handed to said (one job at a time per process)."""

    words: str | None = None
    output_broken = False
    # why each segment it could not open was left out (the site's answer, when it gave one),
    # by its number and its playlist's
    skipped: dict[tuple[str, str], str] = {}  # (a new one at each run's start)


def _quiet_at(args: Any) -> int | None:
    """Where ``-loglevel quiet`` stands in the arguments of an ffmpeg run, or None."""
    if not (isinstance(args, list) and args
            and os.path.basename(str(args[0])).startswith("ffmpeg")):
        return None
    return next((i for i, pair in enumerate(itertools.pairwise(args))
                 if pair == ("-loglevel", "quiet")), None)


def _listen(stream: Any) -> None:
    kept: collections.deque[str] = collections.deque(maxlen=LINES_KEPT)
    answer = ""  # the site's last refusal of a request, which a skipped segment follows
    with contextlib.suppress(OSError, ValueError):
        for raw in stream:
            line = _ADDRESS.sub(r"[\1] ", raw[:LINE_BYTES].decode("utf-8", "replace").strip())
            if not (found := _LINE.fullmatch(line)):
                continue
            part, level, text = found["part"], found["level"], found["text"]
            if level in _FAILED:
                said = _without_secrets(text)
                kept.append(f"[{part}] {said}" if part else said)
                _Heard.output_broken |= _OUTPUT_BROKEN.match(text) is not None
            elif part == "http" and text.startswith("HTTP error"):
                answer = text
            elif (segment := _SEGMENT_FAILED.match(text)) and len(_Heard.skipped) < 10_000:
                # said again at each of its tries: a segment counts once
                _Heard.skipped.setdefault(segment.groups(), answer)
    _Heard.words = "; ".join(kept) or None


def _hear_downloads(external: Any) -> None:
    base = external.Popen

    class Popen(base):  # type: ignore[misc,valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            at = _quiet_at(args)
            if at is None or kwargs.get("stderr") is not None:
                super().__init__(args, *rest, **kwargs)
                return
            _Heard.words, _Heard.output_broken, _Heard.skipped = None, False, {}
            audible = [args[0], "-nostats", *args[1:at + 1], "level+warning", *args[at + 2:]]
            super().__init__(audible, *rest, stderr=subprocess.PIPE, **kwargs)
            self._listener = threading.Thread(target=_listen, args=(self.stderr,),
                                              name="ffmpeg-stderr", daemon=True)
            self._listener.start()

        def wait(self, timeout: float | None = None) -> int:
            code = super().wait(timeout)
            if (listener := getattr(self, "_listener", None)) is None:
                return code
            listener.join(5)  # its pipe ends with ffmpeg (unless ffmpeg left a child)
            return 1 if code == 0 and _Heard.output_broken else code

    def report_error(self: Any, message: str, *args: Any, **kwargs: Any) -> Any:
        if message.startswith("ffmpeg exited with code") and _Heard.words:
            message = f"{message}: {_Heard.words}"
        return self.ydl.report_error(message, *args, **kwargs)

    call = external.FFmpegFD._call_downloader

    def _call_downloader(self: Any, *args: Any, **kwargs: Any) -> Any:
        code = call(self, *args, **kwargs)
        for answer in _Heard.skipped.values():  # (heard as yt-dlp's own: fragment_gaps)
            self.to_screen(f"{SKIPPED_SEGMENT}{answer}")
        return code

    external.Popen = Popen
    external.FFmpegFD.report_error = report_error
    external.FFmpegFD._call_downloader = _call_downloader


def _hear_conversions(ffmpeg: Any) -> None:
    run = ffmpeg.FFmpegPostProcessor.real_run_ffmpeg

    def real_run_ffmpeg(self: Any, *args: Any, **kwargs: Any) -> Any:
        said = run(self, *args, **kwargs)
        if isinstance(said, str) and (broken := _OUTPUT_BROKEN.search(said)):
            raise ffmpeg.FFmpegPostProcessorError(broken[0].strip())
        return said

    ffmpeg.FFmpegPostProcessor.real_run_ffmpeg = real_run_ffmpeg


def hear_ffmpeg() -> None:
    """In a download process (the zygote, before it forks). Skipped if yt-dlp's internals
    moved: the bare exit code is said then, and a cut output passes as before."""
    try:
        from yt_dlp.downloader import external
        from yt_dlp.postprocessor import ffmpeg
    except ImportError:
        return
    if getattr(external, "_appliance_heard", False):
        return
    external._appliance_heard = True
    with contextlib.suppress(AttributeError):
        _hear_downloads(external)
    with contextlib.suppress(AttributeError):
        _hear_conversions(ffmpeg)
