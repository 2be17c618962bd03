"""Leaks: file descriptors, threads and processes after many downloads.

500 downloads of the origin's small clip, in batches of 50, each with its own output template
(``"template": "<n>.%(ext)s"``). The gunicorn worker's open fds and threads and the number of
service processes are counted on the fresh server and after each batch, once the pool has
retired its idle yt-dlp processes and the zygote (YTP_WORKER_LINGER=5 after the last one).

Thread pools (gunicorn's
request threads, the extraction threads) grow lazily to their size and each thread keeps its
own SQLite connection, so the reference is the census after half the downloads. Goals: at the
end, fds and threads no higher than at half-way; 2 processes (master + worker); every download
finished. --quick: 50 downloads in batches of 10.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time

import common

log = logging.getLogger("bench.leaks")

LINGER = 5
BATCH_TIMEOUT = 600.0


@dataclasses.dataclass
class Census:
    label: str
    fds: int
    threads: int
    processes: int
    rss_mib: float
    fd_kinds: dict[str, int]


def census(server: common.Server, label: str) -> Census:
    tree = common.process_tree(server)
    worker = tree["worker"]
    return Census(label, common.fd_count(worker), common.thread_count(worker),
                  len(server.pids()), common.status_kb(worker, "VmRSS") / 1024,
                  fd_kinds(worker))


def fd_kinds(pid: int) -> dict[str, int]:
    """Open descriptors by target: socket, pipe, a file's name (the database, its WAL)."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if target[:1] != "/" else os.path.basename(target)
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def settle(server: common.Server) -> None:
    """Wait for the idle yt-dlp processes to retire: only master and worker left."""
    common.wait_for(lambda: len(server.pids()) == 2, timeout=LINGER + 60, interval=0.2,
                    message="idle download processes to retire")
    time.sleep(0.5)


def queue_total(server: common.Server) -> int:
    return server.get("/api/history?type=queue&per_page=1").json()["pagination"]["total"]


def done_total(server: common.Server, status: str) -> int:
    path = f"/api/history?type=done&per_page=1&status={status}"
    return server.get(path).json()["pagination"]["total"]


def run_batch(server: common.Server, url: str, first: int, size: int) -> float:
    body = [{"url": url, "template": f"{n}.%(ext)s"} for n in range(first, first + size)]
    started = time.perf_counter()
    response = server.post("/api/history", body)
    response.raise_for_status()
    common.wait_for(lambda: queue_total(server) == 0, timeout=BATCH_TIMEOUT, interval=0.2,
                    message=f"batch from {first} to finish")
    return time.perf_counter() - started


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    total, batch = (50, 10) if args.quick else (500, 50)

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "leaks", args.keep)
        origin = common.start_origin(stack, root)
        server = common.start_server(stack, root / "server",
                                     {"YTP_WORKER_LINGER": str(LINGER)})
        snapshots = [census(server, "fresh server")]
        seconds = []
        for first in range(0, total, batch):
            seconds.append(run_batch(server, origin.clip_url, first, batch))
            log.info("downloads %d..%d done in %.1f s", first, first + batch - 1, seconds[-1])
            settle(server)
            snapshots.append(census(server, f"after {first + batch} downloads"))
        finished, failed = done_total(server, "finished"), done_total(server, "!finished")
        # (not the folder's own marker, .appliance-folder: appliance/engine/folder_disk.py)
        files = sum(1 for p in server.download_path.iterdir()
                    if p.is_file() and not p.name.startswith("."))
        common.out(f"\n{total} downloads in batches of {batch}: {finished} finished, "
                   f"{failed} not finished, {files} files; "
                   f"{sum(seconds):.1f} s downloading ({total / sum(seconds):.1f} per s)")
        common.table(("when (idle)", "worker fds", "worker threads", "processes",
                      "worker RSS MiB"),
                     [[s.label, s.fds, s.threads, s.processes, s.rss_mib] for s in snapshots])
        # Thread pools (request threads, extraction threads) grow lazily up to their size, and
        # each thread keeps its SQLite connection: growth in the first half is expected.
        reference, last = snapshots[len(snapshots) // 2], snapshots[-1]
        for snapshot in (snapshots[0], reference, last):
            common.out(f"fds {snapshot.label}: "
                       + ", ".join(f"{k} {v}" for k, v in snapshot.fd_kinds.items()))
        summary = common.Summary("leaks" + (" (quick)" if args.quick else ""))
        summary.verdict(f"worker fds (fresh / {reference.label} / end)",
                        f"{snapshots[0].fds} / {reference.fds} / {last.fds}",
                        f"end <= {reference.fds}", last.fds <= reference.fds)
        summary.verdict(f"worker threads (fresh / {reference.label} / end)",
                        f"{snapshots[0].threads} / {reference.threads} / {last.threads}",
                        f"end <= {reference.threads}", last.threads <= reference.threads)
        summary.verdict("service processes when idle", str(last.processes), "2",
                        last.processes == 2)
        summary.verdict("downloads finished", f"{finished} / {total}", str(total),
                        finished == total and files == total)
        summary.info(f"worker RSS (fresh / {reference.label} / end)",
                     f"{snapshots[0].rss_mib:.1f} / {reference.rss_mib:.1f} / "
                     f"{last.rss_mib:.1f} MiB")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 600 if args.quick else 2400, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
