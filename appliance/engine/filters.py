"""The condition filter language: yt-dlp's ``--match-filters`` syntax plus ``||`` and parentheses.

A condition is saved once and evaluated against every extracted item, so the source is parsed
once into a small tree (:func:`parse_filter`) and :meth:`Filter.matches` only walks it. Syntax
errors carry the 0-based offset of the problem so that the API can say where it is.

Grammar (``&`` binds tighter than ``||``; whitespace is allowed around tokens)::

    expr       := or
    or         := and ('||' and)*
    and        := unary ('&' unary)*
    unary      := '(' or ')' | comparison | ['!'] field
    comparison := field ['!'] op ['?'] value
    op         := '*=' | '^=' | '$=' | '~=' | '<=' | '<' | '>=' | '>' | '='
    field      := ['yt:'] name ('.' segment)*

A single comparison evaluates exactly as yt-dlp's ``match_str`` does (same number parsing, same
string/number rules, same handling of missing fields); the deliberate differences are listed in
the docstring of :class:`Filter`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..patterns import Budget, Pattern, PatternError, compile_pattern

# yt-dlp's own readers, so that "500k", "1.5G" or "10:00" mean exactly what they mean to yt-dlp
# (a copy: yt_dlp.utils would load all of yt-dlp into the worker).
from .ytdlp_numbers import parse_duration, parse_filesize

__all__ = ["MAX_LENGTH", "Filter", "FilterSyntaxError", "parse_filter"]

# Deep nesting is never useful and would otherwise end in a RecursionError, not a syntax error.
MAX_DEPTH = 64
# A filter is read a character at a time on a request's thread, holding the interpreter lock
# the API's other threads need: a body's 4 MiB of "a=1&a=1&..." took ~20 s. A condition a
# person writes is a few hundred characters; an OR of a hundred channel names fits.
MAX_LENGTH = 10_000

_STRING_OPS: dict[str, Callable[..., Any]] = {
    "*=": operator.contains,
    "^=": lambda actual, value: actual.startswith(value),
    "$=": lambda actual, value: actual.endswith(value),
    # The one operator that can take long: its searches share the evaluation's time budget.
    "~=": lambda actual, pattern, budget: pattern.search(actual, budget),
}
# Same order as yt-dlp's table: a two-character operator is tried before its one-character prefix.
_OPS: dict[str, Callable[..., Any]] = {
    **_STRING_OPS,
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "=": operator.eq,
}
# What a comparison on mismatched types raises in Python; such a comparison is "no match".
_COMPARE_ERRORS = (TypeError, ValueError, AttributeError, OverflowError)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*", re.ASCII)
_FIELD_PREFIX = "yt:"


class FilterSyntaxError(ValueError):
    """A filter that cannot be parsed; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


# --- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Presence:
    """``field`` / ``!field``: yt-dlp's unary operators (a bool must be True, else not None)."""

    path: tuple[str, ...]
    negated: bool

    def evaluate(self, info: Any, budget: Budget) -> bool:
        value = _lookup(info, self.path)
        present = value is True if isinstance(value, bool) else value is not None
        return present != self.negated


@dataclass(frozen=True)
class _Comparison:
    path: tuple[str, ...]
    op: str
    negated: bool
    none_inclusive: bool
    operand: Any  # the string, or the Pattern for '~='
    number: int | float | None  # the value read as a number, as yt-dlp reads it

    def evaluate(self, info: Any, budget: Budget) -> bool:
        actual = _lookup(info, self.path)
        operand = self.operand
        # As in yt-dlp: a number field is compared with the value read as a number; a string
        # field always with the text, so that "id = 0123" keeps its leading zero.
        if isinstance(actual, int | float) and self.number is not None:
            if self.op in _STRING_OPS:
                return False  # yt-dlp raises "only supports string values"; no match here
            operand = self.number
        if actual is None:
            return self.none_inclusive
        try:
            args = (actual, operand, budget) if self.op == "~=" else (actual, operand)
            result = bool(_OPS[self.op](*args))  # PatternTimeout goes up
        except _COMPARE_ERRORS:
            return False  # yt-dlp raises (e.g. 600 > 'abc'); a condition just doesn't match
        return result != self.negated


@dataclass(frozen=True)
class _All:
    items: tuple[_Node, ...]

    def evaluate(self, info: Any, budget: Budget) -> bool:
        return all(item.evaluate(info, budget) for item in self.items)


@dataclass(frozen=True)
class _Any:
    items: tuple[_Node, ...]

    def evaluate(self, info: Any, budget: Budget) -> bool:
        return any(item.evaluate(info, budget) for item in self.items)


_Node = _Presence | _Comparison | _All | _Any


def _lookup(info: Any, path: tuple[str, ...]) -> Any:
    """Follow a dotted path through dicts (and list indexes); anything unreachable is None."""
    value = info
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list | tuple) and key.isdecimal():
            try:
                value = value[int(key)]
            except (IndexError, ValueError):
                return None
        else:
            return None
    return value


