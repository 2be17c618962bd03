"""Reads of a big queue: a page of 10 and ``queue_limit=10`` at 1k, 20k and 100k queued items.

Each size's queue (``auto_start: false``, info read: nothing downloads or extracts; one in
five items of a batch of 50) is written once straight into a database through ``ItemStore``.
Then, for each size, the service's app is started on a copy of it twice, each in a process
of its own: once from the base checkout (``--base``, a commit: ``git archive`` of its
``appliance/``; by default the one before the queue kept its orders, when every read copied
the whole queue) and once from this one. In each, R requests of every row through the app
in process (falcon's test client: the request's own cost, the same in a gunicorn thread,
without the loopback's noise), after 3 unmeasured:

- ``GET /api/history?type=queue&per_page=10`` on page 1 and on the middle page,
- ``GET /api/history/live?queue_limit=10`` and ``GET /api/system/configuration?queue_limit=10``,
- Flasharr's ``GET /api/downloads?limit=10`` and ``GET /api/engine/stats`` (the queue's
  counts: kept as it changes, engine/queue_tally.py),
- ``type=queue&per_page=10&status=pending`` (a status's total: kept too),
- ``type=queue&per_page=10&search=number 1`` (a search of the text tests every item: no count
  can be kept of what any text finds; reported without a goal),
- Flasharr's ``GET /api/batches`` (every batch: as many as the queue's batches; reported).

Goal, this checkout: p99 <= 5 ms for a page of 10, ``queue_limit=10``, a status's page, the
engine stats and Flasharr's page at every size, and p50 at 100k within 2x of p50 at 1k (a
read costs what it answers). The base's reads of 100k items may take seconds each: it makes a
tenth of the requests there (p99 is then their worst). --quick: 1k and 20k, 20 requests a
row.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path

import checkout_child

log = logging.getLogger("bench.queue_reads")

BASE = "d4a6fb0"  # every read of the queue copied all of it (Item.snapshot: 16 ms a 20,000)
SIZES = (1_000, 20_000, 100_000)
BATCH = 5_000
BASE_FULL = 20_000  # past this many items, the base side takes a tenth of the requests
GOAL_P99_MS = 5.0
FLAT = 2.0  # p50 at the largest size over p50 at the smallest, at most
GOALED = ("page 1", "middle page", "live, queue_limit=10", "Flasharr downloads, limit=10",
          "engine stats", "page 1, status=pending")


def rows(size: int) -> list[tuple[str, str, dict[str, str]]]:
    queue = {"type": "queue", "per_page": "10"}
    return [
        ("page 1", "/api/history", queue),
        ("middle page", "/api/history", {**queue, "page": str(size // 20)}),
        ("live, queue_limit=10", "/api/history/live", {"queue_limit": "10"}),
        ("configuration, queue_limit=10", "/api/system/configuration", {"queue_limit": "10"}),
        ("Flasharr downloads, limit=10", "/api/downloads", {"limit": "10"}),
        ("engine stats", "/api/engine/stats", {}),
        ("page 1, status=pending", "/api/history", {**queue, "status": "pending"}),
        ("page 1, search", "/api/history", {**queue, "search": "number 1"}),
        ("Flasharr batches", "/api/batches", {}),
    ]


# --- the child: one checkout's app on one size's queue -------------------------------------


def measure(db: Path, size: int, count: int) -> dict[str, list[float]]:
    """Run in a process whose ``appliance`` is the checkout's (``common.in_checkout``)."""
    from falcon.testing import TestClient

    from appliance.api.app import create_app

    root = Path(tempfile.mkdtemp(prefix="bench-queue-reads-child-"))
    try:
        (root / "config").mkdir()
        shutil.copy(db, root / "config" / "appliance.db")
        rt = checkout_child.runtime(root)
        rt.start()
        try:
            client = TestClient(create_app(rt))
            results: dict[str, list[float]] = {}
            for label, path, params in rows(size):
                answer = client.simulate_get(path, params=params)
                if answer.status_code != 200:
                    raise RuntimeError(f"{label}: {answer.status_code} {answer.text[:300]}")
                for _ in range(2):
                    client.simulate_get(path, params=params)
                samples = []
                for _ in range(count):
                    started = time.perf_counter()
                    client.simulate_get(path, params=params)
                    samples.append(time.perf_counter() - started)
                results[label] = samples
            queued = client.simulate_get("/api/history/live", params={"queue_limit": "0"})
            if queued.json["queue_count"] != size:
                raise RuntimeError(f"{queued.json['queue_count']} queued, not {size}")
            return results
        finally:
            rt.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the parent -----------------------------------------------------------------------------


