"""Memory held for websocket clients that stopped reading, with and without the sidecar's
budget for them all (``YTP_WS_BACKLOG_BUDGET``).

Each of two runs, in a fresh process of its own: the real websocket sidecar (the service's
``WebsocketServer`` in front of the tests' stand-in service) on 127.0.0.1, ``--clients``
sockets that finish their handshake and never read again (4 KiB receive buffers), one client
that reads everything, then ``--events`` state events of 1 KiB published on the bus. Figures:
the process's resident memory grown from before the events to its peak (VmHWM), what the
budget counted, what the kernel holds queued in the server's sockets at the end (``ss``:
outside the process and its budget), the stalled sockets closed, and whether the reader got
every event. The first
run has no budget (the per-client caps only: 10,000 state frames or 16 MiB each), the second
the default one.

    .venv/bin/python bench/ws_backlog.py [--quick] [--clients N] [--events N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common
from common import Summary, mib, out, table

log = logging.getLogger("bench")

FRAME_PAD = "x" * 1000  # ~1 KiB events


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


_WMEM_QUEUED = re.compile(r"skmem:\([^)]*\bw(\d+)")


def _kernel_queued(port: int) -> int:
    """Bytes the kernel holds queued to send on the server's sockets of ``port`` (``ss``'s
    ``wmem_queued``): what the process handed over, outside its budget."""
    listed = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                            capture_output=True, text=True, check=True).stdout
    return sum(int(n) for n in _WMEM_QUEUED.findall(listed))


def _stalled(port: int, count: int) -> list[socket.socket]:
    from support.ws_sidecar import upgrade_request

    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", port))
        sock.sendall(upgrade_request())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)
        if not answer.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {answer[:80]!r}")
        sockets.append(sock)
    return sockets


def child(mode: str, clients: int, events: int) -> dict[str, Any]:
    """One run (in its own process): the figures as a dict."""
    from support.server import wait_for
    from support.ws_sidecar import FakeService
    from websockets.sync.client import connect

    from appliance.config import load_settings
    from appliance.events import EventBus
    from appliance.ws import WebsocketServer

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * clients + 256)), hard))
    folder = tempfile.mkdtemp(prefix="bench-ws-backlog-")
    settings = load_settings(environ={"YTP_CONFIG_PATH": folder, "YTP_HOST": "127.0.0.1",
                                      "YTP_TRUSTED_PROXIES": "127.0.0.0/8"})
    bus = EventBus()
    # "none": no total (the per-client caps only, as before the budget); else the default
    budget = 2**62 if mode == "none" else None
    server = WebsocketServer(settings, bus, FakeService(bus), port=0,
                             max_connections=clients + 16, backlog_budget=budget)
    server.start()
    stalled: list[socket.socket] = []
    try:
        stalled = _stalled(server.port, clients)
        got = 0
        done = threading.Event()

        def read_all() -> None:
            nonlocal got
            with connect(f"ws://127.0.0.1:{server.port}/ws", max_queue=None) as reader:
                for raw in reader:
                    if '"filler"' in str(raw):
                        got += 1
                        if got == events:
                            done.set()
                            return

        reader = threading.Thread(target=read_all, name="reader", daemon=True)
        reader.start()
        wait_for(lambda: len(server.client_stats()) == clients + 1, timeout=60)
        rss_before = _status_kb("VmRSS")
        started = time.monotonic()
        for n in range(events):
            bus.publish("filler", {"n": n, "pad": FRAME_PAD})
        if not done.wait(timeout=1800):
            raise RuntimeError(f"the reader got {got} of {events} events")
        took = time.monotonic() - started
        kernel = _kernel_queued(server.port)
        stats = server.client_stats()
        return {
            "mode": mode, "clients": clients, "events": events,
            "rss_before_kb": rss_before, "rss_peak_kb": _status_kb("VmHWM"),
            "rss_after_kb": _status_kb("VmRSS"),
            "budget_limit": server.budget.limit, "budget_held": server.budget.held,
            "closed_by_budget": server.budget.closed,
            "stalled_left": sum(1 for s in stats if not s["closing"]) - 1,
            "reader_got": got, "seconds": round(took, 1), "kernel_queued": kernel,
        }
    finally:
        for sock in stalled:
            sock.close()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small, fast version")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--child", choices=("none", "budget"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    clients = args.clients or (64 if args.quick else 1024)
    events = args.events or (2_000 if args.quick else 11_000)
    if args.child:
        logging.basicConfig(level=logging.ERROR)
        out(json.dumps(child(args.child, clients, events)))
        return 0

    def body(stack: contextlib.ExitStack) -> int:
        runs = []
        for mode in ("none", "budget"):
            log.info("run %s: %d stalled sockets, %d events", mode, clients, events)
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--clients", str(clients),
                 "--events", str(events)],
                capture_output=True, text=True, check=False, env={**os.environ},
            )
            if done.returncode != 0:
                log.error("run %s failed:\n%s", mode, done.stderr[-3000:])
                return 1
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        out(f"{clients} stalled websocket sockets, {events} state events of ~1 KiB, one reader")
        table(("run", "grown to peak", "budget counted", "in the kernel", "closed by budget",
               "stalled left", "reader got", "s"),
              [(r["mode"], mib((r["rss_peak_kb"] - r["rss_before_kb"]) * 1024),
                mib(r["budget_held"]), mib(r["kernel_queued"]), r["closed_by_budget"],
                r["stalled_left"], r["reader_got"], r["seconds"]) for r in runs])
        summary = Summary("ws_backlog")
        none, kept = runs
        summary.info("grown to peak, no budget", mib((none["rss_peak_kb"]
                                                       - none["rss_before_kb"]) * 1024))
        limit = kept["budget_limit"]
        summary.check("grown to peak with the budget (MiB)",
                      (kept["rss_peak_kb"] - kept["rss_before_kb"]) / 1024,
                      2 * limit / 2**20, "{:.1f}")
        summary.info("queued in the kernel's socket buffers at the end, with the budget",
                     mib(kept["kernel_queued"]))
        summary.verdict("the reader got every event", f"{kept['reader_got']}", f"{events}",
                        kept["reader_got"] == events)
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 3600, quiet_wait=0)


if __name__ == "__main__":
    sys.exit(main())
