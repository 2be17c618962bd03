"""Idle footprint: memory and CPU of the service when nothing happens.

The server starts with YTP_WORKER_IDLE_TIMEOUT=5 and downloads one clip. Right after the
download (a warm yt-dlp process still alive) the summed RSS of every service process is taken;
then, once the pool has retired its idle processes and only the gunicorn master and worker are
left, the summed RSS again and the CPU time (utime + stime from /proc/<pid>/stat) spent by all
service processes over an idle window, as % of one core.

RSS counts pages shared by master and worker (fork) twice; PSS, which splits them, is shown too.

The service runs as under systemd: NOTIFY_SOCKET is a datagram socket this script reads and
WATCHDOG_USEC is the unit's WatchdogSec, so the worker's heartbeat (a WATCHDOG=1 every half
period, each one a round of the engine's dispatcher) runs through the idle window; the
heartbeats received are counted. --quick shortens the period to 4 s so that some fall in its
window.

Goals: idle RSS <= 80 MB (summed VmRSS of master + worker; MB = 10^6 bytes, MiB shown too);
idle CPU <= 0.5% of one core over 60 s. --quick: a 10 s idle window.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time

import common
from support.notify import NotifySocket

log = logging.getLogger("bench.footprint")

GOAL_RSS_MB = 80.0
GOAL_CPU_PCT = 0.5
IDLE_TIMEOUT = 5
WATCHDOG_SEC = 60  # systemd/appliance.service


@dataclasses.dataclass
class Snapshot:
    pids: list[int]
    rows: list[list[object]]
    rss: int  # bytes
    pss: int  # bytes


def memory(server: common.Server) -> Snapshot:
    tree = common.process_tree(server)
    roles = [("master", tree["master"]), ("worker", tree["worker"]),
             *(("yt-dlp child", p) for p in tree["children"])]
    rows: list[list[object]] = [
        [role, pid, common.status_kb(pid, "VmRSS") / 1024, common.pss_kb(pid) / 1024,
         common.status_kb(pid, "RssAnon") / 1024]
        for role, pid in roles
    ]
    pids = [pid for _, pid in roles]
    return Snapshot(pids, rows, sum(common.status_kb(p, "VmRSS") for p in pids) * 1024,
                    sum(common.pss_kb(p) for p in pids) * 1024)


def show_memory(title: str, snapshot: Snapshot) -> None:
    common.out(f"\n{title}: {len(snapshot.pids)} processes")
    common.table(("process", "pid", "RSS MiB", "PSS MiB", "anon MiB"), snapshot.rows)
    common.out(f"  total RSS {snapshot.rss / 1e6:.1f} MB ({snapshot.rss / 2**20:.1f} MiB), "
               f"PSS {snapshot.pss / 1e6:.1f} MB")


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


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    window = 10.0 if args.quick else 60.0

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "footprint", args.keep)
        origin = common.start_origin(stack, root)
        notify = NotifySocket()
        stack.callback(notify.close)
        watchdog = 4 if args.quick else WATCHDOG_SEC
        server = common.start_server(stack, root / "server", {
            "YTP_WORKER_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
            "NOTIFY_SOCKET": notify.path,
            "WATCHDOG_USEC": str(watchdog * 1_000_000),
        })
        notify.wait(lambda m: m.fields.get("READY") == "1", message="READY=1")
        fresh = memory(server)
        response = server.post("/api/history", {"url": origin.clip_url})
        response.raise_for_status()
        item = server.wait_status(response.json()[0]["id"], {"finished", "error"}, timeout=120)
        if item["status"] != "finished":
            raise RuntimeError(f"download failed: {item['error']}")
        busy = memory(server)
        common.wait_for(lambda: len(server.pids()) == 2, timeout=IDLE_TIMEOUT + 60,
                        interval=0.2, message="idle download processes to retire")
        time.sleep(1.0)  # let the retire settle (reaped pipes, logging)
        idle = memory(server)
        beats = lambda: sum(m.fields.get("WATCHDOG") == "1" for m in notify.received())  # noqa: E731
        beats_before = beats()
        cpu = idle_cpu(server, window)
        beats_idle = beats() - beats_before
        show_memory("fresh server, before any download", fresh)
        show_memory("right after one download (warm yt-dlp process alive)", busy)
        show_memory("idle, download processes retired", idle)
        common.out(f"\nidle CPU over {cpu['elapsed']:.1f} s: {cpu['cpu'] * 1000:.0f} ms "
                   f"= {cpu['pct']:.3f}% of one core")
        summary = common.Summary("footprint" + (" (quick)" if args.quick else ""))
        summary.check("idle RSS, master + worker", idle.rss / 1e6, GOAL_RSS_MB, "{:.1f}",
                      " MB")
        summary.info("idle PSS, master + worker", f"{idle.pss / 1e6:.1f} MB")
        summary.info(f"RSS after a download ({len(busy.pids)} processes)",
                     f"{busy.rss / 1e6:.1f} MB")
        summary.info("RSS fresh server", f"{fresh.rss / 1e6:.1f} MB")
        summary.check(f"idle CPU over {window:.0f} s", cpu["pct"], GOAL_CPU_PCT, "{:.3f}",
                      "% of a core")
        summary.verdict(f"watchdog heartbeats in the idle window (WatchdogSec={watchdog})",
                        str(beats_idle), f">= {int(window // (watchdog / 2)) - 1}",
                        beats_idle >= int(window // (watchdog / 2)) - 1)
        summary.verdict("processes when idle", str(len(idle.pids)), "2 (master + worker)",
                        len(idle.pids) == 2)
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300 if args.quick else 600, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
