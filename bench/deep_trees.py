"""Deep trees: a folder tree 1,100, 2,000 and 5,000 folders deep moved into a watched
download folder (one rename: one event), and the time until its deepest folder that a path can
name (PATH_MAX) is in the file index, with the watch still running after.

In process: the service's own ``FileIndex`` and ``FolderWatcher`` (watchdog's inotify observer
as ``files.deep_watch`` makes it follow any depth) on a temp folder, rescans an hour apart, so
only the watch can tell. Before the round files7 such a move ended watchdog's reader thread
(RecursionError) and the tree was found by the next rescan, up to ten minutes later.

Goal: each tree indexed to what a path can name within 5 s of the move, the watch running.
--quick: 1,100 only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

import common

sys.path.insert(0, str(common.REPO))
sys.path.insert(0, str(common.REPO / "tests"))
from support.browsing import deep_tree

from appliance.files import trees
from appliance.files.index import FileIndex
from appliance.files.watcher import WATCHING, FolderWatcher
from appliance.path_limits import PATH_MAX

log = logging.getLogger("bench.deep_trees")

GOAL_SECONDS = 5.0
DEPTHS = (1_100, 2_000, 5_000)


def nameable_depth(root: Path, depth: int) -> int:
    """How many of the tree's levels a path can name below ``root``/tree."""
    return max(d for d in range(depth + 1)
               if len(os.fsencode(root.joinpath("tree", *["d"] * d))) < PATH_MAX)


def moved_in(root: Path, place: Path, depth: int) -> tuple[int, float, bool]:
    """(levels indexed, seconds from the move to the deepest of them indexed, watching)."""
    index = FileIndex(root)
    watcher = FolderWatcher(index, watch=True, rescan_interval=3600)
    watcher.start()
    try:
        deadline = time.monotonic() + 60
        while not index.ready.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        deep_tree(place / "tree", depth)
        levels = min(depth, nameable_depth(index.root, depth))
        deepest = "/".join(["tree", *["d"] * levels])
        started = time.monotonic()
        os.rename(place / "tree", root / "tree")
        while not index.has_folder(deepest):
            if time.monotonic() - started > 60:
                return levels, float("nan"), watcher.mode == WATCHING
            time.sleep(0.005)
        return levels, time.monotonic() - started, watcher.mode == WATCHING
    finally:
        watcher.stop()
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        with contextlib.suppress(FileNotFoundError):
            trees.remove_tree(folder, "tree")
        os.close(folder)


def main() -> int:
    args = common.parse_args(__doc__.splitlines()[0])
    depths = DEPTHS[:1] if args.quick else DEPTHS

    def body(stack: contextlib.ExitStack) -> int:
        base = common.temp_root(stack, "deep-trees", args.keep)
        summary = common.Summary("deep_trees" + (" (quick)" if args.quick else ""))
        rows = []
        for depth in depths:
            root, place = base / f"root{depth}", base / f"place{depth}"
            root.mkdir()
            place.mkdir()
            levels, seconds, watching = moved_in(root, place, depth)
            rows.append([depth, levels, seconds, "yes" if watching else "NO",
                         f"{os.getloadavg()[0]:.2f}"])
            summary.check(f"{depth} deep: indexed after the move", seconds, GOAL_SECONDS,
                          "{:.2f}", " s")
            summary.verdict(f"{depth} deep: still watching", "yes" if watching else "no",
                            "yes", watching)
        common.out("\nA tree moved into the watched folder (one rename)")
        common.table(("depth", "levels a path names", "indexed after (s)", "watching",
                      "load"), rows)
        summary.print()
        return 0 if summary.passed else 1

    return common.run(body, 300, quiet_wait=10 if args.quick else 60)


if __name__ == "__main__":
    raise SystemExit(main())
