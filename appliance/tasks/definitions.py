"""Task definitions: how to list the entries of a site no other handler knows, as data.

A definition matches URLs (``match_url``: globs, or ``regex:`` expressions), says how to
fetch a page (``request``: method, url, headers, params, body; the ``http`` engine only) and
how to read items from it (``response.type`` html or json; ``parse.items``: a container
selector and a rule per field: url, title, thumbnail, description, published). Rules are
css or xpath (parsel), jsonpath (python-jsonpath, RFC 9535) or regex (bounded,
``appliance.patterns``); a rule's ``post_filter`` keeps the first group of its match, and an
item whose url has no match is dropped, and so is one whose url is not an http(s) address
once joined to the page's (the listing keeps the others).

Regular expressions run only where they are bounded: a ``regex`` rule or a ``post_filter``.
XPath's EXSLT ``re:`` functions and JSONPath's ``match()``/``search()``/``=~`` run Python's
``re`` with no time bound (one backtracking expression held a download process at 100% CPU
until it was killed, naming nothing), so they are not available, and refused on save.

Checked on save against a JSON Schema (400 names the path of the first error), then each
expression is compiled, so a broken selector is refused at once rather than at 3 a.m.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..errors import invalid
from ..http_headers import header_problem
from ..patterns import Budget, PatternError, PatternTimeout, compile_pattern
from .feeds import sent_instead
from .handlers import (
    FETCH_TIMEOUT,
    Entry,
    Handler,
    HandlerError,
    Listing,
    fetch_request,
)

if TYPE_CHECKING:
    import jsonpath
    import jsonschema
    import parsel

log = logging.getLogger(__name__)

# jsonschema, parsel (cssselect) and python-jsonpath are imported when a definition is first
# checked or read, not with the service: ~25 MB of resident memory a box without definitions
# never pays.

ENGINES = ("http",)
FIELDS = ("url", "title", "thumbnail", "description", "published")
MAX_ITEMS = 1000
NO_REGEX = ("regular expressions are not available in {kind} expressions (they would run "
            "without a time bound): use a rule of type regex, or a post_filter, which are "
            "bounded")
# JSONPath's filter functions that run Python's re.
_JSONPATH_REGEX = ("match", "search")
# On save an xpath (a css selector, as the xpath it becomes) is compiled, never evaluated:
# nested predicates cost the nodes' count to the power of their depth, even on a page of two
# nodes, and one such expression of 150 characters held a request thread at 100 % CPU for
# hours. libxml2 resolves prefixes, variables and functions only as it evaluates them, so
# the expression is read for them: its string literals, then its names. (A page is read in a
# download process, killed at its time limit.)
_XPATH_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_XPATH_QNAME = re.compile(r"(?<![\w.$-])([A-Za-z_][\w.-]*):([A-Za-z_*][\w.-]*)")
_XPATH_VARIABLE = re.compile(r"\$[A-Za-z_]")
_XPATH_PREFIXES = frozenset({"set", "xml"})  # bound by parsel, and by XML itself
_XPATH_SET_FUNCTIONS = frozenset({"difference", "intersection", "distinct", "has-same-node",
                                  "leading", "trailing"})  # EXSLT's sets, as libxslt has them
# XPath 1.0's functions and node tests by the count of arguments each takes (libxml2 checks
# it only as it runs one, so a mistake would be found at the task's first run).
_XPATH_ARITY = {
    "last": (0, 0), "position": (0, 0), "count": (1, 1), "id": (1, 1), "local-name": (0, 1),
    "namespace-uri": (0, 1), "name": (0, 1), "string": (0, 1), "concat": (2, None),
    "starts-with": (2, 2), "contains": (2, 2), "substring-before": (2, 2),
    "substring-after": (2, 2), "substring": (2, 3), "string-length": (0, 1),
    "normalize-space": (0, 1), "translate": (3, 3), "boolean": (1, 1), "not": (1, 1),
    "true": (0, 0), "false": (0, 0), "lang": (1, 1), "number": (0, 1), "sum": (1, 1),
    "floor": (1, 1), "ceiling": (1, 1), "round": (1, 1),
    "node": (0, 0), "text": (0, 0), "comment": (0, 0), "processing-instruction": (0, 1),
    "set:difference": (2, 2), "set:intersection": (2, 2), "set:distinct": (1, 1),
    "set:has-same-node": (2, 2), "set:leading": (2, 2), "set:trailing": (2, 2)}
_XPATH_FUNCTIONS = frozenset(name for name in _XPATH_ARITY if ":" not in name) | {
    "and", "or", "div", "mod"}  # operators before a parenthesis
# Those whose arguments are node-sets: a string or a number there fails as it runs.
_XPATH_NODE_SETS = frozenset({"count", "sum", "local-name", "namespace-uri", "name"} | {
    name for name in _XPATH_ARITY if name.startswith("set:")})
_XPATH_CALL = re.compile(r"(?<![\w.:@$-])((?:set:)?[A-Za-z_][\w.-]*)\s*\(")
_XPATH_SCALAR = re.compile(r"\s*(?:''|-?(?:\d+(?:\.\d*)?|\.\d+))\s*")
# What a page's parser may raise on hostile input (a deep JSON page, an xpath that fails as
# it runs): its definition's error, named, not a traceback.
_READ_ERRORS = (RecursionError, ValueError, UnicodeError, TypeError)
_text = {"type": "string", "maxLength": 2000}
_rule = {
    "type": "object",
    "required": ["type", "expression"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": ["css", "xpath", "regex", "jsonpath"]},
        "expression": {**_text, "minLength": 1},
        "post_filter": _text,
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["match_url", "parse"],
    "additionalProperties": False,
    "properties": {
        "match_url": {"type": "array", "minItems": 1, "maxItems": 50, "items": {
            **_text, "minLength": 1}},
        "engine": {"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string"}, "options": {"type": "object"}}},
        "request": {"type": "object", "additionalProperties": False, "properties": {
            "method": {"enum": ["GET", "POST"]},
            "url": _text,
            "headers": {"type": "object", "additionalProperties": _text},
            "params": {"type": "object", "additionalProperties": _text},
            "body": {"type": ["string", "object"]},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60}}},
        "response": {"type": "object", "additionalProperties": False, "properties": {
            "type": {"enum": ["html", "json"]}}},
        "parse": {"type": "object", "required": ["items"], "additionalProperties": False,
                  "properties": {"items": {
                      "type": "object", "required": ["type", "expression", "fields"],
                      "additionalProperties": False,
                      "properties": {
                          "type": {"enum": ["css", "xpath", "jsonpath"]},
                          "expression": {**_text, "minLength": 1},
                          "fields": {"type": "object", "required": ["url"],
                                     "additionalProperties": False,
                                     "properties": dict.fromkeys(FIELDS, _rule)}}}}},
    },
}


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(SCHEMA)


def _path(error: jsonschema.ValidationError) -> str:
    return "definition" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                                  for p in error.absolute_path)


@functools.cache
def _selector() -> type[parsel.Selector]:
    """parsel's Selector without the ``re:`` prefix (EXSLT regular expressions)."""
    import parsel

    class Selector(parsel.Selector):
        _default_namespaces = {prefix: uri for prefix, uri
                               in parsel.Selector._default_namespaces.items() if prefix != "re"}

    return Selector


