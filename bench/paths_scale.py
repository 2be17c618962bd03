"""Every path a person or a client touches, on a history of 1,000 and of 100,000 items.

Each size's database holds that many history items (``history_scale.fill``: 80% finished,
20% error, four in five in a batch of 40) and the same queue of QUEUED waiting items
(``queue_reads.fill``: a subscribed back catalogue, ``auto_start`` off), and the default
download archive holds a line per finished item. For each size, in a process of its own (a
fresh interpreter importing this checkout), the service's runtime is started on a copy of
that database, its start timed and the worker's resident memory read after it; then R
requests of each row through the app in process (falcon's test client: the request's own
cost, without the loopback's noise), after 3 unmeasured:

- the history's list (``type=done&per_page=50``) with each filter and order the API offers:
  no filter, ``status=finished``, ``status=!finished``, ``status=error``, ``order=ASC``, on
  page 1 and on the last full page, and a walk's next page (``after=``); ``search=number 987`` in
  the history (reported: it finds 1 item in 1,000, 320 in 100,000) and in the queue;
- the legacy ``GET /api/history``, ``/api/history/live`` (as the TUI asks: ``queue_limit``
  1,000), ``/api/system/configuration`` (as Home Assistant asks: ``queue_fields=status,
  speed``; as the TUI asks: ``queue_limit=0``), Home Assistant's last finished item,
  ``/api/engine/stats``, ``/api/health``, an item;
- Flasharr's ``/api/downloads`` (each status), ``/api/downloads/stats``,
  ``/api/downloads/batches``, ``/api/batches`` and a batch's items, and what a new Flasharr
  websocket client gets first (``SYNC_ALL``: the service's ``flasharr_tasks``);
- the archive: ``GET /api/archiver?preset=default`` (every line: reported), with ``ids=``,
  and one line added (``POST /api/archiver``: what each finished download does);
- deleting 200 history items by id (one request), then every failed item (``status=error``:
  as many as there are; reported).

Goal: each goaled row's p50 at 100,000 within FLAT of its p50 at 1,000 (a read costs what it
answers, not what the history holds), and the start within FLAT as well. ``--base REV``: the
larger size is measured on that commit's ``appliance/`` too (``git archive``, as
``queue_reads.py`` does), a column beside. --quick: 1,000 and 10,000 items, 20 requests a
row.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import checkout_child

log = logging.getLogger("bench.paths_scale")

SIZES = (1_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
QUEUED = 3_000
FLAT = 3.0  # p50 at the larger size over p50 at the smaller, at most
DELETED = 200
# Rows whose answer grows with the history by the contract (every line, every batch): reported.
REPORTED = ("archive, every line", "Flasharr batches", "delete every failed item",
            "history search 'number 987'")  # (found: 1 in 1,000, 320 in 100,000)


def rows(first_id: str, batch_id: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, method, path, params or body) of each measured request; ``{last}`` in a page
    is the filter's last page, found by the child."""
    done = {"type": "done", "per_page": "50"}
    return [
        ("history page 1", "GET", "/api/history", done),
        ("history last full page", "GET", "/api/history", {**done, "page": "{last}"}),
        ("history ASC page 1", "GET", "/api/history", {**done, "order": "ASC"}),
        ("history ASC last full page", "GET", "/api/history",
         {**done, "order": "ASC", "page": "{last}"}),
        ("status=finished page 1", "GET", "/api/history", {**done, "status": "finished"}),
        ("status=finished last full page", "GET", "/api/history",
         {**done, "status": "finished", "page": "{last}"}),
        ("status=!finished last full page", "GET", "/api/history",
         {**done, "status": "!finished", "page": "{last}"}),
        ("status=error ASC last full page", "GET", "/api/history",
         {**done, "status": "error", "order": "ASC", "page": "{last}"}),
        ("history walk, after=", "GET", "/api/history", {**done, "after": "{anchor}"}),
        ("history search 'number 987'", "GET", "/api/history",
         {**done, "search": "number 987"}),
        ("queue search 'number 987'", "GET", "/api/history",
         {"type": "queue", "per_page": "50", "search": "number 987"}),
        ("legacy GET /api/history", "GET", "/api/history", {}),
        ("live, queue_limit=1000 (TUI)", "GET", "/api/history/live", {"queue_limit": "1000"}),
        ("configuration, queue_limit=0 (TUI)", "GET", "/api/system/configuration",
         {"queue_limit": "0"}),
        ("configuration, queue_fields (HA)", "GET", "/api/system/configuration",
         {"queue_fields": "status,speed"}),
        ("last finished (HA)", "GET", "/api/history",
         {"type": "done", "status": "finished", "per_page": "1", "order": "DESC"}),
        ("engine stats", "GET", "/api/engine/stats", {}),
        ("health", "GET", "/api/health", {}),
        ("an item", "GET", f"/api/history/{first_id}", {}),
        ("Flasharr downloads", "GET", "/api/downloads", {}),
        ("Flasharr downloads, completed", "GET", "/api/downloads", {"status": "completed"}),
        ("Flasharr downloads, failed", "GET", "/api/downloads", {"status": "failed"}),
        ("Flasharr downloads, queued", "GET", "/api/downloads", {"status": "queued"}),
        ("Flasharr downloads/stats", "GET", "/api/downloads/stats", {}),
        ("Flasharr downloads/batches", "GET", "/api/downloads/batches", {}),
        ("Flasharr batches", "GET", "/api/batches", {}),
        ("Flasharr a batch's items", "GET", f"/api/downloads/batch/{batch_id}/items", {}),
        ("archive, every line", "GET", "/api/archiver", {"preset": "default"}),
        ("archive, ids=", "GET", "/api/archiver", {"preset": "default", "ids": "0000042"}),
    ]


