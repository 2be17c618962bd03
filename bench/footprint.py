"""Footprint: memory of the service over a day's typical minutes, and CPU when nothing happens.

A timeline, default settings (zeroconf on: it announces on loopback, where the server
listens), RSS and PSS summed over every process of the service (gunicorn master and worker,
the yt-dlp zygote, the download processes):

1. 30 s after start (the zygote ready);
2. during 3 parallel downloads (the origin's trickled clip, ~8 s each): the peak of samples
   taken every 0.5 s;
3. 10 s and 60 s after the last one finished;
4. idle, once the pool has retired its processes (YTP_WORKER_LINGER after the last download;
   master + worker left).

Then the CPU time (utime + stime from /proc/<pid>/stat) of all service processes over an idle
window, as % of one core, with the service run as under systemd: NOTIFY_SOCKET is a datagram
socket this script reads and WATCHDOG_USEC the unit's WatchdogSec, so the worker's heartbeat
(a WATCHDOG=1 every half period, each one a round of the engine's dispatcher) runs through it.

The same timeline runs against YTPTube when one is given (``--ytptube-url`` and the pid of its
process, ``--ytptube-pid``; started by hand with the same origin reachable); otherwise its
column is skipped, and the report says so.

Last, where the machine lets this script make a memory cgroup (v2 ``memory.max``, v1
``memory.limit_in_bytes``): a fresh server inside a 256 MiB one runs the 3 parallel downloads;
no OOM kill, all finished. When it cannot, the report says why.

RSS counts pages shared between processes (fork, copy-on-write) once per process; PSS splits
them among the processes that share them. MB = 10^6 bytes.

Goals: idle RSS <= 80 MB and idle CPU <= 0.5% of one core over 60 s; within 30 s of the last
download (the 10 s moment) <= 80 MB RSS and <= 60 MB PSS; PSS during the downloads <= 1.5x the
idle PSS at 30 s plus the download buffers (DOWNLOAD_BUFFERS); in the cgroup, no OOM kill.
--quick: moments at 5 s / 2 s / 5 s with a linger of 1 s (the 2 s moment is past it, as the
10 s one is past the default 5 s), a 10 s idle window, 4 s watchdog.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
import requests
from memcg import MemoryCgroup
from support.notify import NotifySocket

log = logging.getLogger("bench.footprint")

GOAL_RSS_MB = 80.0
GOAL_AFTER_PSS_MB = 60.0
GOAL_CPU_PCT = 0.5
WATCHDOG_SEC = 60  # systemd/appliance.service
PARALLEL = 3
DOWNLOAD_SECONDS = 8
# Per download: yt-dlp reads blocks of up to 4 MiB (and the socket's buffers hold a few more).
DOWNLOAD_BUFFERS = PARALLEL * 8 * 2**20
CGROUP_LIMIT = 256 * 2**20
RETIRE_WAIT = 180.0


@dataclasses.dataclass
class Snapshot:
    rows: list[list[object]]
    rss: int  # bytes
    pss: int  # bytes

    @property
    def count(self) -> int:
        return len(self.rows)


def role(pid: int, master: int) -> str:
    if pid == master:
        return "master"
    if common.ppid(pid) == master:
        return "worker"
    if b"--zygote" in _cmdline(pid):
        # A forked download process keeps its zygote's command line.
        return "yt-dlp (forked)" if b"--zygote" in _cmdline(common.ppid(pid) or 0) \
            else "zygote"
    return "yt-dlp (spawned)" if b"appliance.engine." in _cmdline(pid) else "other"


def _cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def memory(pids: list[int]) -> Snapshot:
    rows: list[list[object]] = [
        [role(pid, pids[0]), pid, common.status_kb(pid, "VmRSS") / 1024,
         common.pss_kb(pid) / 1024, common.status_kb(pid, "RssAnon") / 1024]
        for pid in pids
    ]
    return Snapshot(rows, sum(common.status_kb(p, "VmRSS") for p in pids) * 1024,
                    sum(common.pss_kb(p) for p in pids) * 1024)


def show_memory(title: str, snapshot: Snapshot) -> None:
    common.out(f"\n{title}: {snapshot.count} processes")
    common.table(("process", "pid", "RSS MiB", "PSS MiB", "anon MiB"), snapshot.rows)
    common.out(f"  total RSS {snapshot.rss / 1e6:.1f} MB ({snapshot.rss / 2**20:.1f} MiB), "
               f"PSS {snapshot.pss / 1e6:.1f} MB ({snapshot.pss / 2**20:.1f} MiB)")


class External:
    """A service this script did not start (YTPTube): its API and its process tree."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.root, self.session = url.rstrip("/"), pid, requests.Session()

    def pids(self) -> list[int]:
        return [self.root, *common.descendants(self.root)]

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=30)

    def item(self, item_id: str) -> dict[str, Any]:
        return self.session.get(f"{self.url}/api/history/{item_id}", timeout=30).json()