@functools.cache
def _jsonpath() -> jsonpath.JSONPathEnvironment:
    """python-jsonpath without its regular expressions: no match()/search() functions and no
    ``=~ /pattern/`` (a syntax error naming why), the same on save and when a page is read."""
    import jsonpath
    from jsonpath.parse import Parser

    class NoRegexParser(Parser):
        def parse_regex(self, stream: Any) -> Any:
            raise jsonpath.JSONPathSyntaxError(NO_REGEX.format(kind="jsonpath"),
                                               token=stream.current())

    class Environment(jsonpath.JSONPathEnvironment):
        parser_class = NoRegexParser

        def setup_function_extensions(self) -> None:
            super().setup_function_extensions()
            for name in _JSONPATH_REGEX:
                self.function_extensions.pop(name, None)

    return Environment()


def _reason(kind: str, expression: str, exc: BaseException) -> str:
    """What is wrong with an expression that failed, in one line."""
    import jsonpath

    if isinstance(exc, jsonpath.JSONPathNameError) and getattr(
            getattr(exc, "token", None), "value", None) in _JSONPATH_REGEX:
        return NO_REGEX.format(kind=kind)
    if kind == "xpath" and (problem := _xpath_problem(expression)) is not None:
        return problem  # said plainly, where lxml says "Undefined namespace prefix"
    if isinstance(exc, RecursionError):
        return "the data nests too deeply to read"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _xpath_problem(expression: str) -> str | None:
    """What an xpath uses that is not defined here (found only as it runs), or None."""
    code = _XPATH_LITERAL.sub("''", expression).replace("::", " / ")
    for prefix, name in _XPATH_QNAME.findall(code):
        if prefix == "re":
            return NO_REGEX.format(kind="xpath")
        if prefix not in _XPATH_PREFIXES:
            return f"the namespace prefix '{prefix}:' is not defined (only set: is)"
        if prefix == "set" and name not in _XPATH_SET_FUNCTIONS:
            return (f"the function set:{name}() is not defined (EXSLT's sets: "
                    f"{', '.join(sorted(_XPATH_SET_FUNCTIONS))})")
    if _XPATH_VARIABLE.search(code):
        return "variables ($name) are not defined"
    unknown = sorted({name for name in _XPATH_CALL.findall(code) if ":" not in name}
                     - _XPATH_FUNCTIONS)
    if unknown:
        return f"the function {unknown[0]}() is not defined (XPath 1.0 functions only)"
    return _arguments_problem(code)


