"""Which of yt-dlp's extractors takes a URL, found in one loop over their patterns; a pattern
whose site the URL does not name is neither tried nor compiled.

yt-dlp asks its ~1,750 extractors in turn (``suitable``: a class method, a cached tuple and a
generator for each) until one says yes: 2.85 ms of a download process's CPU for a URL that
only the generic extractor takes, as a feed's entries are, for each job that names or reads
one. The answer is the same when the loop asks the patterns themselves, in the same order:
the first extractor whose pattern matches. An extractor that decides otherwise (a
``suitable`` of its own: about 80) is still asked -- only when the URL names its site, where
its ``suitable`` is seen (in its source) to say yes only when its own pattern matches, as
nearly all do (``False if OtherIE.suitable(url) else super().suitable(url)``).

Nearly every pattern names its site (``https?://(?:www\\.)?vimeo\\.com/...``): a run of
characters that every URL it matches contains. The loop reads that literal and tries the
pattern only when the URL contains it. Besides the time, that matters to a forked download
process's memory: each object the loop touches has its reference count written, so its page
is copied from the zygote. Walking every compiled pattern and asking every extractor with a
``suitable`` of its own copied ~1,100 pages (4 MB) on a process's first job; now ~600.

Reading the literals of ~1,900 patterns (Python's own regex parser, in Python) and the
``suitable``s' sources is 0.6 s of CPU here, most of a zygote's warm-up after its imports
(~1.4 s), and the same for every zygote of one yt-dlp: a start of the service, the next
download after the pool retired, each test's runtime. So what was read is kept in a file
(``prepare(remembered=...)``: the bytecode folder, the service's own) for the yt-dlp, the
Python and this module's code it was read with, and read back in a few milliseconds. So are the
compiled forms of the patterns every URL is tried against, which a zygote compiles for all the
processes it forks: 0.2 s of its warm-up to compile, a few milliseconds to build again
(``appliance.regex_forms``).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import inspect
import json
import linecache
import logging
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Iterable
from pathlib import Path
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import variadic
from yt_dlp.version import __version__ as YTDLP_VERSION

from .. import regex_forms

log = logging.getLogger(__name__)

# A shorter run is in too many URLs to sift anything out, as is any part of a URL's usual
# start (``http`` before an ``s?``, ``://www.``).
SHORTEST_LITERAL = 4
EVERY_URLS_START = "https://www."
# A pattern is tried when the URL holds any of its literals: a branch of more alternatives
# (a site's dozens of mirrors) would cost more to look for than to try the pattern.
MOST_ALTERNATIVES = 4


class Pattern:
    """One of an extractor's patterns, compiled on its first use."""

    __slots__ = ("_compiled", "literals", "source")

    def __init__(self, source: str, literals: tuple[str, ...] | None) -> None:
        self.source = source
        self.literals = literals
        self._compiled: re.Pattern[str] | None = None

    def match(self, url: str) -> bool:
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled.match(url) is not None

    def compile_with(self, readings: _Readings) -> None:
        self._compiled = readings.compiled(self.source)


# One row per literal of a pattern, in yt-dlp's order (see ``_rows``).
_TABLE: list[tuple[str, str | None, Any, Any]] = []


def _telling(option: tuple[str, ...] | None) -> bool:
    if not option or len(option) > MOST_ALTERNATIVES:
        return False
    return all(len(literal) >= SHORTEST_LITERAL and literal not in EVERY_URLS_START
               for literal in option)


def _strength(option: tuple[str, ...]) -> tuple[int, int]:
    """The shortest of its literals first (how much it sifts out), then the fewest."""
    return min(map(len, option)), -len(option)


