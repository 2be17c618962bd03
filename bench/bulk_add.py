"""Bulk add: response time of one ``POST /api/history`` carrying 1,000 URLs.

The URLs are distinct (the origin's clip with ``?n=<i>``) and carry ``auto_start: false``, so
nothing downloads. Each repetition runs on a fresh server, so that the previous batch's
background work (every added URL has its info read in the background) cannot slow the next.

Goal: <= 1 s per request. --quick: one run instead of three.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import common
import requests

log = logging.getLogger("bench.bulk_add")

GOAL_SECONDS = 1.0


def one_run(root: Path, clip_url: str, count: int, index: int) -> dict[str, float]:
    with contextlib.ExitStack() as run_stack:
        server = common.start_server(run_stack, root / f"server-{index}",
                                     {"YTP_WARM_WORKERS": "1"})
        payload = [{"url": f"{clip_url}?n={index}-{i}", "auto_start": False}
                   for i in range(count)]
        data = json.dumps(payload)
        with requests.Session() as session:
            session.get(server.url + "/api/ping", timeout=10)  # connect outside the timing
            started = time.perf_counter()
            response = session.post(server.url + "/api/history", data=data, timeout=60,
                                    headers={"Content-Type": "application/json"})
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            body = response.json()
            if len(body) != count or any(r.get("status") != "queued" for r in body):
                raise RuntimeError(f"unexpected answer: {str(body)[:500]}")
            queue = session.get(server.url + "/api/history?type=queue&per_page=1",
                                timeout=30).json()
            stored = queue["pagination"]["total"]
        log.info("run %d: %d URLs in %.3f s (%d in the queue)", index, count, elapsed, stored)
        return {"seconds": elapsed, "queued": stored, "request_bytes": len(data),
                "response_bytes": len(response.content)}


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    count = 1_000
    runs = 1 if args.quick else 3

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "bulk-add", args.keep)
        origin = common.start_origin(stack, root)
        results = [one_run(root, origin.clip_url, count, i + 1) for i in range(runs)]
        common.out(f"\nPOST /api/history with {count:,} URLs (auto_start: false), "
                   f"fresh server per run")
        common.table(("run", "seconds", "queued", "request bytes", "response bytes"),
                     [[i + 1, r["seconds"], int(r["queued"]), int(r["request_bytes"]),
                       int(r["response_bytes"])] for i, r in enumerate(results)])
        summary = common.Summary("bulk_add" + (" (quick)" if args.quick else ""))
        for i, result in enumerate(results, start=1):
            summary.check(f"run {i}: POST {count:,} URLs", result["seconds"], GOAL_SECONDS,
                          "{:.3f}", " s")
        summary.verdict("all URLs queued", ", ".join(str(int(r["queued"])) for r in results),
                        f"{count} each", all(r["queued"] == count for r in results))
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300 if args.quick else 600, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