def _arguments_problem(code: str) -> str | None:
    """A call given too few or too many arguments, or a string or number for a node-set."""
    for call in _XPATH_CALL.finditer(code):
        name = call.group(1)
        if name not in _XPATH_ARITY or (given := _arguments(code, call.end())) is None:
            continue
        low, high = _XPATH_ARITY[name]
        if len(given) < low or (high is not None and len(given) > high):
            takes = (f"{low}" if low == high else f"at least {low}" if high is None
                     else f"{low} to {high}")
            return f"{name}() takes {takes} argument(s), not {len(given)}"
        if name in _XPATH_NODE_SETS and any(_XPATH_SCALAR.fullmatch(a) for a in given):
            return f"{name}() takes node-sets, not a string or a number"
    return None


def _arguments(code: str, start: int) -> list[str] | None:
    """The arguments of the call whose parenthesis opens before ``start`` (its literals
    already blanked), or None when it does not close."""
    depth, parts, begun = 0, [], start
    for at in range(start, len(code)):
        char = code[at]
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        elif char == ")":
            parts.append(code[begun:at])
            return [] if len(parts) == 1 and not parts[0].strip() else parts
        elif char == "," and not depth:
            parts.append(code[begun:at])
            begun = at + 1
    return None


@functools.cache
def _css_translator() -> Any:
    from parsel.csstranslator import HTMLTranslator

    return HTMLTranslator()  # what an html Selector's css() translates with


def _compile_xpath(query: str) -> None:
    """``query`` compiled as a Selector would, without running it; ValueError as parsel's."""
    from lxml import etree

    try:
        etree.XPath(query, namespaces=dict(_selector()._default_namespaces))
    except etree.XPathError as exc:
        raise ValueError(f"XPath error: {exc} in {query}") from None


def _compile(kind: str, expression: str, where: str) -> None:
    import jsonpath
    from cssselect import SelectorError

    try:
        if kind == "css":
            _compile_xpath(_css_translator().css_to_xpath(expression))
        elif kind == "xpath":
            _compile_xpath(expression)
            if (problem := _xpath_problem(expression)) is not None:
                raise ValueError(problem)
        elif kind == "jsonpath":
            _jsonpath().compile(expression)
        else:
            compile_pattern(expression)
    except PatternError as exc:
        raise invalid(f"{where}: {exc.message}") from None
    except (SelectorError, jsonpath.JSONPathError, ValueError) as exc:
        reason = _reason(kind, expression, exc)
        said = "is refused" if reason == NO_REGEX.format(kind=kind) else "does not compile"
        raise invalid(f"{where}: the {kind} expression {expression[:200]!r} {said}: "
                      f"{reason}") from None


def _check_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if (problem := header_problem(name, value.strip(" \t"))) is not None:
            raise invalid(f"definition.request.headers.{name[:100] or '(empty)'}: the "
                          f"{problem[0]} {problem[1]}.")