def _requirement(parsed: Any) -> tuple[str, ...] | None:
    """The strongest set of literals (one of them, at least, in every string that the parsed
    sequence matches): a run of its literals, joined through groups that hold only literals
    and set no flag; or what a group that sets no flag requires, a branch (one of its
    alternatives' each), or something repeated at least once. None when nothing telling is
    required."""
    options: list[tuple[str, ...]] = []
    run: list[str] = []
    for op, arg in parsed:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        flagless_group = op is sre.SUBPATTERN and not (arg[1] or arg[2])
        if flagless_group and all(inner_op is sre.LITERAL for inner_op, _ in arg[3]):
            run.extend(chr(char) for _, char in arg[3])
            continue
        options.append(("".join(run),))
        run = []
        if flagless_group:
            options.append(_requirement(arg[3]) or ())
        elif op is sre.BRANCH:
            each = [_requirement(branch) for branch in arg[1][:MOST_ALTERNATIVES + 1]]
            if len(arg[1]) <= MOST_ALTERNATIVES and all(_telling(option) for option in each):
                options.append(tuple(dict.fromkeys(
                    literal for option in each for literal in option)))  # type: ignore[union-attr]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[0] >= 1:
            options.append(_requirement(arg[2]) or ())
    options.append(("".join(run),))
    return max((option for option in options if _telling(option)), key=_strength,
               default=None)


def required_literals(source: str) -> tuple[str, ...] | None:
    """Literals of which every string ``source`` matches holds one (case for case); None when
    there are none telling enough (or the pattern ignores case)."""
    try:
        parsed = sre_parse.parse(source)
        if parsed.state.flags & re.IGNORECASE:
            return None
        return _requirement(parsed)
    except Exception:  # a pattern (a newer yt-dlp's) or a parse (a newer Python's) this
        return None  # reading does not follow: tried for every URL, as yt-dlp does.


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


def _patterns(extractor: type, readings: _Readings) -> tuple[Pattern, ...] | None:
    """The patterns of ``extractor`` (None when they are not where the base class keeps
    them, or it reads them its own way)."""
    if getattr(extractor._match_valid_url, "__func__", None) not in _base_functions(
            "_match_valid_url"):
        return None
    if extractor._VALID_URL is False:
        return ()
    sources = variadic(extractor._VALID_URL)
    if not all(isinstance(source, str) for source in sources):
        return None
    return tuple(Pattern(source, readings.literals(source)) for source in sources)


def _suitable_of(extractor: type, after: type | None = None) -> tuple[Any, type] | None:
    """The ``suitable`` function ``extractor`` uses (or, ``after`` one of its classes, the one
    the classes after it give: what ``super()`` calls) and the class that defines it."""
    mro = extractor.__mro__
    start = 0 if after is None else mro.index(after) + 1
    for kind in mro[start:]:
        if "suitable" in vars(kind):
            return getattr(vars(kind)["suitable"], "__func__", None), kind
    return None


def _readable_definition(function: Any) -> tuple[ast.FunctionDef, str, str] | None:
    """The parsed definition of a ``suitable`` and the names of its two parameters, when it
    is one that can be read: two plain parameters never bound again, nothing nested, no
    ``yield``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, ast.FunctionDef):
        return None
    arguments = definition.args
    if len(arguments.args) != 2 or arguments.vararg or arguments.kwarg or \
            arguments.kwonlyargs or arguments.posonlyargs:
        return None
    cls, url = (argument.arg for argument in arguments.args)
    for node in list(ast.walk(definition))[1:]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
                             ast.Yield, ast.YieldFrom, ast.Await, ast.Global, ast.Nonlocal)):
            return None
        if isinstance(node, ast.Name) and node.id in (cls, url) and \
                not isinstance(node.ctx, ast.Load):
            return None
    return definition, cls, url


class _SuitableReading:
    """One ``suitable`` read: which of the values it returns hold its own pattern's match."""

    def __init__(self, extractor: type, defined_in: type, cls: str, url: str) -> None:
        self.extractor = extractor
        self.defined_in = defined_in
        self.cls = cls
        self.url = url

    def requires(self, value: ast.expr | None) -> bool:
        if value is None or (isinstance(value, ast.Constant) and not value.value):
            return True
        if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.And):
            return any(self.requires(part) for part in value.values)
        if isinstance(value, ast.IfExp):
            return self.requires(value.body) and self.requires(value.orelse)
        if isinstance(value, ast.Compare) and len(value.ops) == 1 \
                and isinstance(value.ops[0], ast.IsNot) \
                and isinstance(value.comparators[0], ast.Constant) \
                and value.comparators[0].value is None:
            return self.requires(value.left)
        if self.calls_with_the_url(value, "_match_valid_url"):
            owner = value.func.value  # type: ignore[attr-defined]
            return isinstance(owner, ast.Name) and owner.id == self.cls
        if self.calls_with_the_url(value, "suitable"):
            return self.super_requires(value.func.value)  # type: ignore[attr-defined]
        return False

    def calls_with_the_url(self, call: ast.expr, name: str) -> bool:
        return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == name and not call.keywords and len(call.args) == 1
                and isinstance(call.args[0], ast.Name) and call.args[0].id == self.url)

    def super_requires(self, owner: ast.expr) -> bool:
        """Whether ``owner`` is ``super()`` (or ``super(SomeIE, cls)``) and the ``suitable``
        it leads to requires the pattern."""
        if not (isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name)
                and owner.func.id == "super" and not owner.keywords):
            return False
        if not owner.args:
            return requires_own_pattern(self.extractor, self.defined_in)
        if len(owner.args) != 2:
            return False
        first, second = owner.args
        if not (isinstance(first, ast.Name) and isinstance(second, ast.Name)
                and second.id == self.cls):
            return False
        named = [kind for kind in self.extractor.__mro__ if kind.__name__ == first.id]
        return len(named) == 1 and requires_own_pattern(self.extractor, named[0])


