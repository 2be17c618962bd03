"""Scheduled tasks at scale: 500 tasks due in the same minute against local feeds of 50.

Each task follows its own RSS feed on the local origin (50 entries), created with
``"mark": true`` (only new entries from then on); then one new entry appears in every feed.
The service is stopped and the tasks' last runs are put an hour back, so that at the next
start all 500 are due at once (a missed hourly slot), as after a night's power cut: no
test waits for a real minute. Measured over that round:

- the time from the start until every task has run (with ``--spread``, YTP_TASKS_SPREAD:
  the service's default, 30 s, unless given; the figures of stops 29-40 took 10 s),
- how many items were queued (goal: exactly one per task),
- the peak resident memory of the service's processes (sampled every 0.25 s),
- the API's p99 (``GET /api/tasks?per_page=10``) while the round runs against its idle p99
  measured before (goal: within 2x); p95 too. The idle figure is taken over IDLE_SAMPLES
  requests: over 200 its p99 was the second slowest request and moved 2.8-7.9 ms between
  runs. The round gives several thousand (one client, back to back, for the whole round).
  The client runs in a process of its own: in this one, the origin's threads serving 500
  feeds hold the interpreter's lock, and a request's time would include waiting for it.
  The client stands for a device on another machine and the origin for the sites: neither
  takes the box's CPU in life. Here the client runs raised (``--client-niceness``, -10, in a
  session of its own) and this bench's session, the origin's, lowered (``--origin-niceness``,
  10, the downloads' place); ``0 0`` measures as before December 2026.
- the CPU time of the service's worker (where the API and the runs' bookkeeping live) from
  its start to the round's end, serving the timing client included (with ``--control``:
  the round's cost alone).

``--control`` times, instead of the service, a second instance of it that runs nothing (its
own 500 tasks on a timer of next year), in the same round: how much of the tail is the box's
(two cores shared by the round's download processes, the worker, this bench's origin and its
client), not the service's. No goal applies to that run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import common
import requests
from support.feeds import FeedEntry

from appliance.setting_fields import FIELDS

log = logging.getLogger("bench.tasks_scale")

GOAL_RATIO = 2.0
IDLE_SAMPLES = 2000
SPAWN = multiprocessing.get_context("spawn")


def feed_entries(origin: common.MediaOrigin, feed: int, count: int) -> list[FeedEntry]:
    return [FeedEntry(id=f"{feed}-{n}", url=f"{origin.clip_url}?feed={feed}&entry={n}",
                      title=f"feed {feed} entry {n}") for n in range(count)]


def timed(session: requests.Session, url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, timeout=30).raise_for_status()
        samples.append(time.perf_counter() - started)
    return samples


def stand_apart(niceness: int) -> int:
    """Put the client's process in a session of its own at ``niceness``; the niceness it got.

    The client stands for a phone or Home Assistant on another machine, whose CPU the round
    does not take: at the box's own place in the queue (the kernel shares the CPU between
    sessions first), its own wake-ups waited behind the round, and an idle second instance
    timed that way missed 2x as well (``--control``). Raising a place needs root
    (CAP_SYS_NICE); without it the client stays where it is and the summary says so."""
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as session:
            session.write(str(niceness))
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError as exc:
        log.warning("the client keeps the box's place (%s): the round's tail includes it", exc)
    return os.getpriority(os.PRIO_PROCESS, 0)


@contextlib.contextmanager
def origin_below(niceness: int) -> Iterator[str]:
    """This process's session (the origin's threads, this bench's polls) at ``niceness`` while
    it runs; what it got, said for the summary.

    The origin stands for the sites, whose CPU is not the box's: at the box's own place it
    took the service's turns to serve 500 feeds and the downloads. The kernel shares the CPU
    between sessions first (autogroup): the session's niceness is what counts, not the
    threads'. The service and the client run in sessions of their own; the shell that
    started this bench shares its session and is put back when it ends."""
    autogroup = Path("/proc/self/autogroup")
    try:
        before = int(autogroup.read_text().rsplit("nice", 1)[1])
        autogroup.write_text(str(niceness))
    except (OSError, ValueError, IndexError) as exc:
        log.warning("the origin keeps the box's place (%s): the round's tail includes it", exc)
        yield "unchanged"
        return
    try:
        yield str(niceness)
    finally:
        with contextlib.suppress(OSError):
            autogroup.write_text(str(before))


def time_requests(url: str, count: int, niceness: int, stop: Event, results: Connection
                  ) -> None:
    """In the client's process: ``count`` timed requests (0: until ``stop``), sent back
    after the niceness it ran at."""
    results.send(stand_apart(niceness))
    samples: list[float] = []
    with requests.Session() as session:
        timed(session, url, 50)  # warm-up
        while len(samples) < count if count else not stop.is_set():
            samples.extend(timed(session, url, 1))
    results.send(samples)


class Client:
    """A process timing ``GET url`` back to back."""

    def __init__(self, url: str, niceness: int, count: int = 0) -> None:
        self.stop = SPAWN.Event()
        self.results, sending = SPAWN.Pipe(duplex=False)
        self.process = SPAWN.Process(target=time_requests, name="api-client", daemon=True,
                                     args=(url, count, niceness, self.stop, sending))
        self.process.start()
        sending.close()
        self.niceness: int = self.results.recv()

    def samples(self) -> list[float]:
        """Its samples, once it has made its count (or, without one, stops now)."""
        self.stop.set()
        samples = self.results.recv()
        self.process.join(timeout=30)
        return samples


def rss_kb(server: common.Server) -> int:
    total = 0
    for pid in server.pids():
        with contextlib.suppress(OSError, ValueError):
            total += common.status_kb(pid, "VmRSS")
    return total


def create_tasks(session: requests.Session, server: common.Server, origin: common.MediaOrigin,
                 count: int, timer: str, mark: bool) -> None:
    for feed in range(count):
        session.post(server.url + "/api/tasks", json={
            "name": f"feed {feed}", "url": f"{origin.base_url}/feeds/f{feed}.rss",
            "timer": timer, "auto_start": False, "mark": mark}, timeout=60).raise_for_status()


def main() -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--control", action="store_true", help=(
            "time an idle second instance during the round instead of the service"))
        parser.add_argument("--client-niceness", type=int, default=-10, help=(
            "the timing client's niceness, in a session of its own (default -10: a device "
            "on another machine; 0: the box's place, as before December 2026)"))
        parser.add_argument("--origin-niceness", type=int, default=10, help=(
            "this bench's session's niceness (its origin stands for the sites; default 10: "
            "below the service, as the downloads; 0: the box's place, as before December "
            "2026)"))
        parser.add_argument("--spread", type=float, default=next(
            f.default for f in FIELDS if f.name == "tasks_spread"), help=(
            "YTP_TASKS_SPREAD, seconds (default: the service's)"))

    args = common.parse_args(__doc__.splitlines()[0], extra)
    tasks, per_feed = (50, 10) if args.quick else (500, 50)

    def body(stack: contextlib.ExitStack) -> int:
        origin_place = stack.enter_context(origin_below(args.origin_niceness))
        root = common.temp_root(stack, "tasks", args.keep)
        origin = common.start_origin(stack, root)
        for feed in range(tasks):
            origin.feeds.set(f"f{feed}", feed_entries(origin, feed, per_feed))
        env = {"YTP_TASKS_SPREAD": f"{args.spread:g}", "YTP_WARM_WORKERS": "1"}
        server = common.start_server(stack, root / "server", env)
        session = stack.enter_context(requests.Session())
        timed_server = server
        if args.control:
            timed_server = common.start_server(stack, root / "control", env)
            create_tasks(session, timed_server, origin, tasks, "0 0 1 1 *", mark=False)
        api = timed_server.url + "/api/tasks?per_page=10"
        started = time.perf_counter()
        create_tasks(session, server, origin, tasks, "0 * * * *", mark=True)
        log.info("%d tasks created and marked in %.1f s", tasks, time.perf_counter() - started)
        for feed in range(tasks):
            origin.feeds.add(f"f{feed}", FeedEntry(
                id=f"{feed}-new", url=f"{origin.clip_url}?feed={feed}&entry=new"))
        idle_client = Client(api, args.client_niceness, IDLE_SAMPLES)
        idle = common.latency_ms(idle_client.samples())
        common.stop_server(server)
        with sqlite3.connect(server.root / "config" / "appliance.db") as db:
            db.execute("UPDATE tasks SET last_run_at = ?", (time.time() - 3600,))
        round_started = time.perf_counter()
        server.start()
        client = Client(api, args.client_niceness)
        peak = [0]
        done = threading.Event()

        def memory() -> None:
            while not done.wait(0.25):
                with contextlib.suppress(Exception):
                    peak[0] = max(peak[0], rss_kb(server))

        sampler = common.background(memory, "rss")

        def finished() -> dict[str, Any] | None:
            body = session.get(server.url + "/api/executions", params={
                "per_page": 1, "status": "running"}, timeout=30).json()
            ran = session.get(server.url + "/api/executions", params={"per_page": 1},
                              timeout=30).json()["pagination"]["total"]
            return ran if body["pagination"]["total"] == 0 and ran >= tasks else None

        try:
            common.wait_for(finished, timeout=1200, interval=0.5, message="the round")
            round_seconds = time.perf_counter() - round_started
            worker_cpu = common.cpu_seconds(common.process_tree(server)["worker"] or 0)
        finally:
            done.set()
            sampler.join(timeout=30)
            samples = client.samples()
        executions = session.get(server.url + "/api/executions",
                                 params={"per_page": 1000}, timeout=30).json()["items"]
        startup = [e for e in executions if e["trigger"] == "startup"]
        queued = sum(e["queued"] for e in startup)
        failed = sum(1 for e in startup if e["status"] != "success")
        during = common.latency_ms(samples)
        summary = common.Summary("tasks_scale" + (" (quick)" if args.quick else "")
                                 + (" (control: the API of an idle instance)" if args.control
                                    else ""))
        common.out(f"\n{tasks} tasks, feeds of {per_feed} (+1 new each), spread {args.spread:g} s")
        common.table(("", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests"), [
            [name, figures["p50"], figures["p95"], figures["p99"], figures["max"], figures["n"]]
            for name, figures in (("API idle", idle), ("API during the round", during))])
        summary.info("the timing client's niceness (idle, round)",
                     f"{idle_client.niceness}, {client.niceness}")
        summary.info("the origin's session's niceness", origin_place)
        summary.info("round (start to every task run)", f"{round_seconds:.1f} s")
        summary.info("peak RSS of the service's processes", f"{peak[0] / 1024:.0f} MiB")
        summary.info("the worker's CPU, start to the round's end", f"{worker_cpu:.1f} s")
        summary.verdict("runs at start-up", str(len(startup)), str(tasks),
                        len(startup) == tasks)
        summary.verdict("items queued", str(queued), str(tasks), queued == tasks)
        summary.verdict("failed runs", str(failed), "0", failed == 0)
        summary.info("API p95 during / idle",
                     f"{during['p95'] / max(idle['p95'], 1e-9):.2f}x")
        ratio = during["p99"] / max(idle["p99"], 1e-9)
        if args.control:
            summary.info("idle instance's API p99 during / idle", f"{ratio:.2f}x")
        else:
            summary.check("API p99 during / idle", ratio, GOAL_RATIO, "{:.2f}", "x")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 900 if args.quick else 2400, quiet_wait=10 if args.quick else 120)


if __name__ == "__main__":
    raise SystemExit(main())
