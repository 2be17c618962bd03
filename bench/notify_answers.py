"""What a chat target's answer costs an Apprise send: memory and time, this checkout and a base.

For each answer of ``tests/support/answers.py`` — 200 MiB (its length said), an endless body
(chunks of 16 MiB), 200 MiB of zeros gzipped (~200 KB sent), a head of 6 MB (95 lines of
64,000 bytes), a byte a second — one ``send_apprise`` through ``json://`` to that target on
127.0.0.1, after one to a sound target (Apprise loaded), in a process of its own: once from
the base checkout (``--base``, a commit: ``git archive`` of its ``appliance/``; by default
the one before answers were bounded) and once from this one. Figures: the process's resident
memory grown from before the send to its peak (VmHWM), the send's seconds and its outcome.
A child's address space is limited to 3 GiB (the base reads an endless body until then).

Goals, this checkout: grown <= 4 MiB for each answer; the trickle's send ends within its
timeout (10 s) and a second. Memory, not time, for the rest: no idle machine needed.
--quick: the 200 MiB answer and the trickle only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.notify_answers")

BASE = "a411ba2"  # an Apprise send read its answer whole
ANSWERS = ("sized", "endless", "bomb", "long_head", "trickle")
TIMEOUT = 10.0
GOAL_GROWN = 4 * 2**20


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def measure(answer: str) -> dict[str, Any]:
    """In the child: one send to a target answering ``answer``."""
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
    sys.path.append(str(Path(__file__).resolve().parent.parent / "tests"))
    from support.answers import Target
    from support.webhooks import Receiver

    from appliance.notify.messages import Message
    from appliance.notify.senders import send_apprise

    message = Message("Downloaded: Clip", "Downloaded: Clip (1.0 MB)", "success")
    sound = Receiver()
    try:
        warm = send_apprise(sound.url("/warm", scheme="json"), message, TIMEOUT)
    finally:
        sound.close()
    with Target(answer) as target:
        before = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the peak, from now
        started = time.monotonic()
        outcome = send_apprise(target.url(), message, TIMEOUT)
        took = time.monotonic() - started
        return {"grown": _status("VmHWM") - before, "seconds": took, "warm": warm.ok,
                "outcome": "ok" if outcome.ok else outcome.error[:60]}


def main() -> int:
    if sys.argv[1:2] == ["--measure"]:
        logging.basicConfig(level=logging.CRITICAL)
        sys.stdout.write(json.dumps(measure(sys.argv[2])) + "\n")
        return 0
    import common

    def extra(parser: Any) -> None:
        parser.add_argument("--base", default=BASE, help="the checkout to compare with")

    args = common.parse_args(__doc__.splitlines()[0], extra)
    answers = ("sized", "trickle") if args.quick else ANSWERS

    def body(stack: contextlib.ExitStack) -> int:
        root = common.temp_root(stack, "notify-answers", args.keep)
        trees = {"base": common.base_tree(root, args.base), "this": common.REPO}
        figures: dict[tuple[str, str], dict[str, Any]] = {}
        for answer in answers:
            for side, tree in trees.items():
                log.info("%s, %s", answer, side)
                done = subprocess.run(
                    [sys.executable, "-S", __file__, "--measure", answer],
                    env=common.checkout_env(tree), capture_output=True, text=True,
                    timeout=600, check=False)
                if done.returncode != 0:
                    log.error("%s, %s failed:\n%s", answer, side, done.stderr[-3000:])
                    return 1
                figures[answer, side] = json.loads(done.stdout.splitlines()[-1])
        common.out(f"one json:// send per answer, timeout {TIMEOUT:g} s; "
                   f"base = {args.base}, this = {common.REPO.name}")
        common.table(("answer", "side", "grown to peak", "s", "outcome"),
                     [(answer, side, common.mib(f["grown"]), f["seconds"], f["outcome"])
                      for (answer, side), f in figures.items()])
        summary = common.Summary("notify_answers")
        for answer in answers:
            summary.check(f"grown to peak, {answer} (MiB)", figures[answer, "this"]["grown"]
                          / 2**20, GOAL_GROWN / 2**20, "{:.1f}")
        summary.check("the trickle's send (s)", figures["trickle", "this"]["seconds"],
                      TIMEOUT + 1, "{:.1f}")
        summary.verdict("a sound target before each send", "", "ok",
                        all(f["warm"] for f in figures.values()))
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 1800, quiet_wait=0)


if __name__ == "__main__":
    sys.exit(main())
