"""The media files the local origin serves, made with the real ffmpeg (lavfi test sources):
small H.264/AAC MP4s with their moov up front, an HLS rendition, padding for big files."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
_FFMPEG_BASE = [_FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
# ultrafast keeps generation well under a second per file on a small box.
_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
_AAC = ["-c:a", "aac", "-b:a", "64k"]


def run_ffmpeg(args: list[str]) -> None:
    cmd = [*_FFMPEG_BASE, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        log.error("ffmpeg failed (%s): %s", proc.returncode, proc.stderr.strip()[-2000:])
        raise RuntimeError(f"ffmpeg failed with exit code {proc.returncode}: {' '.join(cmd)}")


def _lavfi_av(video: str, freq: int, duration: float) -> list[str]:
    return [
        *("-f", "lavfi", "-i", f"{video}:duration={duration}"),
        *("-f", "lavfi", "-i", f"sine=frequency={freq}:duration={duration}"),
    ]


def make_mp4(target: Path, video: str, freq: int, duration: float, extra: list[str]) -> None:
    run_ffmpeg(
        [
            *_lavfi_av(video, freq, duration),
            *extra,
            *_H264,
            *_AAC,
            "-shortest",
            # moov up front so a partial download is already probeable.
            *["-movflags", "+faststart"],
            str(target),
        ]
    )


def make_hls(target_dir: Path) -> None:
    run_ffmpeg(
        [
            *_lavfi_av("testsrc=size=320x240:rate=25", 550, 4),
            *_H264,
            # A keyframe every second so each 1 s segment starts cleanly.
            *["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"],
            *_AAC,
            "-shortest",
            *["-f", "hls", "-hls_time", "1", "-hls_list_size", "0", "-hls_playlist_type", "vod"],
            *("-hls_segment_filename", str(target_dir / "seg%03d.ts")),
            str(target_dir / "index.m3u8"),
        ]
    )


def free_box_header(size: int) -> bytes:
    """Header of an ISO-BMFF 'free' box of `size` bytes; top-level free boxes are legal padding."""
    if size < 2**32:
        return struct.pack(">I4s", size, b"free")
    return struct.pack(">I4sQ", 1, b"free", size)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    # Serialises generation across processes (xdist workers may share a root).
    with path.open("a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
