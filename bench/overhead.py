"""Overhead of the appliance over a plain transfer: curl vs. the yt-dlp CLI vs. the service.

For a big (~480 MB) and a small (~20 MB) file served by the local MediaOrigin (sendfile):

- ``curl -s -o FILE URL`` (the floor: one process, one copy),
- ``yt-dlp -q -o FILE URL`` (a cold CLI process each time),
- the appliance, started once with a warm pool: from ``POST /api/history`` to the websocket
  ``item_updated`` with status ``finished`` (the moment a client learns the file is there).

One warm-up of each (the appliance's is the first download after the server started, shown
apart), then N rounds, interleaved (curl, yt-dlp, appliance) so that drift hits all
three alike. Medians and ratios against curl. Downloaded files are deleted after every run.

Seven rounds, not three: on a virtual machine a run now and then takes 1.5-2x as long for
all three methods alike (the host backing fresh guest pages; ``dd`` shows it too), and a
median of three lets one such run decide the figure.

Goals: appliance <= 1.15x curl on the big file, <= 3x curl on the small one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import common
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

log = logging.getLogger("bench.overhead")

MB = 1_000_000
GOALS = {"big": 1.15, "small": 3.0}
RUN_TIMEOUT = 300.0


class FinishWatcher:
    """A websocket client on a thread: the receive time of each item's ``finished`` update."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        hello = json.loads(self.ws.recv(timeout=10))
        assert hello["event"] == "connected", hello
        self.finished: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self._cond = threading.Condition()
        self._thread = common.background(self._read, "ws-finish-watcher")

    def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            for raw in self.ws:
                now = time.perf_counter()
                event = json.loads(raw)
                # {"event", "data": Event}: the item is the Event's own data
                data = (event.get("data") or {}).get("data")
                if event.get("event") != "item_updated" or not isinstance(data, dict):
                    continue
                status = data.get("status")
                if status in {"finished", "error"}:
                    with self._cond:
                        if status == "finished":
                            self.finished[data["id"]] = now
                        else:
                            self.failed[data["id"]] = data.get("error") or "error"
                        self._cond.notify_all()

    def wait(self, item_id: str, timeout: float) -> float:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: item_id in self.finished or item_id in self.failed, timeout)
        if not ok:
            raise TimeoutError(f"item {item_id} did not finish within {timeout:g} s")
        if item_id in self.failed:
            raise RuntimeError(f"item {item_id} failed: {self.failed[item_id]}")
        return self.finished[item_id]

    def join(self) -> None:
        self.ws.close()
        self._thread.join(timeout=5)


class Runner:
    def __init__(self, root: Path, server: common.Server, watcher: FinishWatcher) -> None:
        self.scratch = root / "scratch"
        self.scratch.mkdir()
        self.server = server
        self.watcher = watcher
        self.count = 0

    def _target(self) -> Path:
        self.count += 1
        return self.scratch / f"out-{self.count}.mp4"

    def curl(self, url: str, size: int) -> float:
        target = self._target()
        started = time.perf_counter()
        subprocess.run(["curl", "-s", "-o", str(target), url], check=True, timeout=RUN_TIMEOUT)
        elapsed = time.perf_counter() - started
        _check_and_delete(target, size)
        return elapsed

    def ytdlp(self, url: str, size: int) -> float:
        target = self._target()
        started = time.perf_counter()
        subprocess.run([common.tool("yt-dlp"), "-q", "-o", str(target), url],
                       check=True, timeout=RUN_TIMEOUT, cwd=self.scratch)
        elapsed = time.perf_counter() - started
        _check_and_delete(target, size)
        return elapsed

    def appliance(self, url: str, size: int) -> float:
        self.count += 1
        body = {"url": url, "template": f"run-{self.count}.%(ext)s"}
        started = time.perf_counter()
        response = self.server.post("/api/history", body)
        response.raise_for_status()
        item_id = response.json()[0]["id"]
        done = self.watcher.wait(item_id, RUN_TIMEOUT)
        elapsed = done - started
        item = self.server.item(item_id)
        _check_and_delete(self.server.download_path / item["filename"], size)
        return elapsed


def _check_and_delete(path: Path, size: int) -> None:
    actual = path.stat().st_size
    path.unlink()
    os.sync()  # no writeback of an earlier run may overlap the next one (outside the timing)
    if actual != size:
        raise RuntimeError(f"{path} has {actual} bytes, expected {size}")


def measure(runner: Runner, url: str, size: int, rounds: int
            ) -> tuple[dict[str, float], dict[str, list[float]]]:
    methods = {"curl": runner.curl, "yt-dlp": runner.ytdlp, "appliance": runner.appliance}
    warm_up: dict[str, float] = {}
    for name, method in methods.items():
        warm_up[name] = method(url, size)
        log.info("warm-up %s (%s): %.3f s", name, common.mib(size), warm_up[name])
    times: dict[str, list[float]] = {name: [] for name in methods}
    for index in range(rounds):
        for name, method in methods.items():
            elapsed = method(url, size)
            times[name].append(elapsed)
            log.info("round %d %-9s %s: %.3f s", index + 1, name, common.mib(size), elapsed)
    return warm_up, times


def report(label: str, size: int, warm_up: dict[str, float], times: dict[str, list[float]],
           summary: common.Summary) -> None:
    medians = {name: common.median(values) for name, values in times.items()}
    curl = medians["curl"]
    common.out(f"\n{label} file: {size:,} bytes ({common.mib(size)}), "
               f"{len(times['curl'])} round(s) after one warm-up")
    rows: list[list[Any]] = []
    for name, values in times.items():
        rows.append([name, warm_up[name], " ".join(f"{v:.3f}" for v in values), medians[name],
                     size / medians[name] / 2**20, medians[name] / curl])
    common.table(("method", "warm-up s", "runs (s)", "median s", "MiB/s", "x curl"), rows)
    summary.check(f"{label}: appliance / curl", medians["appliance"] / curl, GOALS[label],
                  unit="x")
    summary.info(f"{label}: yt-dlp CLI / curl", f"{medians['yt-dlp'] / curl:.2f}x")
    summary.info(f"{label}: appliance - curl",
                 f"{(medians['appliance'] - curl) * 1000:.0f} ms")


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    big = (100 if args.quick else 480) * MB
    small = 20 * MB
    rounds = 1 if args.quick else 7

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "overhead", args.keep)
        origin = common.start_origin(stack, root)
        server = common.start_server(stack, root / "server", {"YTP_WARM_WORKERS": "1"})
        watcher = FinishWatcher(
            stack.enter_context(connect(server.ws_url, open_timeout=10, max_size=None)))
        stack.callback(watcher.join)
        runner = Runner(root, server, watcher)
        summary = common.Summary("overhead" + (" (quick)" if args.quick else ""))
        for label, size in (("big", big), ("small", small)):
            url = origin.big_file(size)
            warm_up, times = measure(runner, url, size, rounds)
            report(label, size, warm_up, times, summary)
            if label == "big":
                # The very first download after the server started: is the pool warm yet?
                summary.info("first download after start / curl",
                             f"{warm_up['appliance'] / common.median(times['curl']):.2f}x "
                             f"({warm_up['appliance']:.2f} s)")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 600 if args.quick else 1800, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
