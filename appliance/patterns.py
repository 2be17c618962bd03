"""Regular expressions that a person supplies (conditions; later task definitions, searches),
compiled and run with bounds, so that one expression cannot stall the service.

Python's ``re`` runs a match to the end holding the GIL: ``^(a|a)+$`` against forty ``a`` and
a ``!`` takes minutes and freezes every thread. So matching runs on the ``regex`` package,
which releases the GIL while it matches a ``str`` and stops with ``TimeoutError`` once its
``timeout`` has passed. What is accepted is Python's ``re`` syntax (what yt-dlp's
``--match-filters`` use): the expression is parsed by the standard library first, which also
gives its shape without building it. ``regex`` builds each counted repeat out in memory
(``(?:a{1000}){1000}`` is ~300 MB and a second of CPU before anything is matched), so an
expression whose repeats multiply past :data:`MAX_WEIGHT` is refused at compile time -- as
each parser reads it: they disagree on a few texts. In verbose mode ``a{ 1000 }`` is text to
the standard library and 1,000 ``a`` to ``regex`` (``(?x)(?:(?:a{ 1000 }){ 1000 }){ 3 }``, 40
characters the first count found light, took a GB and two seconds to build); ``{e<=1}`` is
text to the first and fuzzy matching to ``regex``, which is refused: it is not ``re`` syntax.

The time bound is a :class:`Budget` shared by every search of one evaluation (one condition on
one item): a filter made of many slow expressions gets the same bound as one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

# The standard library's parser: it reads the expression into a tree without compiling it. It
# is private, but it is what re.compile itself runs, and its shape has not changed in years.
from re import _constants as _sre  # type: ignore[attr-defined]
from re import _parser as _sre_parse  # type: ignore[attr-defined]
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

__all__ = ["MATCH_TIMEOUT", "Budget", "Pattern", "PatternError", "PatternTimeout",
           "compile_pattern"]

# Longer than any useful filter on a title or description; keeps parsing trivially cheap.
MAX_LENGTH = 1000
# Elements of the expression once counted repeats are multiplied out (``a{100}`` is 100).
# ``regex`` needs a few hundred bytes for each: 20,000 is a few MB.
MAX_WEIGHT = 20_000
# Seconds one evaluation may spend in regular expressions. A sensible expression on a title or
# a description needs microseconds, even on a Raspberry Pi.
MATCH_TIMEOUT = 0.5

_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", None)} - {None}


class PatternError(ValueError):
    """An expression that is not accepted; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PatternTimeout(Exception):
    """A search that ran out of its time budget."""

    def __init__(self, pattern: str, seconds: float) -> None:
        super().__init__(
            f"the regular expression {pattern[:100]!r} took longer than {seconds:g} s "
            "(it backtracks too much; simplify it, e.g. avoid nested or overlapping repeats "
            "such as (a|a)+ or (a+)+)"
        )
        self.pattern = pattern
        self.seconds = seconds


class Budget:
    """The time the searches of one evaluation may spend together. Only their own time
    counts: a task definition's page is parsed (and its parser imported) between its
    searches, which on a busy box took the whole budget and failed sensible expressions."""

    def __init__(self, seconds: float = MATCH_TIMEOUT) -> None:
        self.seconds = seconds
        self.spent = 0.0