def _as_number(text: str) -> int | float | None:
    """The comparison value as yt-dlp's ``_match_one`` reads it for a numeric field."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = parse_filesize(text)
        if number is None:
            number = parse_filesize(f"{text}B")  # "500k" means 500 KiB to yt-dlp
    except OverflowError:
        return None  # an absurdly long number: yt-dlp would crash, we read it as text
    return parse_duration(text) if number is None else number


def _fields(node: _Node) -> set[str]:
    if isinstance(node, _All | _Any):
        return set().union(*(_fields(item) for item in node.items))
    return {".".join(node.path)}


# --- the parser -----------------------------------------------------------------------------


class _Parser:
    """A scannerless recursive-descent parser: an unquoted value's extent depends on context."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.depth = 0

    def error(self, message: str, position: int | None = None) -> FilterSyntaxError:
        position = self.pos if position is None else position
        return FilterSyntaxError(f"{message} at position {position}", position)

    def skip_ws(self) -> None:
        while self.pos < len(self.src) and self.src[self.pos].isspace():
            self.pos += 1

    def peek(self, text: str) -> bool:
        return self.src.startswith(text, self.pos)

    def take(self, text: str) -> bool:
        if self.peek(text):
            self.pos += len(text)
            return True
        return False

    def at_end(self) -> bool:
        return self.pos >= len(self.src)

    def describe_here(self) -> str:
        return "the end" if self.at_end() else repr(self.src[self.pos])

    # expr := or, and nothing after it

    def parse(self) -> _Node:
        self.skip_ws()
        if self.at_end():
            raise self.error("empty expression")
        node = self.parse_or()
        self.skip_ws()
        if self.peek(")"):
            raise self.error("unbalanced ')'")
        if not self.at_end():
            raise self.error(f"unexpected {self.describe_here()}; expected '&', '||' or the end")
        return node

    def parse_or(self, after: str | None = None) -> _Node:
        items = [self.parse_and(after)]
        while True:
            self.skip_ws()
            if self.take("||"):
                items.append(self.parse_and(after="'||'"))
            elif self.peek("|"):
                raise self.error("single '|' (use '||' for OR, or quote a value containing '|')")
            else:
                return items[0] if len(items) == 1 else _Any(tuple(items))

    def parse_and(self, after: str | None = None) -> _Node:
        items = [self.parse_unary(after)]
        while True:
            self.skip_ws()
            if self.peek("&&"):
                raise self.error("'&&' is not an operator (use '&' for AND)")
            if not self.take("&"):
                return items[0] if len(items) == 1 else _All(tuple(items))
            items.append(self.parse_unary(after="'&'"))

    def parse_unary(self, after: str | None) -> _Node:
        self.skip_ws()
        if self.at_end() or self.src[self.pos] in "&|)":
            where = f" after {after}" if after else ""
            raise self.error(f"expected a condition{where}, found {self.describe_here()}")
        if self.peek("("):
            return self.parse_group()
        if self.take("!"):
            return self.parse_negated_field()
        path = self.parse_field()
        return self.parse_comparison(path)

    def parse_group(self) -> _Node:
        start = self.pos
        if self.depth >= MAX_DEPTH:
            raise self.error(f"parentheses nested deeper than {MAX_DEPTH}")
        self.pos += 1
        self.depth += 1
        node = self.parse_or(after="'('")
        self.depth -= 1
        self.skip_ws()
        if self.take(")"):
            return node
        if self.at_end():
            raise self.error("unbalanced '(' (missing ')')", start)
        raise self.error(f"unexpected {self.describe_here()}; expected '&', '||' or ')'")

    def parse_negated_field(self) -> _Node:
        path = self.parse_field()
        self.skip_ws()
        op_start = self.pos
        if self.parse_operator() is not None:
            name = ".".join(path)
            raise self.error(f"'!' only negates a bare field (write '{name} !=' and so on)",
                             op_start)
        return _Presence(path, negated=True)

    def parse_field(self) -> tuple[str, ...]:
        self.skip_ws()
        prefixed = self.take(_FIELD_PREFIX)
        match = _NAME.match(self.src, self.pos)
        if not match:
            after = f" after '{_FIELD_PREFIX}'" if prefixed else ""
            raise self.error(f"expected a field name{after}, found {self.describe_here()}")
        self.pos = match.end()
        return tuple(match.group().split("."))

    def parse_operator(self) -> tuple[str, bool] | None:
        """``['!'] op`` at the current position, as (op, negated); None if there is none."""
        start = self.pos
        negated = self.take("!")
        if negated:
            self.skip_ws()  # yt-dlp allows "title ! = x"
        for op in _OPS:
            if self.take(op):
                return op, negated
        if negated:
            raise self.error("expected an operator after '!'")
        self.pos = start
        return None

    def parse_comparison(self, path: tuple[str, ...]) -> _Node:
        self.skip_ws()
        op_start = self.pos
        parsed = self.parse_operator()
        if parsed is None:
            return _Presence(path, negated=False)
        op, negated = parsed
        # yt-dlp would read "duration == 5" as "equals '= 5'": a silent never-match. Refuse it.
        if self.src[self.pos:self.pos + 1] in ("=", "<", ">"):
            bad = self.src[op_start:self.pos + 1]
            raise self.error(f"'{bad}' is not an operator", op_start)
        self.skip_ws()
        none_inclusive = self.take("?")
        self.skip_ws()
        value_start = self.pos
        text = self.parse_value(op)
        operand: Any = text
        if op == "~=":
            operand = self.compile_regex(text, value_start)
        return _Comparison(path, op, negated, none_inclusive, operand, _as_number(text))

    def compile_regex(self, text: str, position: int) -> Pattern:
        try:
            return compile_pattern(text)
        except PatternError as exc:
            raise self.error(exc.message, position) from None

    def parse_value(self, op: str) -> str:
        if self.at_end() or self.src[self.pos] in "&)" or self.peek("||"):
            raise self.error(f"expected a value after '{op}'")
        if self.src[self.pos] in "'\"":
            return self.parse_quoted()
        return self.parse_unquoted(op)

    def parse_quoted(self) -> str:
        """A quoted value; ``\\<quote>`` and ``\\&`` are escapes, other backslashes stay."""
        start = self.pos
        quote = self.src[start]
        self.pos += 1
        chars: list[str] = []
        while not self.at_end():
            char = self.src[self.pos]
            if char == quote:
                self.pos += 1
                self.check_after_quoted()
                return "".join(chars)
            if char == "\\":
                chars.append(self.read_escape(quote))
            else:
                chars.append(char)
                self.pos += 1
        raise self.error("unterminated quote", start)

    def check_after_quoted(self) -> None:
        self.skip_ws()
        if not self.at_end() and self.src[self.pos] not in "&|)":
            raise self.error(f"unexpected {self.describe_here()} after a quoted value")

    def read_escape(self, quote: str) -> str:
        """Read a backslash escape, mirroring yt-dlp's ``replace(r'\\&', '&')`` and
        ``replace('\\' + quote, quote)``: a backslash before anything else is kept, and a
        backslash before a backslash is consumed alone so ``\\\\&`` reads as ``\\&``."""
        following = self.src[self.pos + 1:self.pos + 2]
        if following and following in ("&", quote):
            self.pos += 2
            return following
        if following in ("", "\\"):
            self.pos += 1
            return "\\"
        self.pos += 2
        return "\\" + following

    def parse_unquoted(self, op: str) -> str:
        """The rest of the term, as yt-dlp reads it, up to '&', '||' or an unmatched ')'.

        Spaces inside are kept (``uploader = Some Channel``); parentheses opened inside the
        value are part of it (``title ~= (?i)live``). A single '|' is only taken for '~='
        (regex alternation): elsewhere it is far more likely a mistyped '||'.
        """
        chars: list[str] = []
        parens = 0
        while not self.at_end():
            char = self.src[self.pos]
            if char == "&" or self.peek("||") or (char == ")" and parens == 0):
                break
            if char == "|" and op != "~=":
                raise self.error("single '|' (use '||' for OR, or quote a value containing '|')")
            if char == "\\":
                chars.append(self.read_escape(quote=""))
                continue
            parens += {"(": 1, ")": -1}.get(char, 0)
            chars.append(char)
            self.pos += 1
        return "".join(chars).rstrip()


