"""Paginated history on a big database: latency of ``GET /api/history?type=done``.

The database of a fresh server root is filled with N history items (80% finished, 20% error)
straight through ``ItemStore`` in batches of 5,000, before the server starts. Then, over one
keep-alive ``requests.Session``, R requests each of:

- ``type=done&per_page=50`` on page 1 and page 1,000,
- the same with ``status=finished`` and with ``status=!finished``,
- the legacy ``GET /api/history`` (queue + newest history, no pagination),
- ``search=`` (title and URL) finding 1, 100, 40,951 (a long word and a one-character one)
  and every item, and a two-character word (no trigram: read with LIKE), on page 1 and, when
  there is one, page 100.

Goal: p99 <= 20 ms for every paginated request, searches finding at most 100 items included
(a person looking for something); the searches that find thousands, or have only words too
short for the index, read that many rows and are reported without a goal.

When page 1,000 lies past the end of a filter's results (it is empty), the filter's last page
is measured as well, so that a deep OFFSET is always covered.

Four in five items belong to a batch of 40 (a playlist's entries); Flasharr's lists are
measured on that history too: ``/api/batches`` (every batch, reported), and its display rows
and downloads list paged (goal: p99 <= 20 ms).

Then the file browser's actions on files the history records (``POST /api/file/actions``, one
action a request): a rename and a delete of each of ACTED files, whose items follow them (the
new name; no file). Goal: p99 <= 20 ms as well (each looked the file's items up by reading
every finished item: ~0.3 s at 100,000 before the filename index).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import common
import requests

log = logging.getLogger("bench.history_scale")

BATCH = 5_000
PER_PAGE = 50
DEEP_PAGE = 1_000
GOAL_P99_MS = 20.0
# (words, matching items at 100,000): "Item number {n}" titles, "...?v={n:07d}" URLs.
SEARCHES = (("number 99999", 1), ("v=00042", 100), ("NUMBER 1", 40_951), ("item", 100_000),
            ("99", 3_691))
# Flasharr's lists: batches (every one, from per-batch totals), its display rows (batches,
# then the downloads of no batch) and its downloads list, all over the same history.
FLASHARR = (("GET /api/batches", "/api/batches"),
            ("GET /api/downloads/batches, page 1", "/api/downloads/batches?limit=50"),
            ("GET /api/downloads/batches, page 100", "/api/downloads/batches?limit=50&page=100"),
            ("GET /api/downloads?status=completed, page 100",
             "/api/downloads?status=completed&limit=50&page=100"))
SELECTIVE = 100  # a search finding at most this many items has the paginated goal
ACTED = 50


def fill(db_path: Path, downloads: Path, total: int) -> tuple[dict[str, int], list[str]]:
    """Insert ``total`` done items, 80/20 finished/error, in batches; return status counts
    and the first ACTED finished items' file names."""
    from appliance.store import Item, ItemStore
    from appliance.store.records import new_id

    store = ItemStore(db_path)
    rng = random.Random(1234)
    counts = {"finished": 0, "error": 0}
    named: list[str] = []
    started = time.perf_counter()
    try:
        for first in range(0, total, BATCH):
            batch = []
            for n in range(first, min(total, first + BATCH)):
                status = "finished" if rng.random() < 0.8 else "error"
                counts[status] += 1
                if status == "finished" and len(named) < ACTED:
                    named.append(f"Item number {n}.mp4")
                created = store.stamp()
                batch.append(Item(
                    id=new_id(), url=f"https://media.example/watch?v={n:07d}", kind="done",
                    status=status, title=f"Item number {n}", extractor="Generic",
                    video_id=f"{n:07d}", created_at=created, updated_at=created,
                    started_at=created, finished_at=created,
                    filename=f"Item number {n}.mp4" if status == "finished" else "",
                    download_folder=str(downloads) if status == "finished" else "",
                    file_size=1_000_000 + n if status == "finished" else None,
                    total_bytes=1_000_000 + n if status == "finished" else None,
                    # Four in five came in batches of 40 (a playlist's, a task's run).
                    batch_id=f"batch-{n // 50}" if n % 5 else "",
                    batch_name=f"Playlist {n // 50}" if n % 5 else "",
                    error="" if status == "finished" else "HTTP Error 404: Not Found",
                    info={"id": f"{n:07d}", "title": f"Item number {n}", "ext": "mp4",
                          "extractor_key": "Generic"},
                ))
            store.insert(batch)
    finally:
        store.close()
    log.info("inserted %d items in %.1f s", total, time.perf_counter() - started)
    return counts, named


def timed(session: requests.Session, url: str, count: int) -> tuple[list[float], Any]:
    samples = []
    body: Any = None
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
        body = response
    return samples, body


