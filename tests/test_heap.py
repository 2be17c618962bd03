"""The C heap's free pages go back to the system: freed memory in the middle of the heap (that
glibc would keep for later) leaves the process's RSS once ``give_back`` has run. After
``one_arena``, new threads allocate from the main arena instead of making arenas of their own.
``settle`` collects start-up's garbage and freezes what survives."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")

PIECES = 400  # of 100 KiB each: below the size glibc would map apart, so they are on the heap


def anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


def test_freed_heap_pages_leave_the_process() -> None:
    pieces = [bytearray(100 * 1024) for _ in range(PIECES)]  # zero-filled: resident
    pin = bytearray(100 * 1024)  # above them: the heap's top cannot shrink by itself
    held = anon_kib()
    del pieces
    kept = anon_kib()
    heap.give_back()
    given = anon_kib()
    assert kept - given > PIECES * 100 // 2, (held, kept, given)
    assert len(pin) == 100 * 1024


# A process that starts THREADS threads, each allocating from the C heap (blocks of 100 KiB:
# Python hands them to malloc), then prints glibc's per-arena statistics to stderr.
ARENAS_SCRIPT = """
import ctypes, sys, threading
from appliance import heap
if sys.argv[1] == "one":
    heap.one_arena()
held = []
threads = [threading.Thread(target=lambda: held.append(bytearray(100 * 1024)))
           for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, mode], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stderr.count("Arena ")


def test_threads_share_one_arena() -> None:
    assert arenas("default") > 1  # glibc's own choice: an arena per new thread
    assert arenas("one") == 1


# A process with a garbage cycle and a live object, then ``settle``: prints whether the cycle
# is gone (not frozen with the rest) and how many objects are frozen, the live one among them.
SETTLE_SCRIPT = """
import gc, weakref
from appliance import heap
class Node:
    pass
gc.disable()  # only settle() collects here
cycle, live = Node(), [Node()]
cycle.me = cycle
gone = weakref.ref(cycle)
del cycle
heap.settle()
print(gone() is None, gc.get_freeze_count(), gc.is_tracked(live))
gc.collect()
print(any(o is live for o in gc.get_objects()))
"""


def test_settle_collects_then_freezes() -> None:
    done = subprocess.run([sys.executable, "-c", SETTLE_SCRIPT], capture_output=True,
                          text=True, timeout=60, check=True)
    first, second = done.stdout.splitlines()
    collected, frozen, tracked = first.split()
    assert collected == "True"  # the cycle was collected, not frozen with the rest
    assert int(frozen) > 1000 and tracked == "True"
    # A frozen object is out of every generation: a collection does not walk it.
    assert second == "False"