# --- the child: the runtime on one size's database -----------------------------------------


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _filled(value: str, last: int, anchor: str) -> str:
    return value.replace("{last}", str(last)).replace("{anchor}", anchor)


def measure(db: Path, archive: Path, count: int) -> dict[str, Any]:
    """Run in a process whose ``appliance`` is the checkout's (``common.in_checkout``)."""
    import sqlite3

    from falcon.testing import TestClient

    from appliance.api.app import create_app

    root = Path(tempfile.mkdtemp(prefix="bench-paths-scale-child-"))
    try:
        (root / "config").mkdir()
        shutil.copy(db, root / "config" / "appliance.db")
        shutil.copy(archive, root / "config" / "archive.txt")
        with contextlib.closing(sqlite3.connect(root / "config" / "appliance.db")) as raw:
            first_id, = raw.execute("SELECT id FROM items WHERE kind = 'done' "
                                    "ORDER BY created_at LIMIT 1").fetchone()
            batch_id, = raw.execute("SELECT batch_id FROM items WHERE kind = 'done' AND "
                                    "batch_id != '' ORDER BY created_at LIMIT 1").fetchone()
            # a walk halfway through the history
            done, = raw.execute("SELECT count(*) FROM items WHERE kind = 'done'").fetchone()
            created, middle = raw.execute(
                "SELECT created_at, id FROM items WHERE kind = 'done' ORDER BY created_at "
                "DESC, id DESC LIMIT 1 OFFSET ?", (done // 2,)).fetchone()
            anchor = f"{created!r},{middle}"
        gc.collect()
        before = _rss_kb()
        started = time.perf_counter()
        rt = checkout_child.runtime(root)
        rt.start()
        start_seconds = time.perf_counter() - started
        gc.collect()
        after_start = _rss_kb()
        try:
            client = TestClient(create_app(rt))
            results: dict[str, Any] = {"start": start_seconds,
                                       "rss_start_kb": after_start - before}
            for label, method, path, params in rows(first_id, batch_id):
                probe = client.simulate_get(path, params={k: v for k, v in params.items()
                                                          if v not in ("{last}", "{anchor}")})
                if probe.status_code != 200:
                    raise RuntimeError(f"{label}: {probe.status_code} {probe.text[:300]}")
                total = (probe.json.get("pagination") or {}).get("total", 0) \
                    if isinstance(probe.json, dict) else 0
                last = max(1, total // 50)  # (a partial last page would make the ratio its size)
                asked = {k: _filled(v, last, anchor) for k, v in params.items()}
                answer = client.simulate_request(method, path, params=asked)
                if answer.status_code != 200:
                    raise RuntimeError(f"{label}: {answer.status_code} {answer.text[:300]}")
                for _ in range(2):
                    client.simulate_request(method, path, params=asked)
                samples = []
                for _ in range(count):
                    started = time.perf_counter()
                    client.simulate_request(method, path, params=asked)
                    samples.append(time.perf_counter() - started)
                results[label] = {"samples": samples, "bytes": len(answer.content)}
            samples = []
            for _ in range(count):
                started = time.perf_counter()
                rt.service.flasharr_tasks()
                samples.append(time.perf_counter() - started)
            results["Flasharr SYNC_ALL (a new ws client)"] = {
                "samples": samples, "bytes": len(json.dumps(rt.service.flasharr_tasks()))}
            samples = []
            for n in range(count):
                started = time.perf_counter()
                added = client.simulate_post("/api/archiver", json={
                    "preset": "default", "items": [f"bench added{n}"]})
                samples.append(time.perf_counter() - started)
                if added.status_code != 200:
                    raise RuntimeError(f"archive add: {added.status_code} {added.text[:300]}")
            results["archive, one line added"] = {"samples": samples, "bytes": 0}
            with contextlib.closing(sqlite3.connect(root / "config" / "appliance.db")) as raw:
                ids = [r[0] for r in raw.execute(
                    "SELECT id FROM items WHERE kind = 'done' AND status = 'finished' "
                    f"ORDER BY created_at LIMIT {DELETED}")]
            started = time.perf_counter()
            gone = client.simulate_delete("/api/history", json={
                "type": "done", "ids": ids, "remove_file": False})
            results[f"delete {DELETED} items by id"] = {
                "samples": [time.perf_counter() - started], "bytes": len(gone.content)}
            started = time.perf_counter()
            gone = client.simulate_delete("/api/history", json={
                "type": "done", "status": "error", "remove_file": False})
            results["delete every failed item"] = {
                "samples": [time.perf_counter() - started], "bytes": len(gone.content),
                "deleted": gone.json["deleted"]}
            return results
        finally:
            rt.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the parent -----------------------------------------------------------------------------


def fill(root: Path, size: int) -> tuple[Path, Path]:
    """The database of ``size`` history items and QUEUED queued ones, and the archive of its
    finished items."""
    import history_scale
    import queue_reads

    db = root / f"history-{size}.db"
    history_scale.fill(db, root / "downloads", size)
    queue_reads.fill(db, QUEUED)
    archive = root / f"archive-{size}.txt"
    with contextlib.closing(__import__("sqlite3").connect(db)) as raw:
        lines = [f"generic {vid} https://media.example/watch" for vid, in raw.execute(
            "SELECT video_id FROM items WHERE kind = 'done' AND status = 'finished'")]
    archive.write_text("".join(f"{line}\n" for line in lines))
    return db, archive


def main() -> int:
    import common

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base", help="a commit to measure at the larger size as well")

    args = common.parse_args(__doc__.splitlines()[0], extra)
    sizes = QUICK_SIZES if args.quick else SIZES
    count = 20 if args.quick else 100

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "paths-scale", args.keep)
        figures: dict[int, dict[str, Any]] = {}
        base: dict[str, Any] = {}
        for size in sizes:
            started = time.perf_counter()
            db, archive = fill(root, size)
            log.info("%d history items written in %.1f s", size, time.perf_counter() - started)
            figures[size] = common.in_checkout(common.REPO, __file__, db, archive, count)
            if args.base and size == sizes[-1]:
                base = common.in_checkout(common.base_tree(root, args.base), __file__, db,
                                          archive, count)
            log.info("%d items measured", size)
        small, large = (figures[s] for s in sizes)
        common.out(f"\nPaths on a history of N items and {QUEUED:,} queued, {count} requests "
                   "a row in process (a delete: once)")
        table, summary = [], common.Summary("paths_scale" + (" (quick)" if args.quick else ""))
        for label in small:
            if label in ("start", "rss_start_kb"):
                continue
            one, other = (common.latency_ms(f[label]["samples"]) for f in (small, large))
            ratio = other["p50"] / one["p50"]
            table.append([label, one["p50"], other["p50"], other["p99"], ratio,
                          large[label]["bytes"],
                          common.latency_ms(base[label]["samples"])["p50"] if base else "-"])
            if label in REPORTED or label.startswith("delete every"):
                summary.info(f"{label}: {sizes[-1]:,} over {sizes[0]:,}",
                             f"{ratio:.1f}x ({other['p50']:.1f} ms)")
            else:
                summary.check(f"p50 {label}: {sizes[-1]:,} over {sizes[0]:,}", ratio, FLAT,
                              "{:.2f}", "x")
        common.table(("request", f"p50 ms at {sizes[0]:,}", f"p50 ms at {sizes[-1]:,}",
                      f"p99 ms at {sizes[-1]:,}", "ratio", f"bytes at {sizes[-1]:,}",
                      f"base p50 ms at {sizes[-1]:,}"), table)
        summary.check(f"start: {sizes[-1]:,} over {sizes[0]:,}",
                      large["start"] / small["start"], FLAT, "{:.2f}", "x")
        summary.info(f"start at {sizes[0]:,} / {sizes[-1]:,}",
                     f"{small['start']:.2f} / {large['start']:.2f} s")
        summary.info(f"worker memory grown by the start at {sizes[0]:,} / {sizes[-1]:,}",
                     f"{small['rss_start_kb'] / 1024:.1f} / {large['rss_start_kb'] / 1024:.1f}"
                     " MiB")
        if base:
            summary.info(f"base {args.base}: start at {sizes[-1]:,}, memory grown",
                         f"{base['start']:.2f} s, {base['rss_start_kb'] / 1024:.1f} MiB")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 900 if args.quick else 2400, quiet_wait=10 if args.quick else 60)


if __name__ == "__main__":
    raise SystemExit(checkout_child.main(main, measure, Path, Path, int))
