"""The TUI under load: ``appliance tui`` in an 80x24 pseudo-terminal, the real service holding
1,000 queued items (``auto_start: false``) while 5 downloads progress.

Figures: the TUI's CPU (% of one core) and RSS, bytes written to the terminal per second
while the 5 downloads progress (the queue shown, then the Subscriptions and the Files
views), and keypress-to-output latency (cursor down in the queue
table, measured once the downloads are paused so that every byte after a key is that key's
repaint).

Goals: <= 10 KB/s to the terminal, <= 100 ms p95 keypress latency. --quick: 200 items, a
shorter window.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time

import common
import requests

log = logging.getLogger("bench.tui")

GOAL_BYTES_PER_SECOND = 10_000
GOAL_LATENCY_MS = 100.0
DOWNLOADS = 5


class Terminal:
    """A pty of 80x24 with ``appliance tui`` on it; what it writes is counted."""

    def __init__(self, url: str, root: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "APPLIANCE_URL": url, "HOME": root,
               "XDG_CONFIG_HOME": root, "XDG_STATE_HOME": root}
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance", "tui"], stdin=slave,
                                     stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.lock = threading.Lock()
        self.total = 0
        self.last_output = 0.0
        self.tail = b""
        common.background(self._read, "pty-reader")

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.total += len(data)
                self.last_output = time.perf_counter()
                self.tail = (self.tail + data)[-20000:]

    def count(self) -> int:
        with self.lock:
            return self.total

    def press(self, keys: bytes) -> float | None:
        """Seconds from writing ``keys`` to the first byte written back, None if nothing
        came within a second."""
        with self.lock:
            before = self.total
        sent = time.perf_counter()
        os.write(self.master, keys)
        deadline = sent + 1.0
        while time.perf_counter() < deadline:
            with self.lock:
                if self.total > before:
                    return self.last_output - sent
            time.sleep(0.001)
        return None

    def wait_for(self, text: bytes, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if text in self.tail:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{text!r} never appeared on the terminal")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, b"q")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def body(stack: contextlib.ExitStack) -> int:
    args = ARGS
    items = 200 if args.quick else 1000
    window = 8.0 if args.quick else 20.0
    root = common.temp_root(stack, "tui", keep=args.keep)
    origin = common.start_origin(stack, root)
    server = common.start_server(stack, root / "server",
                                 {"YTP_MAX_WORKERS": str(DOWNLOADS), "YTP_WARM_WORKERS": "2"})
    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    # The downloads first: items have their info read in the order they were added.
    # 64 KiB/s each: minutes of progress, ten or so progress events a second in all.
    running = [{"url": origin.slow_url_at(64 * 1024) + f"&d={i}"} for i in range(DOWNLOADS)]
    answers = session.post(server.url + "/api/history", data=json.dumps(running),
                           timeout=60).json()
    queued = [{"url": f"{origin.clip_url}?n={i}", "auto_start": False} for i in range(items)]
    session.post(server.url + "/api/history", data=json.dumps(queued), timeout=120)
    ids = [a["id"] for a in answers]

    def downloading() -> int:
        live = session.get(server.url + "/api/history/live", timeout=30).json()["queue"]
        return sum(1 for i in ids if live.get(i, {}).get("status") == "downloading")

    deadline = time.monotonic() + 120
    while downloading() < DOWNLOADS and time.monotonic() < deadline:
        time.sleep(0.5)

    terminal = Terminal(server.url, str(root))
    stack.callback(terminal.close)
    terminal.wait_for(b"active", 60)
    time.sleep(3)  # the snapshot of the queue is drawn; measure the steady state after it

    cpu0, bytes0, started = common.cpu_seconds(terminal.proc.pid), terminal.count(), \
        time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - started
    cpu = (common.cpu_seconds(terminal.proc.pid) - cpu0) / elapsed * 100
    rate = (terminal.count() - bytes0) / elapsed
    rss = common.status_kb(terminal.proc.pid, "VmRSS") / 1024

    # The other live views while the downloads go on: what reaches the terminal.
    view_rates = {}
    for key, name, shown in ((b"5", "Subscriptions", b"Subscriptions ("),
                             (b"6", "Files", b" entries")):
        terminal.press(key)
        terminal.wait_for(shown, 30)
        time.sleep(2)  # the view is drawn; measure the steady state after it
        bytes0, started = terminal.count(), time.monotonic()
        time.sleep(window / 2)
        view_rates[name] = (terminal.count() - bytes0) / (time.monotonic() - started)
    terminal.press(b"1")

    session.post(server.url + "/api/history/pause", data=json.dumps({"ids": ids}), timeout=30)
    time.sleep(2)  # the last progress repaints are out
    latencies = []
    for _ in range(20 if args.quick else 60):
        latency = terminal.press(b"\x1b[B")  # cursor down
        if latency is not None:
            latencies.append(latency)
        time.sleep(0.15)

    summary = common.Summary("tui")
    summary.info("queued items / downloads progressing", f"{items} / {DOWNLOADS}")
    summary.info("TUI CPU, 5 downloads progressing", f"{cpu:.1f}% of a core")
    summary.info("TUI RSS", f"{rss:.0f} MiB")
    summary.check("bytes to the terminal", rate, GOAL_BYTES_PER_SECOND, "{:.0f}", " B/s")
    for name, view_rate in view_rates.items():
        summary.check(f"bytes to the terminal, {name} shown", view_rate,
                      GOAL_BYTES_PER_SECOND, "{:.0f}", " B/s")
    p95 = common.percentile(latencies, 95) * 1000
    summary.info("keypresses answered", f"{len(latencies)}")
    summary.check("keypress to output p95", p95, GOAL_LATENCY_MS, "{:.1f}", " ms")
    summary.print()
    return 0 if summary.passed else 1


if __name__ == "__main__":
    ARGS = common.parse_args(__doc__.splitlines()[0])
    logging.getLogger("bench").setLevel(logging.INFO)
    sys.exit(common.run(body, limit_seconds=600))
