"""ffprobe, cached by (file, size, mtime): the info endpoints, the playlists and every segment
ask about the same file again and again. A file ffprobe cannot read stays that way until it
changes: the verdict is cached too. At most PROBE_SLOTS ffprobe run at once (``slots``)."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import shutil
import subprocess
import threading
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
# The seconds before a cut searched for its keyframe first, and how much longer each next
# window is when that one has none.
KEYFRAME_WINDOW = 12.0
KEYFRAME_WIDER = 4


class ProbeError(errors.AppError):
    def __init__(self, message: str) -> None:
        super().__init__(message, errors.INVALID_REQUEST)


class ProbeTimeout(ProbeError):
    """Not cached: a busy machine may read the file in time on the next try."""


class Prober:
    def __init__(self, slots: Slots | None = None) -> None:
        self.slots = slots or Slots(
            PROBE_SLOTS, f"The player is busy ({PROBE_SLOTS} ffprobe processes); try again.")
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, int, int, int, int], Any] = OrderedDict()

    def _cached(self, what: str, media: io.FileIO, make: Callable[[io.FileIO], Any]) -> Any:
        info = os.fstat(media.fileno())
        key = (what, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
        if isinstance(found, _Failed):
            raise ProbeError(found.message)
        if found is not None:
            return found
        self.slots.take()
        try:
            made = make(media)
        except ProbeTimeout:
            raise
        except ProbeError as exc:
            made = _Failed(exc.message)
        finally:
            self.slots.give_back()
        with self._lock:
            self._cache[key] = made
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        if isinstance(made, _Failed):
            raise ProbeError(made.message)
        return made

    def probe(self, media: io.FileIO) -> dict[str, Any]:
        """ffprobe's JSON (format, streams) for ``media`` (from ``files.reading.open_regular``);
        ProbeError (400) when ffprobe cannot read it as media, 503 when every slot is busy."""
        return self._cached("probe", media, _run_ffprobe)

    def keyframe(self, media: io.FileIO, time: float) -> float:
        """The time of the first video stream's last keyframe at or before ``time``: one seek
        and a few packets read (the file is never scanned whole)."""
        return self._cached(f"keyframe {time:.6f}", media,
                            lambda m: _keyframe_before(m, time))


class _Failed:
    """A cached verdict: ffprobe cannot read this file (as it is now)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _name(media: io.FileIO) -> str:
    return Path(str(media.name)).name


def _ffprobe(media: io.FileIO, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [FFPROBE, "-v", "error", *args, *source.input_args(source.url(media))]
    try:
        return subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False,
                              pass_fds=(media.fileno(),))
    except subprocess.TimeoutExpired:
        raise ProbeTimeout(f"ffprobe took longer than {PROBE_TIMEOUT:g} s on "
                           f"'{_name(media)}'.") from None


def _run_ffprobe(media: io.FileIO) -> dict[str, Any]:
    path = Path(_name(media))
    done = _ffprobe(media, "-print_format", "json", "-show_format", "-show_streams")
    try:
        data = json.loads(done.stdout or b"{}")
    except ValueError:
        data = {}
    if done.returncode != 0 or "format" not in data:
        stderr = done.stderr.decode(errors="replace")
        if source.refused(stderr):
            raise ProbeError(f"'{path.name}' is not a playable media file (its content is "
                             "not an audio or video format the player opens).")
        reason = stderr.strip().splitlines()[-1:] or ["no output"]
        raise ProbeError(f"ffprobe cannot read '{path.name}' as media: "
                         f"{reason[0].replace(source.url(media), path.name)[:300]}")
    return data


def _keyframes(media: io.FileIO, interval: str, time: float) -> list[float]:
    """The times of the first video stream's keyframes ffprobe reads in ``interval`` (its
    ``-read_intervals``), up to ``time``."""
    done = _ffprobe(media, "-select_streams", "v:0", "-read_intervals", interval,
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
            raise ProbeError(f"No keyframe found before {time:.3f} s in '{_name(media)}'.")
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
    return [s for s in data.get("streams", []) if s.get("codec_type") == kind]


def html5_mime(data: dict[str, Any], fallback: str) -> str:
    """YTPTube's choice: from ffprobe's format name, else from the file's name."""
    names = [n.strip() for n in str(data.get("format", {}).get("format_name", "")).split(",")]
    for name, mime in (("mp4", "video/mp4"), ("webm", "video/webm"),
                       ("matroska", "video/x-matroska"), ("mpegts", "video/mp2t")):
        if name in names:
            return mime
    return fallback