def file_actions(session: requests.Session, server: Any, taken: list[str]
                 ) -> dict[str, list[float]]:
    """The files of finished items (``taken``) made, then renamed and deleted in the file
    browser, one action a request; the times of each kind."""
    with contextlib.closing(sqlite3.connect(server.root / "config" / "appliance.db")) as db:
        marks = ", ".join("?" * len(taken))
        recorded = db.execute(f"SELECT count(*) FROM items WHERE filename IN ({marks})",
                              taken).fetchone()[0]
    if recorded != len(taken):
        raise RuntimeError(f"{recorded} items record the {len(taken)} files")
    for name in taken:
        (server.download_path / name).write_bytes(b"x")
    times: dict[str, list[float]] = {"rename": [], "delete": []}
    for name in taken:
        renamed = name.replace(".mp4", " (renamed).mp4")
        for kind, action in (("rename", {"action": "rename", "path": name, "new_name": renamed}),
                             ("delete", {"action": "delete", "path": renamed})):
            started = time.perf_counter()
            answer = session.post(f"{server.url}/api/file/actions", json=[action], timeout=30)
            times[kind].append(time.perf_counter() - started)
            answer.raise_for_status()
            assert answer.json()[0]["ok"], answer.text
    # Else the figures time no item's lookup: each item followed its file, then named none.
    with contextlib.closing(sqlite3.connect(server.root / "config" / "appliance.db")) as db:
        names = taken + [name.replace(".mp4", " (renamed).mp4") for name in taken]
        marks = ", ".join("?" * len(names))
        left = db.execute(f"SELECT count(*) FROM items WHERE filename IN ({marks})",
                          names).fetchone()[0]
    if left:
        raise RuntimeError(f"{left} items still name the files renamed and deleted")
    return times


def scenarios(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    """(label, query, matching items) for every measured request."""
    matching = {"": counts["finished"] + counts["error"], "finished": counts["finished"],
                "!finished": counts["error"]}
    result = []
    for status, total in matching.items():
        suffix = f"&status={status}" if status else ""
        label = f"status={status}" if status else "no filter"
        last = max(1, math.ceil(total / PER_PAGE))
        pages = [1, DEEP_PAGE] + ([last] if last < DEEP_PAGE else [])
        for page in pages:
            tag = "last " if page == last and page != 1 and page < DEEP_PAGE else ""
            result.append((f"{label}, {tag}page {page}",
                           f"/api/history?type=done&per_page={PER_PAGE}&page={page}{suffix}",
                           total))
    for words, found in SEARCHES:
        for page in (1, 100) if found > 100 * PER_PAGE else (1,):
            result.append((f"search={words!r}, page {page}",
                           f"/api/history?type=done&per_page={PER_PAGE}&page={page}"
                           f"&search={quote(words)}", found))
    return result


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    total = 10_000 if args.quick else 100_000
    count = 50 if args.quick else 200

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "history", args.keep) / "server"
        fill_started = time.perf_counter()
        counts, named = fill(root / "config" / "appliance.db", root / "downloads", total)
        fill_seconds = time.perf_counter() - fill_started
        server = common.start_server(stack, root, {"YTP_WARM_WORKERS": "0",
                                                   "YTP_BROWSER_CONTROL_ENABLED": "true"})
        session = stack.enter_context(requests.Session())
        summary = common.Summary("history_scale" + (" (quick)" if args.quick else ""))
        common.out(f"\n{total:,} history items ({counts['finished']:,} finished, "
                   f"{counts['error']:,} error), filled in {fill_seconds:.1f} s; "
                   f"{count} requests per row over one keep-alive session")
        rows, worst = [], 0.0
        for label, path, matching in scenarios(counts):
            timed(session, server.url + path, 5)  # warm-up: connection, caches, page cache
            samples, response = timed(session, server.url + path, count)
            stats = common.latency_ms(samples)
            items = len(response.json()["items"])
            rows.append([label, items, stats["p50"], stats["p99"], stats["max"]])
            worst = max(worst, stats["p99"])
            if matching > SELECTIVE and label.startswith("search="):
                summary.info(f"p99 {label} ({matching:,} found)", f"{stats['p99']:.1f} ms")
            else:
                summary.check(f"p99 {label}", stats["p99"], GOAL_P99_MS, "{:.1f}", " ms")
        samples, response = timed(session, server.url + "/api/history", max(10, count // 4))
        legacy = common.latency_ms(samples)
        legacy_items = len(response.json()["history"])
        rows.append(["legacy GET /api/history", legacy_items, legacy["p50"], legacy["p99"],
                     legacy["max"]])
        common.table(("request", "items", "p50 ms", "p99 ms", "max ms"), rows)
        common.out(f"legacy response: {len(response.content):,} bytes, "
                   f"{legacy['n']} requests")
        summary.info("legacy GET /api/history p50 / p99",
                     f"{legacy['p50']:.1f} / {legacy['p99']:.1f} ms "
                     f"({legacy_items} items, {len(response.content) / 1e6:.1f} MB)")
        summary.info("worst paginated p99", f"{worst:.1f} ms")
        flasharr_rows = []
        for label, path in FLASHARR:
            timed(session, server.url + path, 5)
            samples, response = timed(session, server.url + path, count)
            stats = common.latency_ms(samples)
            flasharr_rows.append([label, stats["p50"], stats["p99"], stats["max"],
                                  len(response.content)])
            if path == "/api/batches":  # every batch in one answer: reported
                summary.info(f"p99 {label} ({len(response.json()['batches']):,} batches)",
                             f"{stats['p99']:.1f} ms")
            else:
                summary.check(f"p99 {label}", stats["p99"], GOAL_P99_MS, "{:.1f}", " ms")
        common.table(("Flasharr request", "p50 ms", "p99 ms", "max ms", "bytes"),
                     flasharr_rows)
        acted = file_actions(session, server, named)
        for kind, samples in acted.items():
            stats = common.latency_ms(samples)
            summary.check(f"p99 file browser {kind} of a recorded file ({stats['n']})",
                          stats["p99"], GOAL_P99_MS, "{:.1f}", " ms")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 600 if args.quick else 1800, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
