"""Segments made by ffmpeg, one process per request, a bounded number at once.

A segment is streamed as ffmpeg writes it; when the client goes away gunicorn closes the
answer and that kills ffmpeg. At most ``player_max_ffmpeg`` run at once (``slots.Slots``).
ffmpeg reads the file the API opened (``files.reading.open_regular``), by its descriptor.

An ffmpeg that fails once the answer has begun (killed by the kernel's out-of-memory killer on
a small box, stopped at SEGMENT_TIMEOUT, a read error of its disk) breaks the answer off
(``SegmentBroken``): the chunked body never ends, so a player sees a failed segment and asks
again. Ended as if whole, the part was played as the segment, and a browser kept it for a year
(the segment's URL names its file's version: ``api.player.KEPT``).
"""

from __future__ import annotations

import io
import math
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

from .. import errors
from ..http_pacing import ResponseAborted
from ..slots import Slots
from . import source
from .playlists import EDGE, Plan

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
# A segment (SEGMENT seconds of media) that keeps its answer waiting this long in all is stuck:
# ffmpeg is killed.
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


class SegmentBroken(ResponseAborted):
    """ffmpeg failed after the segment's first bytes were sent: the worker closes the
    connection without the body's end, and logs this text."""


class SegmentStream:
    """ffmpeg's output, as a WSGI body: iterating reads it, ``close`` (gunicorn calls it when
    the answer ends, the client gone or not) kills ffmpeg if it still runs and frees its slot."""

    def __init__(self, command: list[str], slots: Slots, media: io.FileIO) -> None:
        self._slots = slots
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            # unbuffered: what ffmpeg wrote is in the pipe, where ``_read`` polls for it
            self._proc = subprocess.Popen(command, bufsize=0, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=self._errors,
                                          pass_fds=(media.fileno(),))
        except BaseException:
            self._errors.close()
            slots.give_back()
            raise
        self._late = False
        # The seconds ffmpeg may keep the answer waiting, in all. The time the client takes
        # to read (ffmpeg blocked on its full pipe meanwhile) is not counted: a phone on a
        # weak link reading a big segment was cut off SEGMENT_TIMEOUT after ffmpeg started
        # (the server's pacing bounds how slow a client may be).
        self._left = SEGMENT_TIMEOUT
        self._closed = False
        self._input = (source.url(media), os.path.basename(str(media.name)))
        assert self._proc.stdout is not None
        self._output = select.poll()
        self._output.register(self._proc.stdout, select.POLLIN)
        # ffmpeg's first bytes before the answer starts: an ffmpeg that fails at once (an
        # encoder this machine lacks, a file it cannot cut) is a 400 saying why, not an empty
        # segment that a player waits on, its reason in the log only.
        try:
            self._first = self._read()
            if not self._first and self._proc.wait() != 0:
                raise errors.invalid(f"ffmpeg cannot make this segment of "
                                     f"'{self._input[1]}': {self._reason()}")
        except BaseException:
            self.close()
            raise

    def _read(self) -> bytes:
        """ffmpeg's next bytes, b"" once it has ended; killed when it has kept the answer
        waiting SEGMENT_TIMEOUT seconds in all (the pipe then ends)."""
        assert self._proc.stdout is not None
        started = time.monotonic()
        ready = self._output.poll(max(0, math.ceil(self._left * 1000)))
        self._left -= time.monotonic() - started
        if not ready:
            self._late = True
            self._proc.kill()
        return self._proc.stdout.read(CHUNK)

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
            chunk = self._read()
        if self._proc.wait() != 0:
            raise SegmentBroken(f"ffmpeg failed on a segment of {self._input[1]} "
                                f"({self._proc.returncode}): {self._reason()}")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._errors.close()
        self._slots.give_back()