def requires_own_pattern(extractor: type, after: type | None = None) -> bool:
    """Whether ``extractor``'s ``suitable`` (or ``super()``'s, after its class ``after``)
    says yes only when the extractor's own pattern matches: read from its source, every value
    it returns is false or holds (through ``and``, ``x if c else y``, ``is not None``) a call
    of ``cls._match_valid_url(url)``, or of ``super().suitable(url)`` that does."""
    found = _suitable_of(extractor, after)
    if found is None:
        return False
    function, defined_in = found
    if function in _base_functions("suitable"):
        return True
    readable = _readable_definition(function)
    if readable is None:
        return False
    definition, cls, url = readable
    reading = _SuitableReading(extractor, defined_in, cls, url)
    try:
        return all(reading.requires(node.value) for node in ast.walk(definition)
                   if isinstance(node, ast.Return))
    except Exception:  # a suitable() this reading does not follow: asked for every URL,
        return False  # as yt-dlp does.


def _rows(extractor: Any, readings: _Readings
          ) -> list[tuple[str, str | None, Pattern | None, Any]]:
    """``extractor``'s rows of the table: (its key, a literal the URL must hold for the row
    to be tried, the pattern to try, or else the extractor to ask)."""
    kind = extractor if isinstance(extractor, type) else type(extractor)
    key = extractor.ie_key()
    patterns = _patterns(kind, readings)
    found = _suitable_of(kind)
    own_suitable = found is None or found[0] not in _base_functions("suitable")
    if patterns is not None and not own_suitable:
        return [(key, literal, pattern, None) for pattern in patterns
                for literal in pattern.literals or (None,)]
    if patterns and all(pattern.literals for pattern in patterns) \
            and readings.own_pattern(kind):
        # Asked where the URL names its site (asked again for another literal in it: the
        # same answer).
        return [(key, literal, None, extractor) for pattern in patterns
                for literal in pattern.literals]  # type: ignore[union-attr]
    return [(key, None, None, extractor)]


