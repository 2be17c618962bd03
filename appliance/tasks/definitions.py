"""Task definitions: how to list the entries of a site no other handler knows, as data.

A definition matches URLs (``match_url``: globs, or ``regex:`` expressions), says how to
fetch a page (``request``: method, url, headers, params, body; the ``http`` engine only) and
how to read items from it (``response.type`` html or json; ``parse.items``: a container
selector and a rule per field: url, title, thumbnail, description, published). Rules are
css or xpath (parsel), jsonpath (python-jsonpath, RFC 9535) or regex (bounded,
``appliance.patterns``); a rule's ``post_filter`` keeps the first group of its match, and an
item whose url has no match is dropped.

Checked on save against a JSON Schema (400 names the path of the first error), then each
expression is compiled, so a broken selector is refused at once rather than at 3 a.m.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ..errors import invalid
from ..patterns import Budget, PatternError, PatternTimeout, compile_pattern
from .handlers import FETCH_TIMEOUT, Entry, Handler, HandlerError, Listing, fetch_request

if TYPE_CHECKING:
    import jsonschema

# jsonschema, parsel (cssselect) and python-jsonpath are imported when a definition is first
# checked or read, not with the service: ~25 MB of resident memory a box without definitions
# never pays.

ENGINES = ("http",)
FIELDS = ("url", "title", "thumbnail", "description", "published")
MAX_ITEMS = 1000
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


def _compile(kind: str, expression: str, where: str) -> None:
    import jsonpath
    import parsel
    from cssselect import SelectorError
    from lxml import etree

    try:
        if kind == "css":
            parsel.Selector(text="<html/>").css(expression)
        elif kind == "xpath":
            etree.XPath(expression)
        elif kind == "jsonpath":
            jsonpath.compile(expression)
        else:
            compile_pattern(expression)
    except PatternError as exc:
        raise invalid(f"{where}: {exc.message}") from None
    except (SelectorError, etree.XPathError, jsonpath.JSONPathError, ValueError) as exc:
        raise invalid(f"{where}: the {kind} expression {expression[:200]!r} does not "
                      f"compile: {exc}") from None


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
        except (ValueError, TypeError):
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


class _Reader:
    """Applies one definition's rules to one page, in one time budget for its regexes."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.items = definition["parse"]["items"]
        self.budget = Budget()

    def _rule(self, rule: dict[str, Any], node: Any) -> str:
        import jsonpath
        import parsel

        kind, expression = rule["type"], rule["expression"]
        if kind == "jsonpath":
            found = jsonpath.findall(expression, node)
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
        import parsel

        if kind == "json":
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise HandlerError(f"the page is not JSON: {exc}") from None
            found = jsonpath.findall(self.items["expression"], data)
            return [x for x in found if isinstance(x, dict | list)][:MAX_ITEMS]
        page = parsel.Selector(text=body.decode("utf-8", "replace"))
        select = page.css if self.items["type"] == "css" else page.xpath
        return list(select(self.items["expression"]))[:MAX_ITEMS]

    def entry(self, node: Any, base: str) -> Entry | None:
        fields = self.items["fields"]
        values = {name: self._rule(rule, node) for name, rule in fields.items()}
        if not values.get("url"):
            return None
        return Entry(url=urljoin(base, values["url"]), title=values.get("title", ""),
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
        reader = _Reader(definition)
        kind = (definition.get("response") or {}).get("type", "html")
        try:
            entries = [e for node in reader.containers(body, kind)
                       if (e := reader.entry(node, where)) is not None]
        except PatternTimeout as exc:
            raise HandlerError(str(exc)) from None
        return Listing(record["name"], entries)

