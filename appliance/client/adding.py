"""URLs queued many to a request, and an answer for each: the service stores a request's
items all or none, so a batch it refuses is halved until the URLs it refuses are alone, and
one bad URL holds none of the others back. The TUI's add screen and ``appliance add`` use it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from .http import ApiClient, ApiError, Unreachable

# URLs sent in one request: a paste of thousands (a playlist's export) was a request each,
# minutes of "Queueing …".
BATCH = 200
# What a batch is refused with when one of its URLs (or its size) is refused: nothing stored.
REFUSED = frozenset({400, 413})


@dataclasses.dataclass(frozen=True)
class Added:
    """One URL's outcome: the service's answer, or why it was not queued."""

    url: str
    answer: dict[str, Any] | None = None
    error: str | None = None


def queue_each(client: ApiClient, urls: list[str], fields: dict[str, Any], *,
               batch_size: int = BATCH, failures_raise: bool = False) -> Iterator[Added]:
    """Each URL queued with ``fields``, ``batch_size`` to a request, in the given order, its
    outcome yielded as its batch is answered. A service that cannot be reached or fails
    otherwise than by refusing a URL is an outcome of its batch's URLs (the rest are not
    sent), or, with ``failures_raise``, the exception (a command says it once)."""
    unreachable: str | None = None
    pending = [urls[n:n + batch_size] for n in range(0, len(urls), batch_size)]
    while pending:
        batch = pending.pop(0)
        if unreachable is not None:
            yield from (Added(url, error=f"not sent: {unreachable}") for url in batch)
            continue
        try:
            answers = client.add([{"url": url, **fields} for url in batch])
        except Unreachable as exc:
            if failures_raise:
                raise
            unreachable = str(exc)  # the rest would each wait for the same timeout
            yield from (Added(url, error=unreachable) for url in batch)
        except ApiError as exc:
            if len(batch) > 1 and exc.status in REFUSED:
                half = len(batch) // 2
                pending[:0] = [batch[:half], batch[half:]]
            elif failures_raise and exc.status not in REFUSED:
                raise
            else:
                yield from (Added(url, error=str(exc)) for url in batch)
        else:  # (an empty array of answers was an IndexError that stopped the TUI)
            yield from (Added(url, answer=answer)  # (fewer answers than URLs: below)
                        for url, answer in zip(batch, answers, strict=False))
            yield from (Added(url, error="the service's answer names no item")
                        for url in batch[len(answers):])
