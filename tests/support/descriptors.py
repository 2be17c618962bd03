"""A process at its limit of open files: descriptors taken, the limit set, both given back."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator


@contextlib.contextmanager
def descriptors_taken(soft: int, hard: int | None = None, up_to: int | None = None
                      ) -> Iterator[None]:
    """This process's soft limit of open files set to ``soft`` (and its hard one to ``hard``),
    and descriptors taken up to the number ``up_to``, or every one the limit leaves (None)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1] if hard is None else hard))
    taken: list[int] = []
    try:
        with contextlib.suppress(OSError):  # EMFILE: every one is taken
            while up_to is None or not taken or taken[-1] < up_to:
                taken.append(os.open("/dev/null", os.O_RDONLY))
        yield
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, before)
