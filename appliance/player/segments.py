"""Segments made by ffmpeg, one process per request, a bounded number at once.

A segment is streamed as ffmpeg writes it; when the client goes away gunicorn closes the
answer and that kills ffmpeg. At most ``player_max_ffmpeg`` run at once (``slots.Slots``).
ffmpeg reads the file the API opened (``files.reading.open_regular``), by its descriptor.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator

from .. import errors
from ..slots import Slots
from . import source
from .playlists import EDGE, Plan

log = logging.getLogger(__name__)

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
# A segment (SEGMENT seconds of media) that takes this long is stuck: ffmpeg is killed.
SEGMENT_TIMEOUT = 120.0
CHUNK = 64 * 1024
# Of ffmpeg's errors the first bytes are read, and their last line told.
MAX_REASON = 2000
_BASE = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error"]


def segment_command(media: io.FileIO, made: Plan, index: int, encoder: str,
                    keyframe: Callable[[float], float]) -> list[str] | None:
    """ffmpeg's arguments for segment ``index``; None when a copied segment holds nothing (a
    keyframe interval longer than a segment: the next segment has its frames)."""
    start, length = made.spans[index]
    trim: list[str] = []
    if made.copy_video:
        # keyframes are on the file's clock, which starts at made.start; an input -ss counts
        # from the file's start
        origin = made.start
        # (no keyframe before a mark: the file's start, as before its first keyframe)
        first = max(origin, keyframe(origin + start + EDGE)) if index else origin
        end = max(origin, keyframe(origin + start + length + EDGE)) \
            if index + 1 < len(made.spans) else origin + start + length
        if end - first <= 2 * EDGE:
            return None
        # Seek to the keyframe itself (a hair after it), stop a hair before the next cut, and
        # drop the packets from before the keyframe that the seek brings along (the audio
        # frame across the boundary, which the previous segment has): no duplicates.
        # (An output -ss moves the timestamps back by itself; the offset puts them back.)
        seek, length = (first - origin + EDGE if index else 0.0), end - first - EDGE
        cut = f"{max(0.0, first - EDGE):.6f}"
        trim = ["-ss", cut, "-output_ts_offset", cut]
    else:
        seek = start
        if made.copy_audio and index:
            # A copied audio packet is whole: the seek brings the one across the mark along,
            # which the previous segment ends with. Packets from before the mark are dropped
            # (on the file's clock, as -copyts keeps it), so each is in one segment only.
            cut = f"{made.start + start:.6f}"
            trim = ["-ss", cut, "-output_ts_offset", cut]
    # -copyts: every segment keeps the file's own timestamps, so they follow on in a player.
    # The last segment reads to the end (a copied MPEG-TS's last packets fell past its -t).
    until = ["-t", f"{length:.6f}"] if index + 1 < len(made.spans) else []
    args = [*_BASE, "-ss", f"{seek:.6f}", *until, "-copyts",
            *source.input_args(source.url(media)), *trim, "-map_metadata", "-1"]
    if made.has_video:
        args += ["-map", "0:V:0"]  # the first video that is no cover (probe.streams)
        if made.copy_video:
            args += ["-c:v", "copy"]
        else:
            args += ["-c:v", encoder, "-pix_fmt", "yuv420p"]
            if encoder == "libx264":
                # no B-frames: decoding timestamps then start at the segment's own start
                # instead of reaching into the previous segment
                args += ["-preset", "veryfast", "-crf", "23", "-bf", "0"]
    if made.has_audio:
        args += ["-map", "0:a:0"]
        args += ["-c:a", "copy"] if made.copy_audio else ["-c:a", "aac", "-ac", "2",
                                                          "-b:a", "160k"]
    return [*args, "-sn", "-dn", "-muxdelay", "0", "-f", "mpegts", "pipe:1"]


class SegmentStream:
    """ffmpeg's output, as a WSGI body: iterating reads it, ``close`` (gunicorn calls it when
    the answer ends, the client gone or not) kills ffmpeg if it still runs and frees its slot."""

    def __init__(self, command: list[str], slots: Slots, media: io.FileIO) -> None:
        self._slots = slots
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=self._errors,
                                          pass_fds=(media.fileno(),))
        except BaseException:
            self._errors.close()
            slots.give_back()
            raise
        self._late = False
        self._timer = threading.Timer(SEGMENT_TIMEOUT, self._stop)
        self._timer.daemon = True
        self._timer.start()
        self._closed = False
        self._input = (source.url(media), os.path.basename(str(media.name)))
        # ffmpeg's first bytes before the answer starts: an ffmpeg that fails at once (an
        # encoder this machine lacks, a file it cannot cut) is a 400 saying why, not an empty
        # segment that a player waits on, its reason in the log only.
        assert self._proc.stdout is not None
        try:
            self._first = self._proc.stdout.read1(CHUNK)
            if not self._first and self._proc.wait() != 0:
                raise errors.invalid(f"ffmpeg cannot make this segment of "
                                     f"'{self._input[1]}': {self._reason()}")
        except BaseException:
            self.close()
            raise

    def _stop(self) -> None:
        self._late = True
        self._proc.kill()

    def _reason(self) -> str:
        """ffmpeg's last error line (the file named as the API names it), else its status."""
        if self._late:
            return f"it took longer than {SEGMENT_TIMEOUT:g} s."
        self._errors.seek(0)
        said = self._errors.read(MAX_REASON).decode(errors="replace").strip().splitlines()
        if not said:
            return f"it ended with status {self._proc.returncode}."
        return said[-1].replace(*self._input)

    def __iter__(self) -> Iterator[bytes]:
        assert self._proc.stdout is not None
        chunk = self._first
        while chunk:
            yield chunk
            chunk = self._proc.stdout.read1(CHUNK)
        if self._proc.wait() != 0:
            log.warning("ffmpeg failed on a segment of %s (%s): %s", self._input[1],
                        self._proc.returncode, self._reason())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._timer.cancel()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errors.close()
        self._slots.give_back()
