"""Option checks: the worker's memory and the requests' latency when yt-dlp options are checked.

A fresh server (default settings) with its yt-dlp option table made at start; then, one after
the other: an add with ``"cli": "--no-mtime"``, a second add with options, a preset, a task and
a condition saved with options (each save's values judged by yt-dlp in a download process: the
preset's waits for the first one), and ``POST /api/yt-dlp/convert`` (made by a warm download
process). The gunicorn worker's RSS (VmRSS) is read 3 s after start and 2 s after the last
request: the worker checks options on yt-dlp's option table (``engine/option_table.py``) and
never imports yt-dlp, which used to cost it ~9 MB for its life.

Goals: the worker grows <= 2 MB over the option checks; master + worker <= 80 MB after them
(the service's idle goal, ``footprint.py``); the first add with options after a start
<= 100 ms (it paid yt-dlp's import, ~150-300 ms, before).
"""

from __future__ import annotations

import contextlib
import logging
import time

import common

log = logging.getLogger("bench.option_checks")

WORKER_GROWTH_MB = 2.0
SERVICE_MB = 80.0
FIRST_ADD_MS = 100.0
UNREACHABLE = "http://127.0.0.1:9/v.mp4"  # never downloaded: auto_start is off


def timed(server: common.Server, path: str, body: dict) -> float:
    started = time.perf_counter()
    response = server.post(path, body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    return elapsed


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "option-checks", args.keep)
        server = common.start_server(stack, root)
        tree = common.process_tree(server)
        with contextlib.suppress(AssertionError):  # a service without one: its "before"
            common.wait_for(lambda: any((root / "config").glob("ytdlp-options-*.json")),
                            timeout=20, message="the option table")
        time.sleep(3)
        worker_before = common.status_kb(tree["worker"], "VmRSS") / 1000
        requests = [
            ("add --no-mtime (first)", "/api/history",
             {"url": UNREACHABLE, "cli": "--no-mtime", "auto_start": False}),
            ("add -f best --retries 3", "/api/history",
             {"url": UNREACHABLE, "cli": "-f best --retries 3", "auto_start": False}),
            ("preset -x --audio-format mp3", "/api/presets",
             {"name": "music", "cli": "-x --audio-format mp3"}),
            ("task --write-subs", "/api/tasks",
             {"name": "News", "url": UNREACHABLE, "cli": "--write-subs --sub-langs en"}),
            ("condition --write-info-json", "/api/conditions",
             {"name": "c", "filter": "filesize > 1.5M", "cli": "--write-info-json"}),
            ("convert (warm download process)", "/api/yt-dlp/convert",
             {"args": "--no-mtime -f best"}),
        ]
        latencies = [(name, timed(server, path, payload)) for name, path, payload in requests]
        time.sleep(2)
        worker_after = common.status_kb(tree["worker"], "VmRSS") / 1000
        master = common.status_kb(tree["master"], "VmRSS") / 1000
        common.out("\nrequests with yt-dlp options, one after the other (ms)")
        common.table(("request", "ms"), latencies)
        common.out(f"\nworker RSS: {worker_before:.1f} MB 3 s after start, {worker_after:.1f} MB "
                   f"after the requests; master {master:.1f} MB")
        summary = common.Summary("option_checks" + (" (quick)" if args.quick else ""))
        summary.check("worker growth over the option checks", worker_after - worker_before,
                      WORKER_GROWTH_MB, "{:.1f}", " MB")
        summary.check("master + worker RSS after them", master + worker_after, SERVICE_MB,
                      "{:.1f}", " MB")
        summary.check("first add with options after start", latencies[0][1], FIRST_ADD_MS,
                      "{:.0f}", " ms")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 120 if args.quick else 300, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
