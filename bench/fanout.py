"""Websocket fan-out: 50 clients watching 5 parallel downloads.

The server runs 5 downloads at once (YTP_MAX_WORKERS=5, YTP_MAX_WORKERS_PER_EXTRACTOR=5) of a
~500 MB file each (about two seconds a round here: long enough for progress to flow and for
the burst of state events at start and end not to be the whole round). Rounds alternate
between no websocket client and 50 clients (asyncio, in a process of their own); a first
round with no clients warms the pool.

- Delay, engine event -> client: state events carry the time the change was stored
  (``item_added``: ``created_at``; ``item_updated`` / ``item_completed``: ``updated_at``, in
  the payload of YTPTube's Event envelope), so ``recv_time - stamp`` over every client is the
  delay from the store to each client. A progress event carries the item as last stored (its
  ``updated_at`` unchanged): not measured, only counted. The same clock serves both ends (one
  machine).
- Throughput: bytes of the 5 files / (last ``finished_at`` - first ``started_at``), from the
  items themselves, so the way a round is watched (GET polling) does not enter it. The ratio
  with clients / without is the cost of the fan-out.

Goals: p99 delay <= 100 ms; throughput with 50 clients >= 0.90x without (unchanged within
noise). Five rounds each way. --quick: 10 clients, 20 MB files, one round of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

import common
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("bench.fanout")

MB = 1_000_000
DOWNLOADS = 5
GOAL_P99_MS = 100.0
GOAL_THROUGHPUT_RATIO = 0.90
ROUND_TIMEOUT = 300.0


class Audience:
    """N websocket clients on one asyncio loop in a process of their own, recording
    (recv time, frame). Not a thread of this process: the media origin serves from here,
    and 50 clients decoding frames would hold the GIL it needs between sendfile calls, which
    slowed the downloads in a way no real client elsewhere on the network could."""

    def __init__(self, url: str, count: int) -> None:
        self.count = count
        self.received: list[list[tuple[float, str | bytes]]] = []
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        self._process = context.Process(target=_audience, args=(url, count, child_end),
                                        name="audience", daemon=True)
        self._process.start()
        if not self._pipe.poll(60):
            self._process.kill()
            raise TimeoutError(f"{count} websocket clients did not connect within 60 s")
        ready = self._pipe.recv()
        if ready != "ready":
            raise RuntimeError(f"the audience failed: {ready}")

    def close(self) -> None:
        try:
            self._pipe.send("close")
            if self._pipe.poll(60):
                self.received = self._pipe.recv()
        finally:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()

    def delays(self) -> dict[str, Any]:
        """Delays (s) of stamped state events per kind, and counts per client."""
        by_kind: dict[str, list[float]] = {"item_added": [], "item_updated": [],
                                           "item_completed": []}
        state_counts, progress = [], 0
        for frames in self.received:
            state = 0
            # A progress frame carries the whole item too, with the stamp of its last stored
            # change: a state change is the frame whose item has a new stamp.
            stamps: dict[str, float] = {}
            for received, raw in frames:
                event = json.loads(raw)
                # YTPTube's frame: the item is the payload of its Event envelope (since the
                # wire format of issue 11; read at the frame's top level, no event matched)
                name, envelope = event.get("event"), event.get("data")
                data = envelope.get("data") if isinstance(envelope, dict) else None
                if not isinstance(data, dict):
                    continue
                stamp = data.get("created_at") if name == "item_added" else data.get(
                    "updated_at")
                if name not in by_kind or not isinstance(stamp, float):
                    continue
                if name == "item_updated" and stamps.get(data.get("id")) == stamp:
                    progress += 1
                    continue
                stamps[data.get("id")] = data.get("updated_at")
                by_kind[name].append(received - stamp)
                state += 1
            state_counts.append(state)
        return {"by_kind": by_kind, "state_counts": state_counts, "progress": progress}


def _audience(url: str, count: int, pipe: Connection) -> None:
    """The audience process: connect, say ready, record until told to close, send back."""
    received: list[list[tuple[float, str | bytes]]] = [[] for _ in range(count)]

    async def listen(index: int, conn: ClientConnection) -> None:
        sink = received[index]
        with contextlib.suppress(ConnectionClosed):
            async for frame in conn:
                sink.append((time.time(), frame))

    async def main() -> None:
        conns, tasks = [], []
        for index in range(count):
            conn = await connect(url, open_timeout=10, max_size=None)
            hello = json.loads(await conn.recv())
            assert hello["event"] == "connected", hello
            conns.append(conn)
            tasks.append(asyncio.create_task(listen(index, conn)))
        pipe.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
    except Exception as exc:  # reported to the bench, which stops
        pipe.send(f"{type(exc).__name__}: {exc}")
        return
    pipe.send(received)


def one_round(server: common.Server, url: str, size: int, tag: str) -> dict[str, float]:
    body = [{"url": url, "template": f"{tag}-{i}.%(ext)s"} for i in range(DOWNLOADS)]
    started = time.perf_counter()
    response = server.post("/api/history", body)
    response.raise_for_status()
    ids = [r["id"] for r in response.json()]

    def all_final() -> list[dict[str, Any]] | None:
        items = [server.item(i) for i in ids]
        if all(i["status"] in {"finished", "error", "cancelled"} for i in items):
            return items
        return None

    items = common.wait_for(all_final, timeout=ROUND_TIMEOUT, interval=0.1,
                            message=f"round {tag} to finish")
    wall = time.perf_counter() - started
    failed = [i for i in items if i["status"] != "finished"]
    if failed:
        raise RuntimeError(f"downloads failed: {[(i['status'], i['error']) for i in failed]}")
    total = 0
    for item in items:
        path = server.download_path / item["filename"]
        total += path.stat().st_size
        path.unlink()
    if total != DOWNLOADS * size:
        raise RuntimeError(f"got {total} bytes, expected {DOWNLOADS * size}")
    span = max(i["finished_at"] for i in items) - min(i["started_at"] for i in items)
    return {"bytes": total, "span": span, "wall": wall, "throughput": total / span}


def run_rounds(server: common.Server, url: str, size: int, clients: int, rounds: int
               ) -> tuple[dict[int, list[dict[str, float]]], dict[str, Any]]:
    results: dict[int, list[dict[str, float]]] = {0: [], clients: []}
    delays: dict[str, list[float]] = {"item_added": [], "item_updated": [], "item_completed": []}
    counts: list[list[int]] = []
    progress = 0
    log.info("warm-up round")
    one_round(server, url, size, "warm")
    for index in range(rounds):
        for watchers in (0, clients):
            audience = Audience(server.ws_url, watchers) if watchers else None
            try:
                result = one_round(server, url, size, f"r{index}-c{watchers}")
                if audience is not None:
                    time.sleep(0.5)  # trailing frames (item_completed) still in flight
            finally:
                if audience is not None:
                    audience.close()
            results[watchers].append(result)
            log.info("round %d, %2d clients: %.1f MiB/s over %.2f s (wall %.2f s)", index + 1,
                     watchers, result["throughput"] / 2**20, result["span"], result["wall"])
            if audience is not None:
                got = audience.delays()
                for kind, values in got["by_kind"].items():
                    delays[kind].extend(values)
                counts.append(got["state_counts"])
                progress += got["progress"]
    return results, {"delays": delays, "state_counts": counts, "progress": progress}


def report(results: dict[int, list[dict[str, float]]], seen: dict[str, Any], clients: int,
           size: int, summary: common.Summary) -> None:
    delays = seen["delays"]
    everything = [d for values in delays.values() for d in values]
    common.out(f"\n{DOWNLOADS} parallel downloads of {common.mib(size)}; {clients} websocket "
               f"clients; {len(results[0])} round(s) each way after a warm-up")
    rows = []
    for kind, values in [*delays.items(), ("all state events", everything)]:
        stats = common.latency_ms(values)
        rows.append([kind, stats["n"], stats["p50"], stats["p99"], stats["max"]])
    common.table(("delay store -> client", "samples", "p50 ms", "p99 ms", "max ms"), rows)
    counts = seen["state_counts"]
    spread = ", ".join(f"{min(c)}..{max(c)}" for c in counts)
    complete = all(min(c) == max(c) for c in counts)
    common.out(f"stamped state events per client, min..max per round: {spread}; "
               f"progress frames received in total: {seen['progress']}")
    rows = []
    for watchers, runs in results.items():
        rows.append([f"{watchers} clients", " ".join(f"{r['throughput'] / 2**20:.0f}"
                                                     for r in runs),
                     common.median(r["throughput"] for r in runs) / 2**20,
                     common.median(r["wall"] for r in runs)])
    common.table(("watchers", "MiB/s per round", "median MiB/s", "median wall s"), rows)
    stats = common.latency_ms(everything)
    summary.check("p99 delay, state events", stats["p99"], GOAL_P99_MS, "{:.1f}", " ms")
    summary.info("p50 / max delay", f"{stats['p50']:.1f} / {stats['max']:.1f} ms")
    summary.verdict("every client got every state event", spread, "same count per round",
                    complete)
    without = common.median(r["throughput"] for r in results[0])
    with_clients = common.median(r["throughput"] for r in results[clients])
    summary.info("throughput, 0 clients", f"{without / 2**20:.0f} MiB/s")
    summary.info(f"throughput, {clients} clients", f"{with_clients / 2**20:.0f} MiB/s")
    summary.check(f"throughput {clients} clients / 0 clients", with_clients / without,
                  GOAL_THROUGHPUT_RATIO, unit="x", lower_is_better=False)


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    clients = 10 if args.quick else 50
    size = (20 if args.quick else 500) * MB
    rounds = 1 if args.quick else 5

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "fanout", args.keep)
        origin = common.start_origin(stack, root)
        server = common.start_server(stack, root / "server", {
            "YTP_MAX_WORKERS": str(DOWNLOADS), "YTP_MAX_WORKERS_PER_EXTRACTOR": str(DOWNLOADS),
        })
        url = origin.big_file(size)
        results, seen = run_rounds(server, url, size, clients, rounds)
        fsync = common.latency_ms(common.fsync_latency(root))
        summary = common.Summary("fanout" + (" (quick)" if args.quick else ""))
        report(results, seen, clients, size, summary)
        # Every stamped state change is a SQLite commit (synchronous=FULL) before it is sent.
        summary.info("disk fsync p50 / p99 (floor of each commit)",
                     f"{fsync['p50']:.1f} / {fsync['p99']:.1f} ms")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300 if args.quick else 900, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
