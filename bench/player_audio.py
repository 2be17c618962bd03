"""Player audio: the CPU one HLS segment costs ffmpeg when the file's audio is AAC, copied
(as the player does now) against encoded again to AAC (as it did before: the baseline).

The file is the sound of most YouTube downloads (an m4a: AAC, 48 kHz, stereo, 120 s); each
segment's ffmpeg command is the player's own (``segments.segment_command`` on the
``playlists.plan`` of the file's real ffprobe description), the baseline the same plan with
its audio not copied. Segments 1-4 of each, interleaved, ``ROUNDS`` times; CPU is the
children's user + system time (``getrusage``) around each ffmpeg run, output to /dev/null.

Goal: a copied segment costs <= 0.5x the CPU of an encoded one. --quick: 1 round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import resource
import subprocess
import sys

import common

sys.path.insert(0, str(common.REPO))
from appliance.player import playlists, segments
from appliance.player.probe import Prober

log = logging.getLogger("bench.player_audio")

GOAL_RATIO = 0.5
SEGMENTS = (1, 2, 3, 4)


def cpu_of(command: list[str], media_fd: int) -> float:
    """CPU seconds (user + system) of one ffmpeg run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   pass_fds=(media_fd,), timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    rounds = 1 if args.quick else 5

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "player-audio", args.keep)
        song = root / "song.m4a"
        subprocess.run([common.tool("ffmpeg"), "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                        "-i", "sine=frequency=440:duration=120:sample_rate=48000",
                        "-ac", "2", "-c:a", "aac", "-b:a", "128k", str(song)],
                       check=True, timeout=120)
        media = stack.enter_context(open(song, "rb", buffering=0))  # noqa: SIM115
        copied = playlists.plan(Prober().probe(media))
        if not copied.copy_audio:
            raise RuntimeError("the player does not copy this file's AAC")
        encoded = dataclasses.replace(copied, copy_audio=False)
        figures: dict[str, list[float]] = {"copied": [], "encoded": []}
        for round_ in range(rounds):
            for index in SEGMENTS:
                for name, made in (("copied", copied), ("encoded", encoded)):
                    command = segments.segment_command(media, made, index, "libx264",
                                                       lambda t: t)
                    assert command is not None
                    figures[name].append(cpu_of(command, media.fileno()))
            log.info("round %d of %d done", round_ + 1, rounds)
        copy_ms = common.median(figures["copied"]) * 1000
        encode_ms = common.median(figures["encoded"]) * 1000
        common.out(f"\nCPU of one {playlists.SEGMENT:g} s segment of an AAC m4a (48 kHz stereo), "
                   f"median of {len(figures['copied'])} each")
        common.table(("audio", "CPU ms (median)", "CPU ms (max)"),
                     [["copied (now)", copy_ms, max(figures["copied"]) * 1000],
                      ["encoded to AAC (before)", encode_ms, max(figures["encoded"]) * 1000]])
        summary = common.Summary("player_audio" + (" (quick)" if args.quick else ""))
        summary.info("copied segment CPU", f"{copy_ms:.1f} ms")
        summary.info("encoded segment CPU (baseline)", f"{encode_ms:.1f} ms")
        summary.check("copied / encoded CPU", copy_ms / encode_ms, GOAL_RATIO, "{:.3f}", "x")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300 if args.quick else 900, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
