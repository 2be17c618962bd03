"""ffprobe, cached by (file, size, mtime): the info endpoints, the playlists and every segment
ask about the same file again and again. A file ffprobe cannot read stays that way until it
changes: the verdict is cached too. At most PROBE_SLOTS ffprobe run at once (``slots``).

What ffprobe says is bounded, read and kept: a real file's description is a few KiB (a remux
with fonts attached, a few hundred), but a crafted one's (a thousand streams, megabytes of
tags, packets whose times all fall in one window) runs to hundreds of megabytes, read into
memory by each slot at once and then kept in the cache."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import selectors
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors
from ..slots import Slots
from . import source

log = logging.getLogger(__name__)

FFPROBE = shutil.which("ffprobe") or "ffprobe"
PROBE_TIMEOUT = 30.0
# A probe reads a few packets; more at once than this is a flood (or files that stall it).
PROBE_SLOTS = 3
CACHED = 512
# The descriptions the cache keeps, in bytes of ffprobe's JSON, together.
CACHED_BYTES = 16 * 1024 * 1024
# ffprobe's description of one file (format and streams), and the packets one keyframe search
# reads (a window of a 25 fps stream: ~20 bytes a packet).
MAX_DESCRIPTION = 1024 * 1024
MAX_PACKETS = 16 * 1024 * 1024
# Of ffprobe's errors only the last line is told.
KEPT_ERRORS = 64 * 1024
# The seconds before a cut searched for its keyframe first, and how much longer each next
# window is when that one has none.
KEYFRAME_WINDOW = 12.0
KEYFRAME_WIDER = 4


class ProbeError(errors.AppError):
    def __init__(self, message: str) -> None:
        super().__init__(message, errors.INVALID_REQUEST)


class ProbeTransient(ProbeError):
    """Not cached: the next try may read the file."""


class ProbeTimeout(ProbeTransient):
    """A busy machine may read the file in time on the next try."""


class ProbeStopped(ProbeTransient):
    """ffprobe ended by a signal (the kernel's out-of-memory killer on a small box): no verdict
    on the file, which the next try may read."""


class Prober:
    def __init__(self, slots: Slots | None = None) -> None:
        self.slots = slots or Slots(
            PROBE_SLOTS, f"The player is busy ({PROBE_SLOTS} ffprobe processes); try again.")
        self._lock = threading.Lock()
        # Each answer with its weight (bytes of ffprobe's JSON).
        self._cache: OrderedDict[tuple[str, int, int, int, int], tuple[Any, int]] = OrderedDict()
        self._weight = 0

    def _cached(self, what: str, media: io.FileIO,
                make: Callable[[io.FileIO], tuple[Any, int]]) -> Any:
        info = os.fstat(media.fileno())
        key = (what, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            kept = self._cache.get(key)
            if kept is not None:
                self._cache.move_to_end(key)
        found = kept[0] if kept is not None else None
        if isinstance(found, _Failed):
            raise ProbeError(found.message)
        if found is not None:
            return found
        self.slots.take()
        try:
            made, weight = make(media)
        except ProbeTransient:
            raise
        except ProbeError as exc:
            made, weight = _Failed(exc.message), len(exc.message)
        finally:
            self.slots.give_back()
        self._keep(key, made, weight)
        if isinstance(made, _Failed):
            raise ProbeError(made.message)
        return made

    def _keep(self, key: tuple[str, int, int, int, int], made: Any, weight: int) -> None:
        with self._lock:
            replaced = self._cache.pop(key, None)
            self._weight -= replaced[1] if replaced is not None else 0
            self._cache[key] = (made, weight)
            self._weight += weight
            while len(self._cache) > CACHED or self._weight > CACHED_BYTES:
                self._weight -= self._cache.popitem(last=False)[1][1]

    def probe(self, media: io.FileIO) -> dict[str, Any]:
        """ffprobe's JSON (format, streams) for ``media`` (from ``files.reading.open_regular``);
        ProbeError (400) when ffprobe cannot read it as media, 503 when every slot is busy."""
        return self._cached("probe", media, _run_ffprobe)

    def keyframe(self, media: io.FileIO, time: float) -> float:
        """The time of the first video stream's last keyframe at or before ``time`` (0 when
        there is none): one seek and a few packets read (the file is never scanned whole)."""
        return self._cached(f"keyframe {time:.6f}", media,
                            lambda m: (_keyframe_before(m, time), 0))


class _Failed:
    """A cached verdict: ffprobe cannot read this file (as it is now)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _name(media: io.FileIO) -> str:
    return Path(str(media.name)).name


