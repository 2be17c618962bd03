"""Slow clients: ping latency with 0 and with 200 slow connections of each kind open.

One server (auth on, ``YTP_MAX_CONNECTIONS_PER_ADDRESS=1000`` so that a flood from one address
gets in whole). First a baseline: ``GET /api/ping`` and an authenticated
``GET /api/history/live``, each on a fresh connection, with nothing else open. Then, for each
attack form (``tests/support/slow.py``: idle, first byte, ``GE``, trickled headers, trickled
body, trickled chunked body; on the websocket port: idle, first byte, partial handshake,
trickled handshake), 200 connections of it are opened, from 127.0.0.1 and then from 200
loopback addresses, and the same requests are timed while they are open (a websocket
connect + first message too); then the time until the server has closed all 200.

Goals: p99 <= 1 s for every request under every flood (the issue's bar; the summary shows the
worst of the three); every slow connection closed within 15 s. --quick: 50 connections,
20 samples, two forms per port.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import common
import requests
from support.slow import HTTP_ATTACKS, WS_ATTACKS, Attack, SlowClients, loopback_addresses
from websockets.sync.client import connect

log = logging.getLogger("bench.slow_clients")

USER, PASSWORD = "bench", "bench-slow-clients"
GOAL_P99_MS = 1000.0
GOAL_CLOSED_S = 15.0


def timed(probe: Callable[[], None], samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        probe()
        times.append(time.perf_counter() - started)
    return times


def probes(server: common.Server) -> dict[str, Callable[[], None]]:
    def ping() -> None:
        requests.get(server.url + "/api/ping", timeout=10).raise_for_status()

    def live() -> None:
        requests.get(server.url + "/api/history/live", auth=(USER, PASSWORD),
                     timeout=10).raise_for_status()

    def websocket() -> None:
        with connect(server.ws_url, open_timeout=10,
                     additional_headers={"Authorization": _basic()}) as ws:
            ws.recv(timeout=10)

    return {"ping": ping, "history/live": live, "ws connect": websocket}


def _basic() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Flood(NamedTuple):
    admitted: int  # slow connections the server had not closed when the timing began
    latencies: dict[str, list[float]]
    closed_after: float  # seconds from opening them until the server closed the last one


def flood(server: common.Server, port: int, attack: Attack, count: int, sources: list[str],
          samples: int) -> Flood:
    with SlowClients(port, [attack], count, sources) as slow:
        opened = time.monotonic()
        admitted = slow.open_count()
        latencies = {name: timed(probe, samples) for name, probe in probes(server).items()}
        common.wait_for(lambda: slow.open_count() == 0, timeout=120, interval=0.1,
                        message="the server to close the slow connections")
        return Flood(admitted, latencies, time.monotonic() - opened)


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    count = 50 if args.quick else 200
    samples = 20 if args.quick else 100
    http_attacks = dict(list(HTTP_ATTACKS.items())[:: 3 if args.quick else 1])
    ws_attacks = dict(list(WS_ATTACKS.items())[:: 2 if args.quick else 1])

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "slow-clients", args.keep)
        server = common.start_server(stack, root, {
            "YTP_AUTH_USERNAME": USER, "YTP_AUTH_PASSWORD": PASSWORD,
            "YTP_MAX_CONNECTIONS_PER_ADDRESS": "1000"})
        rows: list[list[object]] = []
        summary = common.Summary("slow_clients" + (" (quick)" if args.quick else ""))
        baseline = {name: timed(probe, samples) for name, probe in probes(server).items()}
        for name, times in baseline.items():
            figures = common.latency_ms(times)
            rows.append(["none", "-", "-", name, figures["p50"], figures["p99"], "-"])
        many = loopback_addresses(count)
        for port_name, port, attacks in (("http", server.port, http_attacks),
                                         ("ws", server.port + 1, ws_attacks)):
            for attack_name, attack in attacks.items():
                for where, sources in (("1 address", ["127.0.0.1"]),
                                       (f"{count} addresses", many)):
                    label = f"{count} {port_name} {attack_name}, {where}"
                    log.info("flood: %s", label)
                    result = flood(server, port, attack, count, sources, samples)
                    worst = ("", 0.0)
                    for probe_name, times in result.latencies.items():
                        figures = common.latency_ms(times)
                        rows.append([f"{port_name} {attack_name}", where, result.admitted,
                                     probe_name, figures["p50"], figures["p99"],
                                     result.closed_after])
                        worst = max(worst, (probe_name, figures["p99"]), key=lambda w: w[1])
                    summary.check(f"{label}: worst p99 ({worst[0]})", worst[1], GOAL_P99_MS,
                                  "{:.1f}", " ms")
                    summary.check(f"{label}: all closed after", result.closed_after,
                                  GOAL_CLOSED_S, "{:.1f}", " s")
        common.out(f"\nLatency on a fresh connection ({samples} samples each), with {count} "
                   "slow connections of one kind open on the same server")
        common.table(("slow connections", "from", "open", "request", "p50 ms", "p99 ms",
                      "closed after s"), rows)
        for name, times in baseline.items():
            summary.info(f"baseline {name} p50 / p99",
                         "{p50:.1f} / {p99:.1f} ms".format(**common.latency_ms(times)))
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300 if args.quick else 1200, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
