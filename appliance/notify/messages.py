"""What a notification says: a title and body for people (Apprise), a JSON envelope for
machines (webhooks), and the one summary a chat target gets for a burst."""

from __future__ import annotations

import dataclasses
import datetime
import re
import uuid
from typing import Any, ClassVar

from .. import __version__, events
from ..units import human_duration, human_size
from .catalog import TEST

# Apprise's notify types (apprise.NotifyType values).
INFO, SUCCESS, WARNING, FAILURE = "info", "success", "warning", "failure"

# Lines listed in a summary before "… and N more".
SUMMARY_LINES = 10
# The characters of a site's title (a file name, an error, a playlist's name) that a message
# shows: a title of 100,000 characters (a post's whole text) is a line, not a page.
MAX_TITLE = 300
MAX_TEXT = 1000  # a log message's text, an error

# A site's words that a chat service would read as more than words: a mention that pings a
# whole channel or someone (@everyone, @here, @channel, @all, @room; Discord's <@id>, Slack's
# <!channel>), a link under words of the site's choosing (Discord's [text](url), Slack's
# <url|text>). A zero-width space after the sign leaves the words as they read.
_MENTION = re.compile(r"(?<=@)(?=\w)|(?<=<)(?=\S)|(?<=\])(?=\()")
# ...and characters that are not seen but change what is: controls (a NUL, an escape) and the
# marks that reorder a line (RLO made "Downloaded: 4pm.exe" of "Downloaded: exe.mp4").
_UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# In a URL only the mentions that ping everyone: a zero-width space in youtube.com/@name
# would break the link.
_MASS_MENTION = re.compile(r"(?<=@)(?=(?:everyone|here|channel|all|room)\b)",
                           re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Message:
    title: str
    body: str
    type: str = INFO
    attach: str | None = None  # an http(s) image URL (the thumbnail), where supported


def _info(item: dict[str, Any]) -> dict[str, Any]:
    info = item.get("info")
    return info if isinstance(info, dict) else {}


def said(text: Any, limit: int = MAX_TITLE) -> str:
    """A site's words as a message shows them: cut to ``limit``, without unseen characters,
    mentions defused."""
    text = _UNSEEN.sub("", str(text))
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return _MENTION.sub("\u200b", text)


def link(url: Any) -> str:
    """A URL as a message shows it (a site gave a playlist's entries theirs)."""
    return _MASS_MENTION.sub("\u200b", _UNSEEN.sub("", str(url or "")))[:MAX_TEXT]


def item_title(item: dict[str, Any]) -> str:
    # (an item's title is its URL until the site names it: a link still)
    if item.get("title") and item["title"] != item.get("url"):
        return said(item["title"])
    return link(item.get("url") or item.get("id") or "an item")


def _facts(item: dict[str, Any]) -> str:
    size = human_size(item.get("file_size") or item.get("total_bytes"))
    duration = human_duration(_info(item).get("duration"))
    facts = ", ".join(f for f in (size, duration) if f)
    return f" ({facts})" if facts else ""


def thumbnail(item: dict[str, Any]) -> str | None:
    url = _info(item).get("thumbnail")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return url
    return None


def _item_message(name: str, item: dict[str, Any]) -> Message | None:
    title = item_title(item)
    source = link(item.get("url"))
    if name == events.ITEM_COMPLETED:
        lines = [f"Downloaded: {title}{_facts(item)}"]
        if item.get("filename"):
            lines.append(f"Saved as {said(item['filename'])}")
        return Message(f"Downloaded: {title}", "\n".join(lines), SUCCESS, thumbnail(item))
    if name == events.ITEM_ERROR:
        error = said(item.get("error") or "unknown error", MAX_TEXT)
        return Message(f"Download failed: {title}", f"Download failed: {title} — {error}\n{source}",
                       FAILURE, thumbnail(item))
    if name == events.ITEM_CANCELLED:
        return Message(f"Download cancelled: {title}", f"Cancelled: {title}\n{source}", WARNING)
    if name == events.ITEM_ADDED:
        return Message(f"Queued: {title}", f"Queued: {title}\n{source}", INFO)
    if name == events.ITEM_DELETED:
        return Message(f"Removed: {title}", f"Removed from the list: {title}", INFO)
    return None


def describe(name: str, data: Any) -> Message:
    """The message for people about one event."""
    data = data if isinstance(data, dict) else {"message": str(data)}
    message = _item_message(name, data)
    if message is not None:
        return message
    if name == events.PAUSED:
        return Message("Downloads paused",
                       "The download queue is paused; running downloads finish.", WARNING)
    if name == events.RESUMED:
        return Message("Downloads resumed", "The download queue runs again.", INFO)
    if name == TEST:
        return Message("Test notification",
                       str(data.get("message") or f"A test from appliance {__version__}."), INFO)
    if name == events.TASK_DISPATCHED:
        task = said(data.get("name"))
        return Message(f"Task {task}: {data.get('queued')} new",
                       f"Task {task} queued {data.get('queued')} new item(s) of "
                       f"{data.get('found')} found.\n{link(data.get('url'))}", INFO)
    if name.startswith("log_"):
        # (the engine's words, with a site's in them: "Skipped: <title>: …")
        level = name.removeprefix("log_")
        kind = {"error": FAILURE, "warning": WARNING, "success": SUCCESS}.get(level, INFO)
        return Message(said(data.get("title") or level.capitalize()),
                       said(data.get("message") or "", MAX_TEXT), kind)
    return Message(name.replace("_", " ").capitalize(), str(data), INFO)


def envelope(name: str, data: Any, at: float, delivery: str | None = None) -> dict[str, Any]:
    """What a webhook receives under its ``data_key``: the event, text for people, the data.
    ``delivery``: its id, the same at each try (a new one when None)."""
    message = describe(name, data)
    return {
        "id": delivery or str(uuid.uuid4()),
        "event": name,
        "title": message.title,
        "message": message.body,
        "created_at": datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(),
        "data": data,
    }


# --- bursts ---------------------------------------------------------------------------------


def brief(name: str, item: dict[str, Any], at: float) -> dict[str, Any]:
    """The little a summary needs from an item event (groups never hold whole items), and
    when it happened (a burst re-sent as webhooks carries each event's own time)."""
    return {
        "event": name,
        "at": at,
        "title": item_title(item),
        "size": item.get("file_size") or item.get("total_bytes"),
        "error": item.get("error") or "",
        "thumbnail": thumbnail(item),
        "data": item,
    }


def _listed(lines: list[str], total: int) -> list[str]:
    shown = lines[:SUMMARY_LINES]
    if total > len(shown):
        shown.append(f"… and {total - len(shown)} more")
    return shown


def _size(brief: dict[str, Any]) -> float:
    return brief["size"] if isinstance(brief["size"], int | float) else 0


@dataclasses.dataclass
class Burst:
    """A burst's item events as a summary needs them: the first ``HELD`` in full (the lines
    it lists come from them), the rest only counted (a playlist of 5,000 entries, 100,000
    items removed at once: each held whole was memory for nothing)."""

    briefs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    more: dict[str, int] = dataclasses.field(default_factory=dict)  # event: how many beyond
    more_size: float = 0  # of the completed ones beyond

    HELD: ClassVar[int] = 200

    def add(self, brief: dict[str, Any]) -> None:
        if len(self.briefs) < self.HELD:
            self.briefs.append(brief)
            return
        self.more[brief["event"]] = self.more.get(brief["event"], 0) + 1
        if brief["event"] == events.ITEM_COMPLETED:
            self.more_size += _size(brief)

    def count(self, event: str | None = None) -> int:
        if event is None:
            return len(self.briefs) + sum(self.more.values())
        return sum(b["event"] == event for b in self.briefs) + self.more.get(event, 0)


def summarize(group: str, batch_name: str, burst: Burst | list[dict[str, Any]]) -> Message:
    """One message for a burst of item events of one group (``added``, ``finished``,
    ``deleted``) of one batch (``batch_name``; empty for items that came one by one)."""
    if isinstance(burst, list):
        burst = Burst(burst)
    briefs = burst.briefs
    count = burst.count()
    if count == 1:
        return describe(briefs[0]["event"], briefs[0]["data"])
    source = f" from {said(batch_name)}" if batch_name else ""
    if group == "added":
        lines = _listed([f"- {b['title']}" for b in briefs], count)
        return Message(f"Queued {count} items{source}", "\n".join(lines), INFO)
    if group == "deleted":
        lines = _listed([f"- {b['title']}" for b in briefs], count)
        return Message(f"Removed {count} items{source}", "\n".join(lines), INFO)
    done = [b for b in briefs if b["event"] == events.ITEM_COMPLETED]
    failed = [b for b in briefs if b["event"] == events.ITEM_ERROR]
    cancelled = [b for b in briefs if b["event"] == events.ITEM_CANCELLED]
    done_count = burst.count(events.ITEM_COMPLETED)
    failed_count = burst.count(events.ITEM_ERROR)
    cancelled_count = burst.count(events.ITEM_CANCELLED)
    if done_count == count:
        title = f"Downloaded {count} items{source}"
    else:
        title = f"Downloaded {done_count} of {count} items{source}"
    lines = []
    if failed_count or cancelled_count:
        lines.append(", ".join(p for p in (
            f"{failed_count} failed" if failed_count else "",
            f"{cancelled_count} cancelled" if cancelled_count else "") if p))
    total = sum(_size(b) for b in done) + burst.more_size
    if done_count and human_size(total):
        lines.append(f"{human_size(total)} in all")
    entries = [f"✗ {b['title']} — {said(b['error'] or 'failed', MAX_TEXT)}" for b in failed]
    entries += [f"✓ {b['title']}" + (f" ({human_size(b['size'])})" if human_size(b["size"])
                                     else "") for b in done]
    entries += [f"○ {b['title']} (cancelled)" for b in cancelled]
    lines += _listed(entries, count)
    kind = SUCCESS if not failed_count else (FAILURE if not done_count else WARNING)
    picture = next((b["thumbnail"] for b in done if b["thumbnail"]), None)
    return Message(title, "\n".join(lines), kind, picture)
