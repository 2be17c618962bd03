"""The heap: free memory given back to the system, one arena for all threads, and what
start-up built kept out of the garbage collector's sight.

glibc keeps what a process frees for its next allocations: after a start-up or a burst of
downloads, the worker's freed heap pages stay in its RSS (1-1.5 MB measured here) though
nothing uses them. ``malloc_trim(0)`` returns every whole free page of every arena.

glibc also gives each thread that allocates while another holds the main arena an arena of
its own (up to 8 per core): the worker's request, download and engine threads each kept a
few hundred KB there after a burst of downloads (15 arenas, 1.7 MiB after 3 downloads, which
``malloc_trim`` did not return). With one arena they share the main heap; the interpreter
lock serialises most of their allocations anyway.

Elsewhere than glibc (musl, macOS) both are no-ops.

The collector's full collections walk every object the process holds; in the worker, what
start-up built (modules, the app and its routes, the engine, the stores) is most of them and
lives as long as the process. A full collection stopped every thread of the worker for 19-25
ms, four times in a round of 500 task runs; with start-up's objects frozen, 0.4-3.2 ms
(``bench/tasks_scale.py``; the collector's own callbacks timed each one).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from typing import Any

# glibc's mallopt parameter for the most arenas a process may make (malloc.h).
M_ARENA_MAX = -8


@functools.cache
def _libc() -> Any:
    import ctypes  # loaded in the worker already (watchdog, zeroconf)

    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(None)
        if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt"):
            return libc
    return None


def give_back() -> None:
    """Return the heap's free pages to the system (milliseconds)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def one_arena() -> None:
    """Make every later thread of this process, and of the processes it forks, allocate from
    the main arena."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 1)


def settle() -> None:
    """Once start-up is over: its garbage collected, what survives frozen (never walked by a
    collection again), and the freed pages given back."""
    gc.collect()
    gc.freeze()
    give_back()
