"""One budget for what all the sidecar's clients have waiting, whatever their number.

Each client's own buffer is capped (10,000 state frames or 16 MiB, see
:mod:`appliance.ws.clients`), but a cap per client is no bound on the service: 1,024 stalled
sockets (browsers left open on sleeping laptops, Home Assistant instances that stopped
reading) each at its cap would hold some 1.5 GB on a 1 GB box. The budget counts what is
really held for them all: each waiting frame's bytes once however many buffers share it (a
broadcast is encoded once), the bookkeeping of every waiting entry, and what each client's
sender has handed to its socket's write buffer. When a frame takes the total past the limit,
the client holding the most is closed (1013, with a reason it can show) until the total is
back under: a reader that keeps up holds next to nothing, so it is never the one.

Loop thread only; nothing is locked.
"""

from __future__ import annotations

import logging
import sys
from typing import Protocol

log = logging.getLogger("appliance.ws")

# What one waiting entry takes beside its frame: the buffer's ordered dict slot and node, its
# key (an int, or a ("p", key) tuple for a progress frame). Measured with tracemalloc on
# CPython 3.11: 133 bytes a state entry, 160-162 a progress one, by where the dict's last
# growth fell (tests/ws/test_budget.py keeps both honest).
STATE_ENTRY = 136
PROGRESS_ENTRY = 168
# A bytes object's header, paid once per distinct frame.
FRAME_COST = sys.getsizeof(b"")
# Close code for a client too far behind, by its own cap or the budget ("try again later").
CLOSE_TOO_SLOW = 1013
# The reason given to the client closed to bring the total back under the budget.
OVER_BUDGET = "service's websocket backlog is full and this client holds the most; reconnect"


class Holder(Protocol):
    """A client, as the budget sees it."""

    sid: str
    protocol: str
    closing: bool

    @property
    def holding(self) -> int: ...

    def close(self, code: int, reason: str) -> None: ...


class Budget:
    """The bytes held for every client's waiting frames, against ``limit`` (None: none)."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the websocket backlog budget must be at least 1 byte")
        self.limit = limit
        self.held = 0
        self.closed = 0  # clients closed to keep within the limit
        # How many waiting entries hold each distinct frame, by the frame's id (a frame
        # counted here is alive, held by those entries, so its id is its own).
        self._refs: dict[int, int] = {}
        self._holders: dict[Holder, None] = {}

    def take(self, frame: bytes, entry: int) -> None:
        """A buffer now holds ``frame`` in one more entry, which costs ``entry`` bytes."""
        key = id(frame)
        refs = self._refs.get(key, 0)
        self._refs[key] = refs + 1
        self.held += entry if refs else len(frame) + FRAME_COST + entry

    def release(self, frame: bytes, entry: int) -> None:
        """An entry of ``entry`` bytes holding ``frame`` left its buffer."""
        key = id(frame)
        refs = self._refs[key] - 1
        if refs:
            self._refs[key] = refs
            self.held -= entry
        else:
            del self._refs[key]
            self.held -= len(frame) + FRAME_COST + entry

    def adjust(self, change: int) -> None:
        """Bytes held outside the buffers (a socket's write buffer) grew or shrank."""
        self.held += change

    def join(self, holder: Holder) -> None:
        self._holders[holder] = None

    def leave(self, holder: Holder) -> None:
        self._holders.pop(holder, None)

    @property
    def holders(self) -> int:
        """The clients counted (open ones: a closing client has left)."""
        return len(self._holders)

    @property
    def over(self) -> bool:
        return self.limit is not None and self.held > self.limit

    def relieve(self) -> None:
        """Close the clients holding the most until the total is within the limit."""
        while self.over:
            victim = max((h for h in self._holders if not h.closing),
                         key=lambda h: h.holding, default=None)
            if victim is None or victim.holding <= 0:
                return  # closing one that holds nothing frees nothing
            log.warning(
                "websocket clients hold %d bytes waiting, over the budget of %d "
                "(YTP_WS_BACKLOG_BUDGET); closing client %s (%s), which holds %d, so that it "
                "reconnects and resyncs", self.held, self.limit, victim.sid, victim.protocol,
                victim.holding,
            )
            self.closed += 1
            victim.close(CLOSE_TOO_SLOW, OVER_BUDGET)
