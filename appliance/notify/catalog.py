"""The events a notification target can ask for, and how chat targets merge them."""

from __future__ import annotations

from .. import events

TEST = "test"

# What the engine and the bus really emit and a target may subscribe to (``on``). An empty
# ``on`` means all of these. ``item_updated`` and ``item_moved`` are left out on purpose: they
# are the websocket's bookkeeping (several per download), not news for people.
EVENTS: tuple[str, ...] = (
    events.ITEM_ADDED,
    events.ITEM_COMPLETED,
    events.ITEM_CANCELLED,
    events.ITEM_DELETED,
    events.ITEM_ERROR,
    events.PAUSED,
    events.RESUMED,
    events.LOG_INFO,
    events.LOG_SUCCESS,
    events.LOG_WARNING,
    events.LOG_ERROR,
    events.TASK_DISPATCHED,
    TEST,
)

# Events about one item (they carry its id; the preset filter applies to them).
ITEM_EVENTS = frozenset({
    events.ITEM_ADDED, events.ITEM_COMPLETED, events.ITEM_CANCELLED, events.ITEM_DELETED,
    events.ITEM_ERROR,
})

# An item leaves the queue for good with one of these.
FINAL_EVENTS = frozenset({events.ITEM_COMPLETED, events.ITEM_ERROR, events.ITEM_CANCELLED})

# The engine follows item_error with a log_error ("Download failed") and item_completed with a
# log_success about the same item. A target that gets the item event does not get the log
# message too (one message per happening).
DUPLICATES = {events.LOG_ERROR: events.ITEM_ERROR, events.LOG_SUCCESS: events.ITEM_COMPLETED}

# Chat (Apprise) targets merge bursts of these, per kind of group and per batch (playlist).
MERGE_GROUP = {
    events.ITEM_ADDED: "added",
    events.ITEM_COMPLETED: "finished",
    events.ITEM_ERROR: "finished",
    events.ITEM_CANCELLED: "finished",
    events.ITEM_DELETED: "deleted",
}