def _ffprobe(media: io.FileIO, limit: int, *args: str) -> subprocess.CompletedProcess[bytes]:
    """ffprobe on ``media``; ProbeError when it says more than ``limit`` bytes, ProbeTimeout
    when it takes longer than PROBE_TIMEOUT, ProbeStopped when a signal ends it."""
    command = [FFPROBE, "-v", "error", *args, *source.input_args(source.url(media))]
    deadline = time.monotonic() + PROBE_TIMEOUT
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, pass_fds=(media.fileno(),)) as process:
        try:
            stdout, stderr = _read(process, deadline, limit, _name(media))
            returncode = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            raise ProbeTimeout(f"ffprobe took longer than {PROBE_TIMEOUT:g} s on "
                               f"'{_name(media)}'.") from None
        except BaseException:
            process.kill()
            raise
    if returncode < 0:
        raise ProbeStopped(f"ffprobe was stopped (signal {-returncode}) on '{_name(media)}'; "
                           "try again.")
    return subprocess.CompletedProcess(command, returncode, stdout, stderr)


def _read(process: subprocess.Popen[bytes], deadline: float, limit: int,
          name: str) -> tuple[bytes, bytes]:
    """``process``'s output (at most ``limit`` bytes) and the end of its errors, until it
    closes both."""
    assert process.stdout is not None and process.stderr is not None
    said, errors_said = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, said)
        selector.register(process.stderr, selectors.EVENT_READ, errors_said)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, PROBE_TIMEOUT)
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                key.data.extend(chunk)
            if len(said) > limit:
                raise ProbeError(f"'{name}' describes itself in more than {limit / 2**20:g} MiB "
                                 "(thousands of streams or megabytes of tags): the player "
                                 "does not read it.")
            del errors_said[:-KEPT_ERRORS]
    return bytes(said), bytes(errors_said)


def _run_ffprobe(media: io.FileIO) -> tuple[dict[str, Any], int]:
    """ffprobe's JSON for ``media``, and its length."""
    path = Path(_name(media))
    done = _ffprobe(media, MAX_DESCRIPTION, "-print_format", "json", "-show_format",
                    "-show_streams")
    try:
        data = json.loads(done.stdout or b"{}")
    except ValueError:
        data = {}
    if done.returncode != 0 or not isinstance(data, dict) or "format" not in data:
        stderr = done.stderr.decode(errors="replace")
        if source.refused(stderr):
            raise ProbeError(f"'{path.name}' is not a playable media file (its content is "
                             "not an audio or video format the player opens).")
        reason = stderr.strip().splitlines()[-1:] or ["no output"]
        raise ProbeError(f"ffprobe cannot read '{path.name}' as media: "
                         f"{reason[0].replace(source.url(media), path.name)[:300]}")
    return data, len(done.stdout)


def _keyframes(media: io.FileIO, interval: str, time: float) -> list[float]:
    """The times of the first video stream's keyframes (``V``: no cover, see ``streams``)
    ffprobe reads in ``interval`` (its ``-read_intervals``), up to ``time``."""
    done = _ffprobe(media, MAX_PACKETS, "-select_streams", "V:0", "-read_intervals", interval,
                    "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0")
    keys = []
    for line in done.stdout.decode(errors="replace").splitlines():
        pts, _, flags = line.partition(",")
        try:
            at = float(pts)
        except ValueError:
            continue
        if "K" in flags and at <= time:
            keys.append(at)
    return keys


def _keyframe_before(media: io.FileIO, time: float) -> float:
    # MP4 and Matroska seek to the last keyframe before a time: one packet read says it. A
    # seek in MPEG-TS lands on any packet: then the packets of a window before ``time`` are
    # read and the last keyframe among them taken; none there (a long keyframe interval), a
    # window KEYFRAME_WIDER times as long, down to the file's start.
    found = _keyframes(media, f"{time:.6f}%+#1", time)
    if found:
        return found[0]
    back = KEYFRAME_WINDOW
    while True:
        start = max(0.0, time - back)
        found = _keyframes(media, f"{start:.6f}%{time:.6f}", time)
        if found:
            return max(found)
        if start <= 0.0:
            # none down to the start (a recording that begins between keyframes): the cut is
            # the file's start, which the caller counts from
            return 0.0
        back *= KEYFRAME_WIDER


def duration(data: dict[str, Any]) -> float | None:
    try:
        value = float(data.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def start_time(data: dict[str, Any]) -> float:
    """The file's first timestamp (0 when ffprobe gives none a cut can use)."""
    try:
        value = float(data.get("format", {}).get("start_time"))
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0


def streams(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The streams of ``kind`` ("video", "audio"). An audio file's cover (yt-dlp's
    ``--embed-thumbnail``) is a picture, not its video: one frame at the start, which made
    segments of an H.264 stream with no frame, libx264 run for each (ffmpeg's ``V``)."""
    return [s for s in data.get("streams", []) if s.get("codec_type") == kind
            and not (kind == "video" and s.get("disposition", {}).get("attached_pic"))]


def html5_mime(data: dict[str, Any], fallback: str) -> str:
    """YTPTube's choice: from ffprobe's format name, else from the file's name."""
    names = [n.strip() for n in str(data.get("format", {}).get("format_name", "")).split(",")]
    for name, mime in (("mp4", "video/mp4"), ("webm", "video/webm"),
                       ("matroska", "video/x-matroska"), ("mpegts", "video/mp2t")):
        if name in names:
            return mime
    return fallback
