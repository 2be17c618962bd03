"""Notification outbox: what keeping a notice across a restart costs, per notice.

In process, no server: the service's own database (``open_database`` in a temp folder) and
the outbox as the dispatcher and the lanes use it (``notify.outbox.Outbox``), with the notice
a webhook gets for a finished download (its item with the info a finished item has, ~2 KiB
as JSON). Measured, each ``ROUNDS`` times, the median:

- written as the dispatcher writes them: one transaction for the events it finds waiting,
  1 (a lone event), 10, 100 and 500 (a playlist's burst) at once; CPU and wall time per notice;
- removed as a lane removes them, one at a time as each is delivered;
- read back at start-up: ``TOTAL_SIZE`` rows (the most the queues keep) into jobs;
- the size of a row's notice (what each waiting notice adds to the database, about).

Goals: a lone notice's write <= 2 ms (the dispatcher's, never the engine's); reading back the
most that can wait <= 2 s. --quick: 1 round, 1,000 rows read back.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import time

import common

sys.path.insert(0, str(common.REPO))
from appliance.notify.batches import Notice
from appliance.notify.lanes import Target
from appliance.notify.outbox import TOTAL_SIZE, Job, Outbox
from appliance.store.database import open_database
from appliance.store.outbox import OutboxStore

log = logging.getLogger("bench.notify_outbox")

BATCHES = (1, 10, 100, 500)
NOTICES = 1000  # per batch size and round
GOAL_LONE_MS = 2.0
GOAL_RESTORE_S = 2.0


def _item(n: int) -> dict[str, object]:
    return {
        "id": f"item-{n:06d}", "title": f"A video of some length, number {n}", "status":
        "finished", "url": f"https://www.youtube.com/watch?v=abcdefghij{n}", "preset":
        "default", "folder": "", "filename": f"A video of some length, number {n} [x].mp4",
        "file_size": 123_456_789, "created_at": 1.7e9, "updated_at": 1.7e9 + 60,
        "info": {"duration": 634, "thumbnail": f"https://i.ytimg.com/vi/{n}/maxresdefault.jpg",
                 "uploader": "Someone", "description": "words " * 150},
    }


def _jobs(target: Target, first: int, count: int) -> list[Job]:
    return [Job(target, Notice("item_completed", _item(n), time.time(), _item(n), str(n),
                               "default")) for n in range(first, first + count)]


def _timed(action: object) -> tuple[float, float]:
    """Wall and CPU seconds of ``action()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    rounds = 1 if args.quick else 5
    restored = 1000 if args.quick else TOTAL_SIZE

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "notify-outbox", args.keep)
        database = root / "appliance.db"
        db, entities = open_database(database)
        stack.callback(db.disconnect)
        outbox = Outbox(OutboxStore(entities.NotificationOutbox))
        target = Target("db:1", 1, "hook", (), (), True,
                        {"url": "http://127.0.0.1:9/hook", "headers": []})
        writes: dict[int, list[tuple[float, float]]] = {size: [] for size in BATCHES}
        removes: list[tuple[float, float]] = []
        for round_ in range(rounds):
            for size in BATCHES:
                jobs = _jobs(target, 0, NOTICES)
                batches = [jobs[i:i + size] for i in range(0, NOTICES, size)]
                wall, cpu = _timed(lambda b=batches: [outbox.keep(batch) for batch in b])
                writes[size].append((wall / NOTICES, cpu / NOTICES))
                wall, cpu = _timed(lambda j=jobs: [outbox.done([job.row]) for job in j])
                removes.append((wall / NOTICES, cpu / NOTICES))
            log.info("round %d of %d done", round_ + 1, rounds)
        for first in range(0, restored, 500):
            outbox.keep(_jobs(target, first, min(500, restored - first)))
        with sqlite3.connect(database) as plain:
            grown = plain.execute("SELECT avg(length(notice)) FROM notification_outbox"
                                  ).fetchone()[0]
        reads = [_timed(lambda: outbox.restore({target.key: target}))
                 for _ in range(rounds)]
        back = len(outbox.restore({target.key: target}))

        def us(pairs: list[tuple[float, float]], which: int) -> float:
            return common.median(p[which] for p in pairs) * 1e6

        common.out(f"\nOutbox cost per notice (a finished item's webhook notice), median of "
                   f"{rounds} round(s) of {NOTICES}")
        rows = [[f"write, {size} at once", us(writes[size], 0), us(writes[size], 1)]
                for size in BATCHES]
        rows.append(["remove, one at a time", us(removes, 0), us(removes, 1)])
        common.table(("step", "wall µs / notice", "CPU µs / notice"), rows)
        restore_s = common.median(r[0] for r in reads)
        common.out(f"\nread back at start-up: {back} rows in {restore_s * 1000:.0f} ms "
                   f"(CPU {common.median(r[1] for r in reads) * 1000:.0f} ms); "
                   f"a row's notice {grown / 1024:.2f} KiB")
        summary = common.Summary("notify_outbox" + (" (quick)" if args.quick else ""))
        summary.check("lone notice written", us(writes[1], 0) / 1000, GOAL_LONE_MS,
                      "{:.3f}", " ms")
        for size in BATCHES[1:]:
            summary.info(f"write, {size} at once, per notice", f"{us(writes[size], 0):.0f} µs")
        summary.info("remove, per notice", f"{us(removes, 0):.0f} µs")
        summary.check(f"{back} rows read back", restore_s, GOAL_RESTORE_S, "{:.3f}", " s")
        summary.info("a row's notice (JSON)", f"{grown / 1024:.2f} KiB")
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300 if args.quick else 900, quiet_wait=10 if args.quick else 180)


if __name__ == "__main__":
    raise SystemExit(main())
