"""One request's cost in two checkouts of the service, side by side.

A change to the per-request path is worth a few percent of a millisecond, less than this
machine's drift between two runs minutes apart. So both services run at once (each from its
own checkout and venv, ``--a`` and ``--b``), with ``--tasks`` tasks if the request lists them,
and blocks of BLOCK back-to-back keep-alive ``GET --path`` alternate between them (A first in
even blocks, B first in odd ones): the drift falls on both alike. Per side: the worker's CPU
per request (``/proc/<pid>/stat``, median of the blocks) and the client's p50 / p99; then
B's CPU per request over A's in each block. Figures, no goal.

    .venv/bin/python bench/side_by_side.py --a ../base --b . --path '/api/tasks?per_page=10' \\
        --tasks 500
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import time
from pathlib import Path

import common
import requests
from support.server import Server

log = logging.getLogger("bench.side_by_side")

BLOCK = 500
WARM_UP = 300


def extra_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--a", type=Path, required=True, help="checkout A (with its .venv)")
    parser.add_argument("--b", type=Path, required=True, help="checkout B (with its .venv)")
    parser.add_argument("--path", default="/api/ping", help="the request timed")
    parser.add_argument("--tasks", type=int, default=0, help="tasks each service holds")
    parser.add_argument("--blocks", type=int, default=10, help="blocks per side")


def start(stack: contextlib.ExitStack, root: Path, checkout: Path) -> Server:
    server = Server(root, {"YTP_LOG_LEVEL": "warning", "YTP_WARM_WORKERS": "0"})
    server.python = str(checkout.resolve() / ".venv" / "bin" / "python")
    stack.callback(common.stop_server, server)
    server.start()
    return server


def worker_pid(server: Server) -> int:
    """The gunicorn worker: the master's child that is not a download process."""
    assert server.proc is not None
    return next(pid for pid in common.descendants(server.proc.pid)
                if common.ppid(pid) == server.proc.pid
                and "appliance.engine." not in Path(f"/proc/{pid}/cmdline").read_text())


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0], extra_args)
    blocks = 2 if args.quick else args.blocks

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "side-by-side", args.keep)
        servers = [start(stack, root / name, checkout)
                   for name, checkout in (("a", args.a), ("b", args.b))]
        tasks = [{"name": f"feed {n}", "url": f"http://127.0.0.1:9/feeds/f{n}.rss",
                  "timer": "0 * * * *", "auto_start": False} for n in range(args.tasks)]
        sessions = [stack.enter_context(requests.Session()) for _ in servers]
        for server, session in zip(servers, sessions, strict=True):
            if tasks:
                session.post(server.url + "/api/tasks", json=tasks,
                             timeout=120).raise_for_status()
            for _ in range(WARM_UP):
                session.get(server.url + args.path, timeout=30).raise_for_status()
        workers = [worker_pid(server) for server in servers]
        cpu: list[list[float]] = [[], []]
        latency: list[list[float]] = [[], []]
        for block in range(blocks):
            for side in (0, 1) if block % 2 == 0 else (1, 0):
                url, session = servers[side].url + args.path, sessions[side]
                before = common.cpu_seconds(workers[side])
                for _ in range(BLOCK):
                    started = time.perf_counter()
                    session.get(url, timeout=30).raise_for_status()
                    latency[side].append(time.perf_counter() - started)
                cpu[side].append((common.cpu_seconds(workers[side]) - before) * 1000 / BLOCK)
        common.out(f"\nGET {args.path}, {args.tasks} tasks, {blocks} blocks of {BLOCK} a side")
        rows = []
        for side, checkout in enumerate((args.a, args.b)):
            figures = common.latency_ms(latency[side])
            rows.append(["AB"[side] + f" {checkout}", f"{statistics.median(cpu[side]):.3f}",
                         f"{min(cpu[side]):.2f}-{max(cpu[side]):.2f}", figures["p50"],
                         figures["p99"]])
        common.table(("", "CPU ms/request", "blocks", "p50 ms", "p99 ms"), rows)
        ratios = [b / a for a, b in zip(cpu[0], cpu[1], strict=True) if a]
        summary = common.Summary("side_by_side" + (" (quick)" if args.quick else ""))
        summary.info("B/A CPU per request, per block", " ".join(f"{r:.2f}" for r in ratios))
        if ratios:
            summary.info("B/A CPU per request, median", f"{statistics.median(ratios):.2f}")
        summary.print()
        return 0

    return common.run(body, 600 if args.quick else 3600, quiet_wait=10 if args.quick else 120)


if __name__ == "__main__":
    raise SystemExit(main())