class _Readings:
    """What reading the patterns and the ``suitable``s found (``required_literals``,
    ``requires_own_pattern``), kept for a file (``remembered``): the same answers in any
    process of the same yt-dlp, Python and code of this module (``fingerprint``)."""

    def __init__(self) -> None:
        self.found: dict[str, dict[str, Any]] = {"literals": {}, "own": {}, "compiled": {}}
        self.added = False

    def literals(self, source: str) -> tuple[str, ...] | None:
        known = self.found["literals"]
        if source not in known:
            found = required_literals(source)
            known[source] = None if found is None else list(found)
            self.added = True
        found = known[source]
        return None if found is None else tuple(found)

    def own_pattern(self, extractor: type) -> bool:
        known, name = self.found["own"], f"{extractor.__module__}.{extractor.__qualname__}"
        if name not in known:
            known[name] = requires_own_pattern(extractor)
            self.added = True
        return known[name]

    def compiled(self, source: str) -> re.Pattern[str]:
        known = self.found["compiled"]
        pattern = regex_forms.built(source, known[source]) if source in known else None
        if pattern is None:
            pattern, form = regex_forms.compiled_form(source)
            if form is not None:
                known[source] = form
                self.added = True
        return pattern

    def recall(self, path: Path) -> None:
        """Take what ``path`` holds, if it was found by this yt-dlp, Python and code."""
        try:
            kept = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("URL patterns read again: %s is unreadable (%s)", path, exc)
            return
        if not (isinstance(kept, dict) and kept.get("fingerprint") == fingerprint()
                and _well_formed(kept.get("literals"), _literal_list)
                and _well_formed(kept.get("own"), lambda value: isinstance(value, bool))
                and _well_formed(kept.get("compiled"), lambda value: isinstance(value, list))):
            return  # another yt-dlp's (an update), or another code's: read again
        # A form that cannot be built is compiled again, and replaced (``compiled``).
        self.found = {key: kept[key] for key in ("literals", "own", "compiled")}

    def keep(self, path: Path) -> None:
        """Write what was found to ``path`` whole (another process may read it meanwhile);
        a folder that refuses costs only the reading again next time.

        Not ``atomic.write_atomic``: a cache that a power cut takes back costs a reading, so
        it is not flushed to the disk (two fsyncs on an SD card for a cache), and
        its folder is only used when it exists (``bytecode.cache_folder(make=False)``)."""
        if not self.added:
            return
        text = json.dumps({"fingerprint": fingerprint(), **self.found}).encode()
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with contextlib.ExitStack() as undo:
                undo.callback(_remove, temp)
                with os.fdopen(fd, "wb") as out:
                    out.write(text)
                os.replace(temp, path)
                undo.pop_all()
        except OSError as exc:
            log.warning("URL patterns not kept in %s (%s): read again at the next start",
                        path, exc)
            return
        self.added = False


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _literal_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and bool(value)
                             and all(isinstance(literal, str) and literal for literal in value))


def _well_formed(found: Any, valid: Any) -> bool:
    return isinstance(found, dict) and all(
        isinstance(key, str) and valid(value) for key, value in found.items())


@functools.cache
def fingerprint() -> str:
    """What the readings depend on: the patterns and sources (yt-dlp's), the regex parser
    (Python's) and the reading (this module's code)."""
    return hashlib.sha256(b"\0".join((
        YTDLP_VERSION.encode(), sys.version.encode(), Path(__file__).read_bytes(),
    ))).hexdigest()



def prepare(extractors: Iterable[Any], remembered: Path | None = None) -> None:
    """Take ``extractors`` (classes, or the instances a YoutubeDL holds), in yt-dlp's order;
    what was found reading them is kept in ``remembered``, and read from it at the next
    start. With ``remembered`` (a zygote's warm-up), the patterns every URL is tried against
    are compiled too, once for all the processes it forks."""
    readings = _Readings()
    if remembered is not None:
        readings.recall(remembered)
    _TABLE[:] = [row for extractor in extractors for row in _rows(extractor, readings)]
    if remembered is not None:
        _compile_every_urls_patterns(readings)
        readings.keep(remembered)
    # Reading the suitable()s loaded yt-dlp's 11,000 lines of lazy extractors into the line
    # cache (1.4 MB), for nothing else to read: only a traceback reads it, and it reloads.
    linecache.clearcache()


def _compile_every_urls_patterns(readings: _Readings) -> None:
    """Compile the patterns of the rows without a literal: those the table tries, and those
    of the extractors it asks, where yt-dlp's ``_match_valid_url`` looks for them first (the
    class's own ``_VALID_URL_RE``) and would compile the same."""
    for _, literal, pattern, ask in _TABLE:
        if literal is not None:
            continue
        if pattern is not None:
            pattern.compile_with(readings)
            continue
        kind = ask if isinstance(ask, type) else type(ask)
        patterns = _patterns(kind, readings)
        if patterns:
            compiled = tuple(readings.compiled(each.source) for each in patterns)
            if "_VALID_URL_RE" not in vars(kind):
                kind._VALID_URL_RE = compiled


def extractor_key(url: str) -> str | None:
    """The key of the extractor yt-dlp would use for ``url``; None when none would."""
    if not _TABLE:  # not warmed up: yt-dlp's own order
        prepare(gen_extractor_classes())
    for key, literal, pattern, ask in _TABLE:
        if literal is not None and literal not in url:
            continue
        if (pattern.match(url) if ask is None else ask.suitable(url)):
            return key
    return None
