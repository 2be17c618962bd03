"""ffprobe, cached by (path, size, mtime): the info endpoints, the playlists and every segment
ask about the same file again and again."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors
from . import source

log = logging.getLogger(__name__)

FFPROBE = shutil.which("ffprobe") or "ffprobe"
PROBE_TIMEOUT = 30.0
CACHED = 512


class ProbeError(errors.AppError):
    def __init__(self, message: str) -> None:
        super().__init__(message, errors.INVALID_REQUEST)


class Prober:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str, int, int], Any] = OrderedDict()

    def _cached(self, what: str, path: Path, make: Callable[[Path], Any]) -> Any:
        info = os.stat(path)
        key = (what, str(path), info.st_size, info.st_mtime_ns)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        made = make(path)
        with self._lock:
            self._cache[key] = made
            while len(self._cache) > CACHED:
                self._cache.popitem(last=False)
        return made

    def probe(self, path: Path) -> dict[str, Any]:
        """ffprobe's JSON (format, streams) for ``path``; ProbeError (400) when ffprobe cannot
        read it as media."""
        return self._cached("probe", path, _run_ffprobe)

    def keyframe(self, path: Path, time: float) -> float:
        """The time of the first video stream's last keyframe at or before ``time``: one seek
        and a few packets read (the file is never scanned whole)."""
        return self._cached(f"keyframe {time:.6f}", path,
                            lambda p: _keyframe_before(p, time))


def _ffprobe(path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [FFPROBE, "-v", "error", *args, *source.input_args(f"file:{path}")]
    try:
        return subprocess.run(command, capture_output=True, timeout=PROBE_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"ffprobe took longer than {PROBE_TIMEOUT:g} s on '{path.name}'.")\
            from None


def _run_ffprobe(path: Path) -> dict[str, Any]:
    done = _ffprobe(path, "-print_format", "json", "-show_format", "-show_streams")
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
                         f"{reason[0].replace(str(path), path.name)[:300]}")
    return data


def _keyframe_before(path: Path, time: float) -> float:
    done = _ffprobe(path, "-select_streams", "v:0", "-read_intervals", f"{time:.6f}%+#5",
                    "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0")
    for line in done.stdout.decode(errors="replace").splitlines():
        pts, _, flags = line.partition(",")
        if "K" in flags:
            try:
                return float(pts)
            except ValueError:
                break
    raise ProbeError(f"No keyframe found near {time:.3f} s in '{path.name}'.")


def duration(data: dict[str, Any]) -> float | None:
    try:
        value = float(data.get("format", {}).get("duration"))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


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
