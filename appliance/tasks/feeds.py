"""RSS and Atom documents read into the few fields a task needs.

A well-formed RSS 2.0 or Atom document is read with lxml (about 1 ms for 50 entries);
anything else -- broken XML, RSS 0.9x/1.0, CDF, odd encodings -- goes to feedparser, which
handles every dialect the wild has but costs ~100-200x more CPU (230 ms for 50 entries on a
busy 2-core box, measured here): with 500 feeds due in the same minute that was the whole
round's CPU, taken from the API's request threads. No DTD or entity is ever loaded. lxml
loads with the first feed, not with the service (~5 MB it may never use).
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
YOUTUBE = "{http://www.youtube.com/xml/schemas/2015}"


@functools.cache
def _parser() -> etree.XMLParser:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False)


class NotAFeed(ValueError):
    """The document is not RSS or Atom (the text says why)."""


@dataclasses.dataclass
class FeedItem:
    title: str = ""
    link: str = ""
    enclosures: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (url, type)
    published: float | None = None
    video_id: str = ""  # YouTube's yt:videoId


@dataclasses.dataclass
class Feed:
    title: str
    items: list[FeedItem]


def _date(text: str | None) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    for parse in (datetime.fromisoformat, parsedate_to_datetime):
        try:
            moment = parse(text)
        # OverflowError: a year of eleven digits (one such entry failed the whole feed)
        except (ValueError, TypeError, IndexError, OverflowError):
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


def _text(node: Any, path: str) -> str:
    return " ".join((node.findtext(path) or "").split())


def _rss(channel: Any) -> Feed:
    items = []
    for item in channel.iterfind("item"):
        enclosures = [(e.get("url") or "", e.get("type") or "")
                      for e in item.iterfind("enclosure") if e.get("url")]
        items.append(FeedItem(title=_text(item, "title"), link=_text(item, "link"),
                              enclosures=enclosures, published=_date(item.findtext("pubDate"))))
    return Feed(_text(channel, "title"), items)


def _atom(root: Any) -> Feed:
    items = []
    for entry in root.iterfind(f"{ATOM}entry"):
        links = list(entry.iterfind(f"{ATOM}link"))
        page = next((x.get("href") for x in links if x.get("rel", "alternate") == "alternate"
                     and x.get("href")), "")
        enclosures = [(x.get("href") or "", x.get("type") or "") for x in links
                      if x.get("rel") == "enclosure" and x.get("href")]
        published = entry.findtext(f"{ATOM}published") or entry.findtext(f"{ATOM}updated")
        items.append(FeedItem(title=_text(entry, f"{ATOM}title"), link=page or "",
                              enclosures=enclosures, published=_date(published),
                              video_id=_text(entry, f"{YOUTUBE}videoId")))
    return Feed(_text(root, f"{ATOM}title"), items)


def _fast(body: bytes) -> Feed | None:
    parser = _parser()
    from lxml import etree

    try:
        root = etree.fromstring(body, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag == "rss" and root.find("channel") is not None:
        return _rss(root.find("channel"))
    if root.tag == f"{ATOM}feed":
        return _atom(root)
    return None


def _timestamp(entry: Any) -> float | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return float(calendar.timegm(parsed)) if parsed else None


def sent_instead(body: bytes, wanted: str, check: str) -> str | None:
    """What a site sent in place of ``wanted`` ("RSS or Atom", "JSON"), in words, when it is
    what sites send instead (an empty answer, a login, an error or a block page: ``check``
    says what to look at); None when ``body`` is none of those."""
    from ..engine.media_check import HEAD_BYTES, text_kind

    if not body.strip():
        return "the site sent an empty answer"
    kind = (text_kind(body[:HEAD_BYTES]) or ("", ""))[0]
    if kind == "html":
        return (f"the site sent a web page (HTML), not {wanted}: often a login, an error or "
                f"a block page. {check}")
    if kind == "json" and wanted != "JSON":
        return f"the site sent a JSON answer, not {wanted}: often an error or a login"
    return None


def _instead(body: bytes, problem: Exception | None) -> str:
    """What ``body`` is instead of a feed, in words: a page a site sends in place of its feed
    (a login, a block) is named as such; else how the XML broke, without the parser's
    ``<unknown>:2:0:`` in front."""
    said = sent_instead(body, "RSS or Atom", "Check that the address is the feed's own")
    if said is not None:
        return said
    if problem is None:
        return "no RSS or Atom document"
    # (the line it names is off by one where feedparser put a declaration in front)
    reason = getattr(problem, "getMessage", None)
    if reason is None:
        return f"it is not RSS or Atom ({problem})"
    return f"it is not readable XML ({reason()})"


def _slow(body: bytes) -> Feed:
    import feedparser  # the slow path's parser, loaded when a feed first needs it (~10 MB)

    parsed = feedparser.parse(body)
    if not parsed.get("version") and not parsed.entries:
        raise NotAFeed(_instead(body, parsed.get("bozo_exception")))
    items = [FeedItem(
        title=str(e.get("title") or ""), link=str(e.get("link") or ""),
        enclosures=[(str(x.get("href")), str(x.get("type") or ""))
                    for x in e.get("enclosures") or [] if x.get("href")],
        published=_timestamp(e), video_id=str(e.get("yt_videoid") or ""),
    ) for e in parsed.entries]
    return Feed(str(parsed.feed.get("title") or ""), items)


def read_feed(body: bytes) -> Feed:
    """The feed in ``body``; NotAFeed when it is neither RSS nor Atom."""
    return _fast(body) or _slow(body)