Service = common.Server | External


def start_downloads(service: Service, origin: common.MediaOrigin, tag: str) -> list[str]:
    """PARALLEL trickled downloads of the clip at once; their ids."""
    size = origin.path_for(origin.slow_url).stat().st_size
    url = origin.slow_url_at(max(1, size // DOWNLOAD_SECONDS))
    response = service.post("/api/history", [
        {"url": url, "template": f"{tag}-{n}.%(ext)s"} for n in range(PARALLEL)])
    response.raise_for_status()
    return [item["id"] for item in response.json()]


def finished(service: Service, ids: list[str]) -> bool:
    items = [service.item(i) for i in ids]
    failed = [i for i in items if i.get("status") == "error"]
    if failed:
        raise RuntimeError(f"download failed: {failed[0].get('error') or failed[0]}")
    return all(i.get("status") == "finished" for i in items)


def peak_while(pids: Callable[[], list[int]], done: Callable[[], bool]) -> Snapshot:
    """The snapshot with the highest PSS among those taken every 0.5 s until ``done``."""
    peak = memory(pids())
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.5):
            snapshot = memory(pids())
            if snapshot.pss > peak.pss:
                peak = snapshot

    sampler = common.background(sample, "sampler")
    try:
        common.wait_for(done, timeout=300, interval=0.5, message="the downloads to finish")
    finally:
        stop.set()
        sampler.join()
    return peak


@dataclasses.dataclass
class Moments:
    """Seconds between the moments of the timeline."""

    after_start: float
    first_after: float
    second_after: float


def timeline(service: Service, origin: common.MediaOrigin, moments: Moments,
             started: float) -> dict[str, Snapshot]:
    shots: dict[str, Snapshot] = {}
    time.sleep(max(0.0, started + moments.after_start - time.monotonic()))
    shots[f"{moments.after_start:g} s after start"] = memory(service.pids())
    ids = start_downloads(service, origin, "t")
    shots[f"during {PARALLEL} parallel downloads (peak PSS)"] = peak_while(
        service.pids, lambda: finished(service, ids))
    done = time.monotonic()
    for after in (moments.first_after, moments.second_after):
        time.sleep(max(0.0, done + after - time.monotonic()))
        shots[f"{after:g} s after they finished"] = memory(service.pids())
    # The pool retires its processes the linger after the last use; the service's own
    # processes (master + worker) remain. YTPTube keeps one process.
    common.wait_for(lambda: len(service.pids()) <= 2, timeout=RETIRE_WAIT,
                    interval=0.5, message="idle download processes to retire")
    shots["idle (download processes retired)"] = memory(service.pids())
    return shots


def idle_cpu(server: common.Server, seconds: float) -> dict[str, float]:
    pids = server.pids()
    before = {p: common.cpu_seconds(p) for p in pids}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    after_pids = server.pids()
    after = {p: common.cpu_seconds(p) for p in after_pids}
    if set(after_pids) != set(pids):
        log.warning("the process set changed during the idle window: %s -> %s", pids,
                    after_pids)
    used = sum(after.get(p, 0.0) - before.get(p, 0.0) for p in set(pids) | set(after_pids))
    return {"cpu": used, "elapsed": elapsed, "pct": 100 * used / elapsed}


def in_cgroup(stack: contextlib.ExitStack, root: Path, origin: common.MediaOrigin
              ) -> tuple[str, bool]:
    """The 3 parallel downloads by a fresh server inside a 256 MiB memory cgroup."""
    group = MemoryCgroup.make(f"bench-footprint-{os.getpid()}", CGROUP_LIMIT)
    if isinstance(group, str):
        return f"not run: {group}", True
    stack.callback(group.remove)
    root.mkdir(parents=True)
    server = common.Server(root, {"YTP_LOG_LEVEL": "warning"})
    server.python = group.wrapper(root, server.python)
    stack.callback(common.stop_server, server)
    server.start()
    ids = start_downloads(server, origin, "cg")
    peak = peak_while(server.pids, lambda: finished(server, ids))
    kills = group.oom_kills()
    return (f"{PARALLEL} downloads finished, {kills} OOM kill(s), cgroup peak "
            f"{group.peak() / 2**20:.0f} MiB (page cache included), service PSS peak "
            f"{peak.pss / 2**20:.0f} MiB", kills == 0)


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ytptube-url", help="a running YTPTube to run the timeline against")
    parser.add_argument("--ytptube-pid", type=int, help="the pid of that YTPTube's process")


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], extra_args)
    moments = Moments(5, 2, 5) if args.quick else Moments(30, 10, 60)
    window = 10.0 if args.quick else 60.0

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "footprint", args.keep)
        origin = common.start_origin(stack, root)
        notify = NotifySocket()
        stack.callback(notify.close)
        watchdog = 4 if args.quick else WATCHDOG_SEC
        started = time.monotonic()
        server = common.start_server(stack, root / "server", {
            # Test servers stay off the LAN; this one announces itself, on loopback.
            "YTP_ZEROCONF": "true",
            **({"YTP_WORKER_LINGER": "1"} if args.quick else {}),
            "NOTIFY_SOCKET": notify.path,
            "WATCHDOG_USEC": str(watchdog * 1_000_000),
        })
        notify.wait(lambda m: m.fields.get("READY") == "1", message="READY=1")
        shots = timeline(server, origin, moments, started)
        theirs: dict[str, Snapshot] = {}
        if args.ytptube_url and args.ytptube_pid:
            theirs = timeline(External(args.ytptube_url, args.ytptube_pid), origin,
                              moments, time.monotonic() - moments.after_start)
        beats = lambda: sum(m.fields.get("WATCHDOG") == "1" for m in notify.received())  # noqa: E731
        beats_before = beats()
        cpu = idle_cpu(server, window)
        beats_idle = beats() - beats_before
        cgroup, cgroup_ok = ("not run with --quick", True) if args.quick else in_cgroup(
            stack, root / "cgroup", origin)

        for title, snapshot in shots.items():
            show_memory(title, snapshot)
        common.out("\ntimeline, summed over all processes (MiB):")
        header = ["moment", "appliance RSS", "appliance PSS"]
        if theirs:
            header += ["YTPTube RSS", "YTPTube PSS"]
        common.table(header, [
            [title, shot.rss / 2**20, shot.pss / 2**20,
             *((theirs[title].rss / 2**20, theirs[title].pss / 2**20) if theirs else ())]
            for title, shot in shots.items()])
        if not theirs:
            common.out("  YTPTube: not on this machine (no --ytptube-url / --ytptube-pid "
                       "given); its column is skipped")
        common.out(f"\nidle CPU over {cpu['elapsed']:.1f} s: {cpu['cpu'] * 1000:.0f} ms "
                   f"= {cpu['pct']:.3f}% of one core")
        common.out(f"256 MiB cgroup: {cgroup}")

        titles = list(shots)
        fresh, during, after, idle = (shots[titles[0]], shots[titles[1]], shots[titles[2]],
                                      shots[titles[-1]])
        summary = common.Summary("footprint" + (" (quick)" if args.quick else ""))
        summary.check("idle RSS, download processes retired", idle.rss / 1e6, GOAL_RSS_MB,
                      "{:.1f}", " MB")
        summary.check(f"RSS {titles[2]}", after.rss / 1e6, GOAL_RSS_MB, "{:.1f}", " MB")
        summary.check(f"PSS {titles[2]}", after.pss / 1e6, GOAL_AFTER_PSS_MB, "{:.1f}",
                      " MB")
        summary.check(f"PSS during {PARALLEL} downloads", during.pss / 1e6,
                      (1.5 * fresh.pss + DOWNLOAD_BUFFERS) / 1e6, "{:.1f}", " MB")
        for title in titles if theirs else ():
            summary.verdict(f"PSS {title} vs YTPTube",
                            f"{shots[title].pss / 2**20:.0f} MiB",
                            f"<= {theirs[title].pss / 2**20:.0f} MiB",
                            shots[title].pss <= theirs[title].pss)
        summary.check(f"idle CPU over {window:.0f} s", cpu["pct"], GOAL_CPU_PCT, "{:.3f}",
                      "% of a core")
        summary.verdict(f"watchdog heartbeats in the idle window (WatchdogSec={watchdog})",
                        str(beats_idle), f">= {int(window // (watchdog / 2)) - 1}",
                        beats_idle >= int(window // (watchdog / 2)) - 1)
        summary.verdict("processes when idle", str(idle.count), "2 (master + worker)",
                        idle.count == 2)
        summary.verdict(f"{PARALLEL} downloads in a 256 MiB cgroup", cgroup.split(",")[0],
                        "no OOM kill", cgroup_ok)
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 400 if args.quick else 900, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