@dataclass(frozen=True, eq=False)
class Pattern:
    """A compiled expression; ``search`` is bounded by a :class:`Budget`."""

    source: str
    _compiled: regex.Pattern[str]

    def _match(self, subject: str, budget: Budget | None) -> regex.Match[str] | None:
        budget = budget or Budget()
        if not isinstance(subject, str):
            raise TypeError("only strings are searched")
        left = budget.seconds - budget.spent
        if left <= 0:
            raise PatternTimeout(self.source, budget.seconds)
        started = time.monotonic()
        try:
            return self._compiled.search(subject, timeout=left)
        except TimeoutError:
            raise PatternTimeout(self.source, budget.seconds) from None
        finally:
            budget.spent += time.monotonic() - started

    def search(self, subject: str, budget: Budget | None = None) -> bool:
        """Whether the expression matches somewhere in ``subject``. Raises PatternTimeout
        when the budget runs out, TypeError when ``subject`` is not a string."""
        return self._match(subject, budget) is not None

    def extract(self, subject: str, budget: Budget | None = None) -> str | None:
        """The first group of the first match (the whole match when the expression has no
        group); None when nothing matches. Bounded like ``search``."""
        found = self._match(subject, budget)
        if found is None:
            return None
        return found.group(1) if self._compiled.groups else found.group(0)


def _weight(node: object) -> int:
    """Elements of a parsed expression with counted repeats multiplied out."""
    if isinstance(node, _sre_parse.SubPattern):
        node = node.data
    if isinstance(node, tuple) and len(node) == 2 and isinstance(node[0], type(_sre.LITERAL)):
        op, argument = node
        if op in _REPEATS:
            low, high, body = argument
            count = low if high == _sre.MAXREPEAT else high
            return 1 + max(count, 1) * _weight(body)
        return 1 + _weight(argument)
    if isinstance(node, list | tuple):
        return sum(_weight(item) for item in node)
    return 0


def _regex_tree(source: str) -> object:
    """``source`` as ``regex`` parses it before it builds it: its own first steps
    (``regex._main._compile``) for VERSION0, whose blanks are ASCII ones. A global flag past
    the start, after which regex would parse again with it, the standard library refuses."""
    from regex import _regex_core as core

    text = core.Source(source)
    text.use_unicode_space(False)
    return core._parse_pattern(text, core.Info(core.VERSION0, text.char_type, {}))


def _built(node: object) -> int:
    """Elements of ``regex``'s parse with counted repeats multiplied out (its nodes hold
    their parts in their attributes)."""
    from regex import _regex_core as core

    if isinstance(node, list | tuple):
        return sum(_built(item) for item in node)
    if not isinstance(node, core.RegexBase):
        return 0
    if isinstance(node, core.Fuzzy):
        raise PatternError("fuzzy matching ({e<=1} and the like) is not Python's re syntax, "
                           "where it is text: write \\{ to mean a brace")
    inner = sum(_built(value) for value in vars(node).values())
    if isinstance(node, core.Sequence):  # a list of elements, as in the standard library's
        return inner
    if isinstance(node, core.GreedyRepeat):  # lazy and possessive ones too
        count = node.min_count if node.max_count is None else node.max_count
        return 1 + max(count, 1) * inner
    return 1 + inner


def compile_pattern(source: str) -> Pattern:
    """Compile a user's expression; raises PatternError naming what is wrong."""
    if not isinstance(source, str):
        raise PatternError("a regular expression must be a string")
    if len(source) > MAX_LENGTH:
        raise PatternError(f"the regular expression is longer than {MAX_LENGTH} characters")
    try:
        parsed = _sre_parse.parse(source)
        weight = _weight(parsed)
    except re.error as exc:
        raise PatternError(f"invalid regular expression ({exc.msg})") from None
    except RecursionError:
        raise PatternError("the regular expression is nested too deeply") from None
    except (OverflowError, ValueError) as exc:
        raise PatternError(f"invalid regular expression ({exc})") from None
    import regex  # with the first expression, not with the service (~2 MB it may never use)

    try:
        if max(weight, _built(_regex_tree(source))) > MAX_WEIGHT:
            raise PatternError(
                f"the regular expression repeats too much (counted repeats such as a{{1000}} "
                f"multiply to more than {MAX_WEIGHT:,} elements)")
        compiled = regex.compile(source, regex.VERSION0)
    except PatternError:
        raise
    except (regex.error, OverflowError, RecursionError, ValueError) as exc:
        raise PatternError(f"invalid regular expression ({exc})") from None
    return Pattern(source, compiled)
