"""The C heap: free memory given back to the system, and one arena for all threads.

glibc keeps what a process frees for its next allocations: after a start-up or a burst of
downloads, the worker's freed heap pages stay in its RSS (1-1.5 MB measured here) though
nothing uses them. ``malloc_trim(0)`` returns every whole free page of every arena.

glibc also gives each thread that allocates while another holds the main arena an arena of
its own (up to 8 per core): the worker's request, download and engine threads each kept a
few hundred KB there after a burst of downloads (15 arenas, 1.7 MiB after 3 downloads, which
``malloc_trim`` did not return). With one arena they share the main heap; the interpreter
lock serialises most of their allocations anyway.

Elsewhere than glibc (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import contextlib
import functools
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
