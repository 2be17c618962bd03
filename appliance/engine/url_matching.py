"""Which of yt-dlp's extractors takes a URL, found in one loop over their patterns; a pattern
whose site the URL does not name is neither tried nor compiled.

yt-dlp asks its ~1,750 extractors in turn (``suitable``: a class method, a cached tuple and a
generator for each) until one says yes: 2.85 ms of a download process's CPU for a URL that
only the generic extractor takes, as a feed's entries are, for each job that names or reads
one. The answer is the same when the loop asks the patterns themselves, in the same order:
the first extractor whose pattern matches. An extractor that decides otherwise (a
``suitable`` of its own: about 80) is still asked.

Nearly every pattern names its site (``https?://(?:www\\.)?vimeo\\.com/...``): a run of
characters that every URL it matches contains. The loop reads that literal and tries the
pattern only when the URL contains it. Besides the time, that matters to a forked download
process's memory: each compiled pattern the loop touched (reference counts are written) was
a page copied from its zygote, ~1,100 of them (4 MB) on its first job; the literals, made
one after the other at warm-up, fill a few dozen pages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import variadic

# A shorter run is in too many URLs to sift anything out, as is any part of a URL's usual
# start (``http`` before an ``s?``, ``://www.``).
SHORTEST_LITERAL = 4
EVERY_URLS_START = "https://www."


class Pattern:
    """One of an extractor's patterns, compiled on its first use."""

    __slots__ = ("_compiled", "literal", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.literal = required_literal(source)
        self._compiled: re.Pattern[str] | None = None

    def match(self, url: str) -> bool:
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled.match(url) is not None


# (ie key, the extractor to ask, or None when its patterns say it all, its patterns)
_TABLE: list[tuple[str, Any, tuple[Pattern, ...]]] = []


def _literal_runs(parsed: Any) -> list[str]:
    """The runs of literal characters in a parsed sequence that every match contains: its
    own literals, joined through groups that hold only literals and set no flag; a group
    that holds more gives its own runs; anything else (a branch, a repeat, a class, an
    assertion, a group that sets a flag) ends a run."""
    runs: list[str] = []
    run: list[str] = []
    for op, arg in parsed:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        if op is sre.SUBPATTERN and not (arg[1] or arg[2]):
            inner = arg[3]
            if all(inner_op is sre.LITERAL for inner_op, _ in inner):
                run.extend(chr(char) for _, char in inner)
                continue
            runs.append("".join(run))
            run = []
            runs.extend(_literal_runs(inner))
            continue
        runs.append("".join(run))
        run = []
    runs.append("".join(run))
    return runs


def required_literal(source: str) -> str | None:
    """The longest telling run of characters that every string ``source`` matches contains,
    case for case; None when there is none (or the pattern ignores case)."""
    try:
        parsed = sre_parse.parse(source)
    except (re.error, RecursionError, OverflowError, TypeError):
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    telling = [run for run in _literal_runs(parsed)
               if len(run) >= SHORTEST_LITERAL and run not in EVERY_URLS_START]
    return max(telling, key=len, default=None)


@functools.cache
def _base_functions(name: str) -> set[Any]:
    """``name``'s function in the classes extractors start from (real and lazily loaded)."""
    bases: list[Any] = [InfoExtractor]
    try:
        from yt_dlp.extractor.lazy_extractors import LazyLoadExtractor
    except ImportError:  # a yt-dlp built without them
        pass
    else:
        bases.append(LazyLoadExtractor)
    return {getattr(base, name).__func__ for base in bases}


def _patterns(extractor: type) -> tuple[Pattern, ...] | None:
    """The patterns that alone decide for ``extractor``; None when it decides otherwise."""
    suitable = getattr(extractor.suitable, "__func__", None)
    match = getattr(extractor._match_valid_url, "__func__", None)
    if suitable not in _base_functions("suitable") or match not in _base_functions(
            "_match_valid_url"):
        return None
    if extractor._VALID_URL is False:
        return ()
    sources = variadic(extractor._VALID_URL)
    if not all(isinstance(source, str) for source in sources):
        return None
    return tuple(Pattern(source) for source in sources)


def prepare(extractors: Iterable[Any]) -> None:
    """Take ``extractors`` (classes, or the instances a YoutubeDL holds), in yt-dlp's order."""
    table = []
    for extractor in extractors:
        kind = extractor if isinstance(extractor, type) else type(extractor)
        patterns = _patterns(kind)
        table.append((extractor.ie_key(), extractor if patterns is None else None,
                      patterns or ()))
    _TABLE[:] = table


def extractor_key(url: str) -> str | None:
    """The key of the extractor yt-dlp would use for ``url``; None when none would."""
    if not _TABLE:  # not warmed up: yt-dlp's own order
        prepare(gen_extractor_classes())
    for key, ask, patterns in _TABLE:
        if ask is not None:
            if ask.suitable(url):
                return key
            continue
        for pattern in patterns:
            literal = pattern.literal
            if (literal is None or literal in url) and pattern.match(url):
                return key
    return None