# --- the public API -------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A parsed condition. ``Filter(source)`` parses (and may raise FilterSyntaxError).

    Differences from yt-dlp's ``match_str`` (all on inputs where yt-dlp crashes, or silently
    reads a typo as something else):

    - a comparison yt-dlp cannot make (``duration > abc``, ``view_count *= 5``, a regex on a
      list) raises in yt-dlp; here it does not match (even when negated with ``!``);
    - ``''`` is the empty string (yt-dlp compares with the two quote characters);
    - ``==``, ``=>``, ``=<``, ``&&``, a single ``|`` outside a ``~=`` value, an unmatched
      ``)`` and text after a closing quote are syntax errors, not parts of a value;
    - ``&`` inside quotes needs no backslash (yt-dlp splits on it);
    - field names may have capitals, digits, dotted paths (``a.b.0``) and a ``yt:`` prefix.
    """

    source: str
    _root: _Node = field(init=False, repr=False, compare=False)
    _fields: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.source, str):
            raise FilterSyntaxError("the filter must be a string at position 0", 0)
        if len(self.source) > MAX_LENGTH:
            raise FilterSyntaxError(f"the filter is longer than {MAX_LENGTH:,} characters at "
                                    f"position {MAX_LENGTH}", MAX_LENGTH)
        root = _Parser(self.source).parse()
        # Frozen, but the tree is derived from source alone: set once, here.
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_fields", frozenset(_fields(root)))

    def matches(self, info: dict[str, Any], budget: Budget | None = None) -> bool:
        """Whether a yt-dlp info dict passes the filter. Its regular expressions share one
        time budget: raises PatternTimeout when they run out of it."""
        return self._root.evaluate(info, budget or Budget())

    def fields(self) -> set[str]:
        """The field names (dotted paths, without ``yt:``) the filter reads."""
        return set(self._fields)


def parse_filter(source: str) -> Filter:
    """Parse a filter once (on save); raises FilterSyntaxError naming the position."""
    return Filter(source)