def fill(db: Path, size: int) -> None:
    from appliance.store import Item, ItemStore
    from appliance.store.records import new_id

    store = ItemStore(db)
    try:
        for first in range(0, size, BATCH):
            batch = []
            for n in range(first, min(size, first + BATCH)):
                stamp = store.stamp()
                batch.append(Item(
                    id=new_id(), url=f"https://media.example/watch?v={n:07d}",
                    title=f"Item number {n}", extractor="Generic", video_id=f"{n:07d}",
                    auto_start=False, created_at=stamp, updated_at=stamp,
                    batch_id="" if n % 5 else f"batch-{n // 250}",
                    batch_name="" if n % 5 else f"Channel {n // 250}",
                    info={"id": f"{n:07d}", "title": f"Item number {n}",
                          "extractor_key": "Generic"}))
            store.insert(batch)
    finally:
        store.close()


def main() -> int:
    import common

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base", default=BASE, help="the checkout to compare with")

    args = common.parse_args(__doc__.splitlines()[0], extra)
    sizes = SIZES[:2] if args.quick else SIZES
    count = 20 if args.quick else 100

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "queue-reads", args.keep)
        trees = {"base": common.base_tree(root, args.base), "this": common.REPO}
        figures: dict[tuple[int, str, str], dict[str, float]] = {}
        for size in sizes:
            db = root / f"queue-{size}.db"
            started = time.perf_counter()
            fill(db, size)
            log.info("%d queued items written in %.1f s", size, time.perf_counter() - started)
            for side, tree in trees.items():
                # the base's reads of a big queue take seconds each: fewer of them
                asked = count if side == "this" or size <= BASE_FULL else max(10, count // 10)
                for label, samples in common.in_checkout(tree, __file__, db, size,
                                                           asked).items():
                    figures[size, label, side] = common.latency_ms(samples)
                log.info("%d items: %s measured", size, side)
        common.out(f"\nReads of a queue of N items (auto_start off), {count} requests a row "
                   f"in process (the base's past {BASE_FULL:,} items: a tenth); "
                   f"base = {args.base}, this = {common.REPO.name}")
        table = []
        for size in sizes:
            for label, _, _ in rows(size):
                base, this = figures[size, label, "base"], figures[size, label, "this"]
                table.append([f"{size:,}", label, base["p50"], base["p99"], this["p50"],
                              this["p99"], base["p50"] / this["p50"]])
        common.table(("items", "request", "base p50 ms", "base p99 ms", "this p50 ms",
                      "this p99 ms", "p50 base/this"), table)
        summary = common.Summary("queue_reads" + (" (quick)" if args.quick else ""))
        for size in sizes:
            for label in GOALED:
                summary.check(f"p99 {label} at {size:,}", figures[size, label, "this"]["p99"],
                              GOAL_P99_MS, "{:.2f}", " ms")
        for label in GOALED:
            flat = (figures[sizes[-1], label, "this"]["p50"]
                    / figures[sizes[0], label, "this"]["p50"])
            summary.check(f"p50 {label}: {sizes[-1]:,} over {sizes[0]:,}", flat, FLAT, "{:.2f}",
                          "x")
            summary.info(f"p50 {label} at {sizes[-1]:,}, base -> this",
                         f"{figures[sizes[-1], label, 'base']['p50']:.2f} -> "
                         f"{figures[sizes[-1], label, 'this']['p50']:.2f} ms")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 900 if args.quick else 2400, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(checkout_child.main(main, measure, Path, int, int))