def check_definition(definition: Any) -> dict[str, Any]:
    """The definition as saved, or a 400 naming the path of the first problem."""
    errors = sorted(_validator().iter_errors(definition),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise invalid(f"{_path(errors[0])}: {errors[0].message}")
    engine = (definition.get("engine") or {}).get("type", "http")
    if engine not in ENGINES:
        raise invalid(f"definition.engine.type: the '{engine}' engine is not available "
                      f"here (only {', '.join(ENGINES)}); a remote browser is not supported.")
    _check_headers((definition.get("request") or {}).get("headers") or {})
    items = definition["parse"]["items"]
    kind = (definition.get("response") or {}).get("type", "html")
    if (items["type"] == "jsonpath") != (kind == "json"):
        raise invalid("definition.parse.items.type: jsonpath reads json responses; css and "
                      "xpath read html.")
    _compile(items["type"], items["expression"], "definition.parse.items.expression")
    for name, rule in items["fields"].items():
        where = f"definition.parse.items.fields.{name}"
        if rule["type"] != "regex" and (rule["type"] == "jsonpath") != (kind == "json"):
            raise invalid(f"{where}.type: {rule['type']} does not read {kind} responses.")
        _compile(rule["type"], rule["expression"], f"{where}.expression")
        if rule.get("post_filter"):
            _compile("regex", rule["post_filter"], f"{where}.post_filter")
    for index, pattern in enumerate(definition["match_url"]):
        if pattern.startswith("regex:"):
            _compile("regex", pattern.removeprefix("regex:"), f"definition.match_url[{index}]")
    return definition


def matches(definition: dict[str, Any], url: str, budget: Budget | None = None) -> bool:
    """Whether a ``match_url`` pattern takes ``url``; PatternTimeout once ``budget`` is out."""
    for pattern in definition["match_url"]:
        if pattern.startswith("regex:"):
            if compile_pattern(pattern.removeprefix("regex:")).search(url, budget):
                return True
        elif fnmatch.fnmatchcase(url, pattern):
            return True
    return False


def _published(text: str) -> float | None:
    text = text.strip()
    for parse in (datetime.fromisoformat, parsedate_to_datetime):
        try:
            moment = parse(text)
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
        except (ValueError, TypeError, OverflowError):  # year 99999999999999: not a date
            continue
    return None


def _http_url(base: str, found: str) -> str | None:
    """``found`` joined to the page's address if that is an http(s) URL with a host."""
    try:
        url = urljoin(base, found)
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:  # "http://[::1": not an address
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


class _Reader:
    """Applies one definition's rules to one page, in one time budget for its regexes."""

    def __init__(self, definition: dict[str, Any], page: str) -> None:
        self.items = definition["parse"]["items"]
        self.page = page
        self.budget = Budget()
        self.skipped = 0  # entries whose url is not an http(s) address

    def _failed(self, where: str, rule: dict[str, Any], exc: BaseException) -> HandlerError:
        kind, expression = rule["type"], rule["expression"]
        return HandlerError(f"parse.items.{where}: the {kind} expression "
                            f"{expression[:200]!r} failed on {self.page[:200]}: "
                            f"{_reason(kind, expression, exc)}")

    def _rule(self, rule: dict[str, Any], node: Any) -> str:
        import parsel

        kind, expression = rule["type"], rule["expression"]
        if kind == "jsonpath":
            found = _jsonpath().findall(expression, node)
            value = found[0] if found else ""
            text = value if isinstance(value, str) else json.dumps(value) if value else ""
        elif kind == "regex":
            subject = node.get() if isinstance(node, parsel.Selector) else json.dumps(node)
            text = compile_pattern(expression).extract(subject, self.budget) or ""
        elif kind == "css":
            text = node.css(expression).get() or ""
        else:
            text = node.xpath(expression).get() or ""
        text = " ".join(str(text).split()) if kind != "regex" else str(text).strip()
        if text and rule.get("post_filter"):
            text = compile_pattern(rule["post_filter"]).extract(text, self.budget) or ""
        return text

    def containers(self, body: bytes, kind: str) -> list[Any]:
        import jsonpath

        if kind == "json":
            try:
                data = json.loads(body)
            except RecursionError:
                raise HandlerError(f"{self.page[:200]} nests its JSON too deeply to read."
                                   ) from None
            except ValueError as exc:
                said = sent_instead(body, "JSON", "Check that the definition's url is the "
                                    "address of the site's JSON, not of its page")
                raise HandlerError(f"{said}." if said else f"the page is not JSON: {exc}"
                                   ) from None
        try:
            if kind == "json":
                found = _jsonpath().findall(self.items["expression"], data)
                return [x for x in found if isinstance(x, dict | list)][:MAX_ITEMS]
            page = _selector()(text=body.decode("utf-8", "replace"))
            select = page.css if self.items["type"] == "css" else page.xpath
            return list(select(self.items["expression"]))[:MAX_ITEMS]
        except (*_READ_ERRORS, jsonpath.JSONPathError) as exc:
            raise self._failed("expression", self.items, exc) from None

    def nothing_found(self, nodes: list[Any], kind: str) -> None:
        """HandlerError when a page gave no entry because the definition no longer fits it:
        the run succeeded with none, and the task looked well while it never queued a thing
        again. An HTML page with no item at all (a site that changed its pages, a login or
        a block page in place of the list), or items none of which has a url; a JSON answer
        may list none."""
        items = self.items
        if nodes and not self.skipped:
            url = items["fields"]["url"]
            raise HandlerError(
                f"none of the {len(nodes)} items parse.items finds on {self.page[:200]} has a "
                f"url: parse.items.fields.url's {url['type']} expression "
                f"{url['expression'][:200]!r} matches nothing in them. Check it against the "
                "page (open it in a browser).")
        if not nodes and kind == "html":
            raise HandlerError(
                f"parse.items's {items['type']} expression {items['expression'][:200]!r} "
                f"matches nothing on {self.page[:200]}: the site may have changed its pages, "
                "or sent a login or block page instead. Check the definition against the "
                "page (open it in a browser).")

    def entry(self, node: Any) -> Entry | None:
        import jsonpath

        values = {}
        for name, rule in self.items["fields"].items():
            try:
                values[name] = self._rule(rule, node)
            except (*_READ_ERRORS, jsonpath.JSONPathError) as exc:
                raise self._failed(f"fields.{name}", rule, exc) from None
        if not values.get("url"):
            return None
        url = _http_url(self.page, values["url"])
        if url is None:
            self.skipped += 1
            return None
        return Entry(url=url, title=values.get("title", ""),
                     published=_published(values.get("published") or "") if
                     values.get("published") else None)


class DefinitionHandler(Handler):
    """Entries of pages that an enabled task definition matches."""

    name = "DefinitionHandler"

    def __init__(self, definitions: Callable[[], list[dict[str, Any]]]) -> None:
        self._definitions = definitions

    def find(self, url: str) -> dict[str, Any] | None:
        """The first enabled definition that matches ``url``. Its ``regex:`` patterns share
        one time budget (fifty definitions of slow ones cost no more than one), and one
        that runs out of it is that definition's fault, said as such: HandlerError (another
        handler taking the URL instead would queue what the definition was written for)."""
        budget = Budget()
        for record in self._definitions():
            try:
                if record["enabled"] and matches(record["definition"], url, budget):
                    return record
            except PatternTimeout as exc:
                raise HandlerError(f"task definition '{record['name']}': match_url: {exc}; "
                                   "fix or disable the definition.") from None
        return None

    def can_handle(self, url: str) -> bool:
        return self.find(url) is not None

    def list(self, url: str, preset: str, timeout: float = FETCH_TIMEOUT) -> Listing:
        record = self.find(url)
        if record is None:
            raise HandlerError("no enabled task definition matches this URL.")
        definition = record["definition"]
        request = definition.get("request") or {}
        where = (request.get("url") or url).replace("{url}", url)
        body = fetch_request(where, method=request.get("method", "GET"),
                             headers=request.get("headers") or {},
                             params=request.get("params") or {}, body=request.get("body"),
                             timeout=min(timeout, request.get("timeout") or timeout))
        reader = _Reader(definition, where)
        kind = (definition.get("response") or {}).get("type", "html")
        try:
            nodes = reader.containers(body, kind)
            entries = [e for node in nodes if (e := reader.entry(node)) is not None]
            if not entries:
                reader.nothing_found(nodes, kind)
        except PatternTimeout as exc:
            raise HandlerError(str(exc)) from None
        except HandlerError as exc:
            raise HandlerError(f"task definition '{record['name']}': {exc}") from None
        if reader.skipped:
            # One bad link does not cost the page's others; the count says it was seen.
            log.warning("task definition '%s': %d entries of %s skipped: their url is not an "
                        "http(s) address", record["name"], reader.skipped, where[:200])
        return Listing(record["name"], entries)

