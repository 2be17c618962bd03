"""What people and programs are told: each event's title, text and kind (Apprise shows the kind
as the message's colour or icon), a burst's one summary, the webhook envelope, and which
playlist an event belongs to (what decides when a chat summary may go out)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

from appliance import __version__
from appliance.events import Event
from appliance.notify.batches import BatchTracker
from appliance.notify.messages import (
    Burst,
    Message,
    brief,
    describe,
    envelope,
    link,
    summarize,
)

ITEM = {"id": "7", "title": "Clip", "url": "https://example.org/v/7", "preset": "audio"}


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("item_cancelled", ITEM,
     Message("Download cancelled: Clip", "Cancelled: Clip\nhttps://example.org/v/7", "warning")),
    ("item_added", ITEM, Message("Queued: Clip", "Queued: Clip\nhttps://example.org/v/7")),
    ("item_deleted", ITEM, Message("Removed: Clip", "Removed from the list: Clip")),
    ("item_error", {"id": "7", "url": "https://example.org/v/7"},
     Message("Download failed: https://example.org/v/7", "Download failed: "
             "https://example.org/v/7 — unknown error\nhttps://example.org/v/7", "failure")),
    ("item_added", {"id": "7"}, Message("Queued: 7", "Queued: 7\n")),
    ("item_added", {}, Message("Queued: an item", "Queued: an item\n")),
    ("item_completed", {"title": "Clip", "filename": "a/Clip.mp4", "total_bytes": 999,
                        "info": {"duration": 59.6, "thumbnail": "HTTP://127.0.0.1/t.jpg"}},
     Message("Downloaded: Clip", "Downloaded: Clip (999 B, 1 min)\nSaved as a/Clip.mp4",
             "success", "HTTP://127.0.0.1/t.jpg")),
    ("item_completed", {"title": "Clip", "info": "not a dict"},
     Message("Downloaded: Clip", "Downloaded: Clip", "success")),
    ("paused", {"paused": True}, Message(
        "Downloads paused", "The download queue is paused; running downloads finish.",
        "warning")),
    ("resumed", {}, Message("Downloads resumed", "The download queue runs again.")),
    ("test", {}, Message("Test notification", f"A test from appliance {__version__}.")),
    ("test", {"message": "Hello"}, Message("Test notification", "Hello")),
    ("task_dispatched", {"name": "News", "queued": 2, "found": 5, "url": "https://e.org/c"},
     Message("Task News: 2 new", "Task News queued 2 new item(s) of 5 found.\n"
             "https://e.org/c")),
    ("log_error", {"message": "Disk full"}, Message("Error", "Disk full", "failure")),
    ("log_warning", {"title": "Careful", "message": "x"}, Message("Careful", "x", "warning")),
    ("log_success", {}, Message("Success", "", "success")),
    ("log_info", {"message": "Hi"}, Message("Info", "Hi", "info")),
    ("something_new", "plain text", Message("Something new", "{'message': 'plain text'}")),
])
def test_each_event_tells_people_what_happened(name: str, data: Any,
                                               expected: Message) -> None:
    assert describe(name, data) == expected


def test_the_webhook_envelope() -> None:
    at = 1_700_000_000.25
    sent = envelope("item_deleted", ITEM, at)
    assert uuid.UUID(sent.pop("id")).version == 4
    assert sent == {"event": "item_deleted", "title": "Removed: Clip",
                    "message": "Removed from the list: Clip",
                    "created_at": "2023-11-14T22:13:20.250000+00:00", "data": ITEM}
    assert datetime.datetime.fromisoformat(sent["created_at"]).timestamp() == at
    assert envelope("paused", {}, at)["id"] != envelope("paused", {}, at)["id"]


def _briefs(event: str, titles: list[str], **item: Any) -> list[dict[str, Any]]:
    return [brief(event, {"id": t, "title": t, **item}, 0.0) for t in titles]


def test_a_brief_keeps_what_a_summary_shows() -> None:
    item = {"id": "1", "url": "u", "total_bytes": 5, "error": None,
            "info": {"thumbnail": "ftp://x/t.jpg"}}
    assert brief("item_error", item, 5.5) == {
        "event": "item_error", "at": 5.5, "title": "u", "size": 5, "error": "",
        "thumbnail": None, "data": item}


def test_summaries_of_a_burst() -> None:
    added = summarize("added", "My list", _briefs("item_added", [f"t{n}" for n in range(11)]))
    assert added == Message("Queued 11 items from My list", "\n".join(
        [f"- t{n}" for n in range(10)] + ["… and 1 more"]))
    deleted = summarize("deleted", "", _briefs("item_deleted", ["a", "b"]))
    assert deleted == Message("Removed 2 items", "- a\n- b")
    # A group of one is that event's own message.
    [one] = _briefs("item_deleted", ["a"])
    assert summarize("deleted", "My list", [one]) == describe("item_deleted", one["data"])

    done = _briefs("item_completed", ["a", "b"], file_size=1500,
                   info={"thumbnail": "https://h/b.jpg"})
    done[0]["thumbnail"] = None
    assert summarize("finished", "L", done) == Message(
        "Downloaded 2 items from L", "3.0 KB in all\n✓ a (1.5 KB)\n✓ b (1.5 KB)", "success",
        "https://h/b.jpg")
    unsized = _briefs("item_completed", ["a", "b"])
    assert summarize("finished", "", unsized).body == "✓ a\n✓ b"

    failed = _briefs("item_error", ["x"], error="HTTP 404") + _briefs("item_error", ["y"])
    cancelled = _briefs("item_cancelled", ["z"])
    assert summarize("finished", "", failed + cancelled) == Message(
        "Downloaded 0 of 3 items", "2 failed, 1 cancelled\n✗ x — HTTP 404\n✗ y — failed\n"
        "○ z (cancelled)", "failure")
    assert summarize("finished", "", unsized + cancelled) == Message(
        "Downloaded 2 of 3 items", "1 cancelled\n✓ a\n✓ b\n○ z (cancelled)", "success")
    mixed = summarize("finished", "", unsized + failed)
    assert mixed.type == "warning" and mixed.body.splitlines()[0] == "2 failed"


def test_a_playlist_stays_open_until_its_last_entry_ends() -> None:
    tracker = BatchTracker()
    entry = {"preset": "audio", "batch_id": "P", "batch_name": "My list"}
    for n in (1, 2):
        notice, closed = tracker.observe(Event("item_added", {"id": f"e{n}", "title": f"E{n}",
                                                              **entry}))
        assert notice is not None and notice.batch_open and closed == []
    # An entry known only from an update (the service restarted): it counts as queued.
    assert tracker.observe(Event("item_updated", {"id": "e3", "kind": "queue", **entry})) \
        == (None, [])
    assert tracker.observe(Event("item_updated", {"id": "x", "kind": "done", **entry})) \
        == (None, [])
    assert set(tracker.items) == {"e1", "e2", "e3"}

    # The final events carry only the id: what the tracker knew fills in the rest.
    notice, closed = tracker.observe(Event("item_completed", {"id": "e1"}))
    assert notice is not None and closed == []
    assert (notice.item_id, notice.preset, notice.batch_id, notice.batch_name,
            notice.batch_open) == ("e1", "audio", "P", "My list", True)
    assert notice.item["title"] == "E1" and notice.data == {"id": "e1"}
    tracker.observe(Event("item_deleted", {"id": "e3"}))
    notice, closed = tracker.observe(Event("item_cancelled", {"id": "e2"}))
    assert notice is not None and not notice.batch_open and closed == ["P"]
    assert tracker.items == {} and tracker.batches == {}

    # Not about one item: no id, whatever the data holds.
    notice, _ = tracker.observe(Event("paused", {"id": "e9"}))
    assert notice is not None and notice.item_id == "" and notice.batch_id == ""
    notice, _ = tracker.observe(Event("log_error", {"id": "e9", "message": "m"}))
    assert notice is not None and notice.item_id == "e9"
    notice, _ = tracker.observe(Event("item_added", {"title": "no id"}))
    assert notice is not None and tracker.items == {}


ZWSP = "\u200b"


def test_a_sites_words_are_words_in_a_chat() -> None:
    """A title, file name, error or playlist name is the site's: a chat must not read it as a
    mention that pings a whole channel (Discord, Mattermost, Matrix, Slack), nor show it
    reordered or as a page of text."""
    hostile = {
        "id": "7", "url": "https://example.org/@everyone/v",
        "title": "@everyone free <@&123> <!channel> @here \u202eexe.mp4\x00\x1b[31m",
        "filename": "@room.mp4", "error": "<@42> " + "E" * 5000,
    }
    done = describe("item_completed", hostile)
    assert done.title == (f"Downloaded: @{ZWSP}everyone free <{ZWSP}@&123> <{ZWSP}!channel> "
                          f"@{ZWSP}here exe.mp4[31m")
    assert done.body.endswith(f"Saved as @{ZWSP}room.mp4")
    failed = describe("item_error", hostile)
    error = failed.body.split(" — ", 1)[1]
    assert error.startswith(f"<{ZWSP}@{ZWSP}42> EEE")  # (cut, then defused)
    assert len(error.split("\n")[0]) == 1000 + 2 and error.split("\n")[0].endswith("E…")
    # The URL stays a link: only a mention that pings everyone is defused in it.
    assert failed.body.split("\n")[1] == f"https://example.org/@{ZWSP}everyone/v"
    assert link("https://youtube.com/@name/videos") == "https://youtube.com/@name/videos"
    named_later = {"url": "https://youtube.com/@name", "title": "https://youtube.com/@name"}
    assert describe("item_added", named_later).title == "Queued: https://youtube.com/@name"
    long = describe("item_added", {"title": "T" * 100_000})
    assert long.title == "Queued: " + "T" * 299 + "…"
    log = describe("log_warning", {"title": "@all", "message": "Skipped: @here: " + "x" * 2000})
    assert log.title == f"@{ZWSP}all"
    assert log.body.startswith(f"Skipped: @{ZWSP}here: xx") and len(log.body) == 1000 + 1
    task = describe("task_dispatched", {"name": "@channel", "queued": 1, "found": 1,
                                        "url": "https://e.org/@here"})
    assert task.title == f"Task @{ZWSP}channel: 1 new"
    assert task.body.endswith(f"https://e.org/@{ZWSP}here")
    summary = summarize("finished", "@everyone's mix", [
        brief("item_completed", {"title": "@here a"}, 1.0),
        brief("item_error", {"title": "b", "error": "<!everyone>"}, 2.0)])
    assert summary.title == f"Downloaded 1 of 2 items from @{ZWSP}everyone's mix"
    assert f"✗ b — <{ZWSP}!everyone>" in summary.body
    assert f"✓ @{ZWSP}here a" in summary.body
    assert "@everyone" not in summary.title + summary.body
    # A link under words of the site's choosing (Discord's Markdown, Slack's own form).
    masked = describe("item_added", {"title": "[Free gift](https://evil.example) "
                                              "<https://evil.example|Your bank>"})
    assert masked.title == (f"Queued: [Free gift]{ZWSP}(https://evil.example) "
                            f"<{ZWSP}https://evil.example|Your bank>")


def test_a_long_burst_is_counted_not_held() -> None:
    """A playlist of 5,000 entries (or 100,000 items removed at once): the first ``HELD`` are
    kept whole for the lines a summary lists, the rest only counted, and the summary still
    says all of them."""
    burst = Burst()
    for n in range(5000):
        burst.add(brief("item_completed", {"id": str(n), "title": f"t{n}",
                                           "file_size": 1_000_000}, 0.0))
    for n in range(3):
        burst.add(brief("item_error", {"id": f"x{n}", "title": f"x{n}", "error": "HTTP 403"},
                        0.0))
    assert len(burst.briefs) == Burst.HELD
    assert burst.more == {"item_completed": 5000 - Burst.HELD, "item_error": 3}
    assert burst.count() == 5003 and burst.count("item_error") == 3
    summary = summarize("finished", "Big", burst)
    assert summary.title == "Downloaded 5000 of 5003 items from Big"
    assert summary.type == "warning"
    lines = summary.body.splitlines()
    assert lines[:2] == ["3 failed", "5.0 GB in all"]
    assert lines[2:4] == ["✓ t0 (1.0 MB)", "✓ t1 (1.0 MB)"]
    assert lines[-1] == "… and 4993 more"
    removed = Burst()
    for n in range(100_000):
        removed.add(brief("item_deleted", {"id": str(n)}, 0.0))
    assert len(removed.briefs) == Burst.HELD
    assert summarize("deleted", "", removed).title == "Removed 100000 items"
