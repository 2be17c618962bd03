"""A segment whose ffmpeg fails or stalls once its answer has begun, and a client that reads a
segment slowly. In process, on real files and the real ffmpeg, the body read as a server reads
it (``tests/test_player.py`` breaks one off through gunicorn).

The answer of a failed segment must break off, never end as if whole: a player would play the
part as the segment, and a browser keep it for a year (its URL names its file's version). And
the bound on ffmpeg's time counts only the time ffmpeg keeps the answer waiting: a client that
takes its time over a big segment gets all of it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import falcon
import pytest
from conftest import runtime_of_module
from falcon.testing import create_environ

from appliance.api.app import create_app
from appliance.player import segments
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

# Lossless noise: one copied segment of megabytes, far more than a pipe holds, so ffmpeg waits
# on its reader. No keyframe but the first: 3 s, one segment.
NOISE = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=size=320x240:rate=25", "-t", "3", "-vf", "noise=alls=100:allf=t",
         "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"]
URL = "/api/player/segments/0/noise.mp4.ts"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, falcon.App]]:
    for runtime in runtime_of_module(tmp_path_factory, "player-breaks"):
        subprocess.run([*NOISE, str(runtime.settings.download_path / "noise.mp4")],
                       check=True, timeout=120)
        yield runtime, create_app(runtime)


def answer(app: falcon.App) -> tuple[str, Iterable[bytes]]:
    """The segment's status and body, not yet read (as a WSGI server holds them)."""
    said: list[str] = []
    body = app(create_environ(path=URL), lambda status, headers, exc=None: said.append(status))
    return said[0], body


def ffmpegs() -> list[int]:
    """This process's ffmpeg children."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(") ")
        if name == "ffmpeg" and int(rest.split()[1]) == os.getpid():
            found.append(int(pid))
    return found


def test_a_slow_reader_gets_the_whole_segment(app: tuple[Runtime, falcon.App],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that takes longer than SEGMENT_TIMEOUT over a big segment (a phone on a weak
    link; the server's pacing bounds how slow it may be): ffmpeg waits on it, it does not
    keep it waiting. Before, ffmpeg was killed SEGMENT_TIMEOUT after it started, and the
    client got the segment's start as the whole of it."""
    runtime, wsgi = app
    whole, body = answer(wsgi)
    assert whole.startswith("200")
    expected = b"".join(body)
    body.close()  # type: ignore[attr-defined]
    assert len(expected) > 1024 * 1024
    monkeypatch.setattr(segments, "SEGMENT_TIMEOUT", 1.0)
    status, body = answer(wsgi)
    assert status.startswith("200")
    try:
        chunks = iter(body)
        got = next(chunks)
        # the pace of the client under test, not a wait for the service: it reads nothing
        # for twice SEGMENT_TIMEOUT (ffmpeg fills its pipe in a moment, and waits)
        time.sleep(2 * segments.SEGMENT_TIMEOUT)
        got += b"".join(chunks)
    finally:
        body.close()  # type: ignore[attr-defined]
    assert got == expected
    assert runtime.player.slots.taken == 0


def signalled_midway(wsgi: falcon.App, sig: signal.Signals
                     ) -> tuple[segments.SegmentBroken, Iterable[bytes]]:
    """The break of a segment whose ffmpeg gets ``sig`` once the answer has begun, and the
    answer (closed)."""
    status, body = answer(wsgi)
    assert status.startswith("200")
    try:
        chunks = iter(body)
        next(chunks)
        [pid] = ffmpegs()
        os.kill(pid, sig)
        with pytest.raises(segments.SegmentBroken) as broken:
            for _ in chunks:
                pass
    finally:
        body.close()  # type: ignore[attr-defined]
    return broken.value, body


def test_an_ffmpeg_that_stalls_midway_is_stopped_and_the_answer_broken_off(
        app: tuple[Runtime, falcon.App], monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg sends the segment's start and then nothing (its disk stalls: here, stopped with
    SIGSTOP): killed once it has kept the answer waiting SEGMENT_TIMEOUT, and the answer
    broken off with the reason, its slot given back."""
    runtime, wsgi = app
    monkeypatch.setattr(segments, "SEGMENT_TIMEOUT", 1.0)
    broken, _ = signalled_midway(wsgi, signal.SIGSTOP)
    assert str(broken) == "ffmpeg failed on a segment of noise.mp4 (-9): it took longer than 1 s."
    assert runtime.player.slots.taken == 0 and not ffmpegs()


def test_an_ffmpeg_killed_midway_breaks_the_answer_off(
        app: tuple[Runtime, falcon.App]) -> None:
    """ffmpeg killed while it makes the segment (the kernel's out-of-memory killer on a Pi):
    the answer breaks off with ffmpeg's status (a ``ResponseAborted``: the worker closes the
    connection without the body's end); before, it ended as if the part were the segment.
    Closed again, the answer gives nothing back twice."""
    runtime, wsgi = app
    broken, body = signalled_midway(wsgi, signal.SIGKILL)
    assert str(broken) == ("ffmpeg failed on a segment of noise.mp4 (-9): it ended with "
                           "status -9.")
    assert runtime.player.slots.taken == 0
    body.close()  # type: ignore[attr-defined]  # again: its place is given back once
    assert runtime.player.slots.taken == 0
