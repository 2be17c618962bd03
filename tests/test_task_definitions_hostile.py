"""Hostile task definitions and pages: what is refused on save (with the path and why), and
what a definition saved before those checks does when its page is read -- a named
HandlerError, never a raw exception or an unbounded regular expression -- and one bad link
that costs only itself. Pages are served by the local origin; the reading runs in process
(``DefinitionHandler.list``, what a download process runs), so this worktree's code runs."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import falcon.testing
import pytest
from conftest import client_of_module
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.webhooks import Receiver

from appliance.runtime import Runtime
from appliance.tasks.definitions import DefinitionHandler
from appliance.tasks.handlers import HandlerError

Client = falcon.testing.TestClient
NO_REGEX = "regular expressions are not available in"

HTML = {"match_url": ["*/pages/hostile-*"],
        "parse": {"items": {"type": "css", "expression": "li", "fields": {
            "url": {"type": "css", "expression": "a::attr(href)"},
            "title": {"type": "css", "expression": "a::text"}}}}}
JSON = {"match_url": ["*/pages/hostile-*"], "response": {"type": "json"},
        "parse": {"items": {"type": "jsonpath", "expression": "$.items[*]", "fields": {
            "url": {"type": "jsonpath", "expression": "$.u"}}}}}
LINKS = b"<ul><li><a href='/watch/a'>a</a></li><li><a href='/watch/b'>b</a></li></ul>"


@pytest.fixture
def app(app_with: Callable[..., tuple[Runtime, Client]]) -> tuple[Runtime, Client]:
    return app_with(YTP_TASKS_SPREAD="0")


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    yield from client_of_module(tmp_path_factory, "refusing", YTP_TASKS_SPREAD="0")


def items(definition: dict[str, Any], **changes: Any) -> dict[str, Any]:
    made = copy.deepcopy(definition)
    made["parse"]["items"].update(changes)
    return made


def url_rule(kind: str, expression: str) -> dict[str, Any]:
    return {"url": {"type": kind, "expression": expression}}


def listing(origin: MediaOrigin, name: str, definition: dict[str, Any], page: bytes,
            kind: str = "text/html") -> list[tuple[str, str]]:
    """The entries the definition reads off ``page``, served by the origin."""
    origin.feeds.pages[f"hostile-{name}"] = (page, kind)
    handler = DefinitionHandler(lambda: [{"name": name, "enabled": True,
                                          "definition": definition}])
    found = handler.list(f"{origin.base_url}/pages/hostile-{name}", "default", timeout=10)
    return [(e.url, e.title) for e in found.entries]


# --- refused on save -----------------------------------------------------------------------


@pytest.mark.parametrize(("definition", "where", "says"), [
    (items(HTML, type="xpath", expression="//li[re:test(.//a/@href, '^(a|a)+$')]"),
     "definition.parse.items.expression", NO_REGEX + " xpath"),
    (items(HTML, fields=url_rule("xpath", "re:match(.//a/@href, '(a|a)+')")),
     "definition.parse.items.fields.url.expression", NO_REGEX + " xpath"),
    (items(HTML, fields=url_rule("xpath", "re:replace(.//a/@href, 'a', 'g', 'b')")),
     "definition.parse.items.fields.url.expression", NO_REGEX + " xpath"),
    (items(JSON, expression="$.items[?search(@.u, '^(a|a)+$')]"),
     "definition.parse.items.expression", NO_REGEX + " jsonpath"),
    (items(JSON, fields=url_rule("jsonpath", "$[?match(@, 'x')]")),
     "definition.parse.items.fields.url.expression", NO_REGEX + " jsonpath"),
    (items(JSON, expression="$.items[?@.u =~ /(a|a)+/]"),
     "definition.parse.items.expression", NO_REGEX + " jsonpath"),
    (items(HTML, type="xpath", expression="foo:bar()"),
     "definition.parse.items.expression", "the namespace prefix 'foo:' is not defined"),
    (items(HTML, fields=url_rule("xpath", "$x")),
     "definition.parse.items.fields.url.expression", "variables ($name) are not defined"),
    # in a predicate that selects nothing on save: libxml2 never looks at it there
    (items(HTML, type="xpath", expression="//li[foo:bar()]"),
     "definition.parse.items.expression", "the namespace prefix 'foo:' is not defined"),
    (items(HTML, type="xpath", expression="//li[$x]"),
     "definition.parse.items.expression", "variables ($name) are not defined"),
    (items(HTML, type="xpath", expression="//li[nothing(.)]"),
     "definition.parse.items.expression", "the function nothing() is not defined"),
    # each found by libxml2 only as it runs: at the task's first run
    (items(HTML, type="xpath", expression="//li[count()]"),
     "definition.parse.items.expression", "count() takes 1 argument(s), not 0"),
    (items(HTML, fields=url_rule("xpath", "substring(.//a/@href, 1, 2, 3)")),
     "definition.parse.items.fields.url.expression", "substring() takes 2 to 3 argument(s), not 4"),
    (items(HTML, fields=url_rule("xpath", "concat(.//a/@href)")),
     "definition.parse.items.fields.url.expression",
     "concat() takes at least 2 argument(s), not 1"),
    (items(HTML, type="xpath", expression="//li[position(1) > last()]"),
     "definition.parse.items.expression", "position() takes 0 argument(s), not 1"),
    (items(HTML, type="xpath", expression="//li[count('a, b') > 1]"),
     "definition.parse.items.expression", "count() takes node-sets, not a string or a number"),
    (items(HTML, type="xpath", expression="set:distinct(//li, -1.5)"),
     "definition.parse.items.expression", "set:distinct() takes 1 argument(s), not 2"),
    (items(HTML, type="xpath", expression="//li[sum(2) > 1]"),
     "definition.parse.items.expression", "sum() takes node-sets"),
    ({**HTML, "request": {"headers": {"X-A": "€"}}}, "definition.request.headers.X-A",
     "latin-1"),
    ({**HTML, "request": {"headers": {"X-é": "v"}}}, "definition.request.headers.X-é",
     "header name"),
    ({**HTML, "request": {"headers": {"X-A": "a\r\nX-B: b"}}},
     "definition.request.headers.X-A", "line breaks"),
    ({**HTML, "request": {"headers": {"": "v"}}}, "definition.request.headers.(empty)",
     "header name"),
    # a value is sent stripped of spaces and tabs only: its line break would stay
    ({**HTML, "request": {"headers": {"X-A": "v\r\n"}}}, "definition.request.headers.X-A",
     "line breaks"),
    (items(HTML, fields=url_rule("jsonpath", "$.u")), "definition.parse.items.fields.url.type",
     "jsonpath does not read html responses"),
])
def test_what_cannot_run_is_refused_on_save_naming_its_path(
        refusing: Client, definition: dict[str, Any], where: str, says: str) -> None:
    response = refusing.simulate_post("/api/tasks/definitions",
                                      json={"name": "d", "definition": definition})
    assert response.status_code == 400, response.text
    error = response.json["error"]
    assert error.startswith(where + ":") and says in error, error
    if says.startswith(NO_REGEX):
        assert "a rule of type regex, or a post_filter" in error


def test_the_line_between_refused_and_saved(app: tuple[Runtime, Client]) -> None:
    """Only what cannot run is refused: its neighbours (a literal that looks like re:, the
    sets prefix, xml:lang, axes, operators, jsonpath's other functions, latin-1) are not."""
    _, client = app
    refused = client.simulate_post("/api/tasks/definitions", json={"name": "d", "definition": (
        items(HTML, type="xpath", expression="//li[re:test(@class, 'x')]"))})
    assert refused.status_code == 400 and NO_REGEX in refused.json["error"], refused.text
    for definition in (items(HTML, type="xpath", expression="//li[set:distinct(.)]"),
                       items(HTML, type="xpath", expression=(
                           "//li[count(.//a[contains(@href, ',)')]) = count(( .//b ))"
                           " and substring(concat('a', 'b', ''), 1) != substring(., 1, 2)"
                           " and string-length() > round(-1.5) and position() = last()]")),
                       items(HTML, type="xpath", expression=(
                           "//li[contains(@class, 're:test(') and not(@xml:lang)]"
                           "/descendant-or-self::node()[position() > 1 or (1 div 1)]")),
                       items(JSON, expression="$.items[?length(@.u) > 1]"),
                       # calls within calls within an argument; a sets function of two
                       items(HTML, type="xpath", expression=(
                           "//li[substring(concat('a', string(.)), 1) = 'a']")),
                       items(HTML, type="xpath", expression="set:difference(//li, //li[1])"),
                       {**HTML, "request": {"headers": {"Accept": "*/*", "X-Empty": "",
                                                        "X-Latin": "café"}}}):
        response = client.simulate_post("/api/tasks/definitions",
                                        json={"name": "d", "definition": definition})
        assert response.status_code == 201, response.text
        client.simulate_delete(f"/api/tasks/definitions/{response.json['id']}")


def _nested(step: str, depth: int) -> str:
    expression = "*"
    for _ in range(depth):
        expression = step.format(expression)
    return expression


@pytest.mark.parametrize(("kind", "expression"), [
    ("xpath", _nested("//*[count({})]", 40)),
    ("xpath", _nested("ancestor-or-self::node()[count({})]", 40)),
    ("css", _nested("*:not(:has({}))", 40)),
], ids=["xpath-count", "xpath-two-nodes", "css-has"])
def test_an_expression_costing_years_to_run_is_checked_on_save_without_running_it(
        app: tuple[Runtime, Client], kind: str, expression: str) -> None:
    """Nested predicates cost the page's nodes to the power of their depth: evaluated on
    save (on a page of a few nodes), 40 levels held the request's thread at 100 % CPU for
    longer than the box lives. Saved at once; a page is read in a download process, killed
    at its time limit."""
    _, client = app
    definition = items(HTML, type=kind, expression=expression)
    answers: list[falcon.testing.Result] = []
    saving = threading.Thread(target=lambda: answers.append(client.simulate_post(
        "/api/tasks/definitions", json={"name": "deep", "definition": definition})),
        daemon=True)
    saving.start()
    saving.join(60)
    assert not saving.is_alive(), "the save evaluated the expression"
    assert answers[0].status_code == 201, answers[0].text
    broken = client.simulate_post("/api/tasks/definitions", json={
        "name": "broken", "definition": items(HTML, type="xpath", expression="set:nothing(.)")})
    assert broken.status_code == 400, broken.text
    assert "the function set:nothing() is not defined" in broken.json["error"]


# --- saved before those checks: named when the page is read ----------------------------------


def test_regular_expressions_do_not_run_when_a_page_is_read(origin: MediaOrigin) -> None:
    """A harmless pattern, so that running it (the old behaviour) lists the page instead."""
    xpath = items(HTML, fields=url_rule("xpath", ".//a[re:test(@href, 'a')]/@href"))
    with pytest.raises(HandlerError) as raised:
        listing(origin, "xre", xpath, LINKS)
    said = str(raised.value)
    assert said.startswith("task definition 'xre': parse.items.fields.url: the xpath "
                           "expression") and NO_REGEX + " xpath" in said, said
    assert "/pages/hostile-xre" in said
    for name, expression in (("jsearch", "$.items[?search(@.u, 'a')]"),
                             ("jre", "$.items[?@.u =~ /.*a/]")):
        page = b'{"items": [{"u": "/watch/a"}, {"u": "/watch/b"}]}'
        with pytest.raises(HandlerError) as raised:
            listing(origin, name, items(JSON, expression=expression), page,
                    "application/json")
        said = str(raised.value)
        assert f"task definition '{name}': parse.items.expression" in said, said
        assert NO_REGEX + " jsonpath" in said or "is not defined" in said, said


def test_a_failing_xpath_is_named_not_raised(origin: MediaOrigin) -> None:
    for name, expression, says in (("var", "$x", "variables ($name) are not defined"),
                                   ("prefix", "foo:bar()", "prefix 'foo:' is not defined")):
        with pytest.raises(HandlerError) as raised:
            listing(origin, name, items(HTML, fields=url_rule("xpath", expression)), LINKS)
        said = str(raised.value)
        assert said.startswith(f"task definition '{name}': parse.items.fields.url: the "
                               f"xpath expression {expression!r} failed on ") and says in said


def test_a_json_page_nested_too_deeply_is_named(origin: MediaOrigin) -> None:
    with pytest.raises(HandlerError) as raised:
        listing(origin, "deep", JSON, b"[" * 100_000, "application/json")
    assert "nests its JSON too deeply" in str(raised.value)
    # deep, but within what json reads: the recursive descent is what gives up, named
    deep = b'{"items": [' + b'{"u": ' * 500 + b'"x"' + b"}" * 500 + b"]}"
    with pytest.raises(HandlerError) as raised:
        listing(origin, "descent", items(JSON, fields=url_rule("jsonpath", "$..u")), deep,
                "application/json")
    assert "parse.items.fields.url" in str(raised.value)


@pytest.mark.parametrize(("headers", "says"), [
    ({"X-A": "€"}, "latin-1"), ({"X-é": "v"}, "header name"),
    ({"X-A": "a\r\nX-B: b"}, "line breaks"), ({"": "v"}, "header name")])
def test_headers_that_cannot_be_sent_are_named(origin: MediaOrigin, headers: dict[str, str],
                                               says: str) -> None:
    with pytest.raises(HandlerError) as raised:
        listing(origin, "headers", {**HTML, "request": {"headers": headers}}, LINKS)
    said = str(raised.value)
    assert f"request header {next(iter(headers))!r}" in said and says in said, said


def test_a_request_url_that_is_no_address_is_named(origin: MediaOrigin) -> None:
    with pytest.raises(HandlerError) as raised:
        listing(origin, "rurl", {**HTML, "request": {"url": "http://[::1/{url}"}}, LINKS)
    assert "is not an http(s) address" in str(raised.value)


# --- one bad link costs only itself ---------------------------------------------------------


def test_links_that_are_not_http_addresses_are_skipped(origin: MediaOrigin,
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    bad = ["http://[::1", "javascript:alert(1)", "data:text/html,x", "file:///etc/passwd",
           "mailto:a@b.invalid", "http://host.invalid:99999/"]
    links = "".join(f"<li><a href='{href}'>bad</a></li>" for href in bad)
    page = f"<ul><li><a href='/watch/a'>a</a></li>{links}" \
           f"<li><a href='https://elsewhere.invalid/b'>b</a></li></ul>".encode()
    with caplog.at_level(logging.WARNING, "appliance.tasks.definitions"):
        found = listing(origin, "links", HTML, page)
    assert found == [(f"{origin.base_url}/watch/a", "a"), ("https://elsewhere.invalid/b", "b")]
    assert any(f"{len(bad)} entries" in r.getMessage() and "'links'" in r.getMessage()
               for r in caplog.records), caplog.text


def test_a_date_past_the_calendar_is_no_date(origin: MediaOrigin) -> None:
    definition = items(HTML, fields={**HTML["parse"]["items"]["fields"], "published": {
        "type": "css", "expression": "time::text"}})
    page = (b"<ul><li><a href='/watch/a'>a</a><time>Mon, 1 Jan 99999999999999 00:00:00"
            b"</time></li></ul>")
    origin.feeds.pages["hostile-date"] = (page, "text/html")
    handler = DefinitionHandler(lambda: [{"name": "date", "enabled": True,
                                          "definition": definition}])
    found = handler.list(f"{origin.base_url}/pages/hostile-date", "default", timeout=10)
    assert [(e.url, e.published) for e in found.entries] == [
        (f"{origin.base_url}/watch/a", None)]


# --- what a page gives, field by field --------------------------------------------------------


def _entries(origin: MediaOrigin, name: str, definition: dict[str, Any], page: bytes,
             kind: str = "text/html") -> list[tuple[str, str, float | None]]:
    origin.feeds.pages[f"hostile-{name}"] = (page, kind)
    handler = DefinitionHandler(lambda: [{"name": name, "enabled": True,
                                          "definition": definition}])
    found = handler.list(f"{origin.base_url}/pages/hostile-{name}", "default", timeout=10)
    return [(e.url, e.title, e.published) for e in found.entries]


def test_each_field_is_read_by_its_own_rule(origin: MediaOrigin) -> None:
    """A regex rule for the url, a css title tidied of its line breaks and cut by its
    post_filter, dates with and without a zone (none: UTC); a field a rule finds nothing
    for is empty, never made up."""
    definition = items(HTML, fields={
        "url": {"type": "regex", "expression": 'href="([^"]+)"'},  # as parsel writes it
        "title": {"type": "css", "expression": "span.t::text",
                  "post_filter": "Episode (\\d+ of \\d+)"},
        "published": {"type": "css", "expression": "time::attr(datetime)"}})
    page = (b"<ul><li><a href='/watch/a'>x</a><span class='t'>  Episode\n   12 \n of 20 "
            b"</span><time datetime='2024-05-01T10:00:00+02:00'></time></li>"
            b"<li><a href='/watch/b'>y</a><time datetime='2024-05-01T10:00:00'></time></li>"
            b"<li><a href='/watch/c'>z</a></li></ul>")
    utc = ZoneInfo("UTC")
    assert _entries(origin, "fields", definition, page) == [
        (f"{origin.base_url}/watch/a", "12 of 20", datetime(2024, 5, 1, 8, tzinfo=utc
                                                            ).timestamp()),
        (f"{origin.base_url}/watch/b", "", datetime(2024, 5, 1, 10, tzinfo=utc).timestamp()),
        (f"{origin.base_url}/watch/c", "", None)]
    json_definition = items(JSON, fields={"url": {"type": "jsonpath", "expression": "$.u"},
                                          "title": {"type": "jsonpath", "expression": "$.t"}})
    page = b'{"items": [{"u": "/watch/a", "t": "A"}, {"u": "/watch/b"}]}'
    assert _entries(origin, "jfields", json_definition, page, "application/json") == [
        (f"{origin.base_url}/watch/a", "A", None), (f"{origin.base_url}/watch/b", "", None)]


def test_a_regex_rule_reads_a_json_container_as_its_text(origin: MediaOrigin) -> None:
    definition = items(JSON, fields={"url": {"type": "jsonpath", "expression": "$.u"},
                                     "title": {"type": "regex", "expression": '"t": "(\\w+)"'}})
    page = b'{"items": [{"u": "/watch/a", "t": "Ayy"}]}'
    assert _entries(origin, "jregex", definition, page, "application/json") == [
        (f"{origin.base_url}/watch/a", "Ayy", None)]


def test_a_page_not_in_utf8_is_read_all_the_same(origin: MediaOrigin) -> None:
    """A latin-1 byte in a title (a site that does not say its charset) costs that
    character, not the page."""
    page = b"<ul><li><a href='/watch/a'>caf\xe9</a></li><li><a href='/watch/b'>b</a></li></ul>"
    assert listing(origin, "latin", HTML, page) == [
        (f"{origin.base_url}/watch/a", "caf\ufffd"), (f"{origin.base_url}/watch/b", "b")]


def test_the_definitions_params_are_sent(origin: MediaOrigin) -> None:
    """The request's params go in its query: here the channel whose feed the origin
    answers with (without them, none: a 404)."""
    channel = "UC" + "p" * 22
    origin.feeds.set(channel, [FeedEntry("paramvid001", origin.watch_url("clip"), "One")])
    definition = {"match_url": ["*/pages/hostile-params"],
                  "request": {"url": f"{origin.base_url}/feeds/videos.xml",
                              "params": {"channel_id": channel}},
                  "parse": {"items": {"type": "xpath", "expression": "/*", "fields": {
                      "url": {"type": "regex", "expression": 'href="([^"]+)"'}}}}}
    handler = DefinitionHandler(lambda: [{"name": "params", "enabled": True,
                                          "definition": definition}])
    found = handler.list(f"{origin.base_url}/pages/hostile-params", "default", timeout=10)
    assert [e.url for e in found.entries] == [origin.watch_url("clip")]


def test_the_definitions_request_method_is_the_one_sent(origin: MediaOrigin) -> None:
    """The origin serves GET only: a POST reaches it as a POST, refused, and the run's
    error says how the site answered."""
    with pytest.raises(HandlerError) as raised:
        listing(origin, "posted", {**HTML, "request": {"method": "POST"}}, LINKS)
    assert "/pages/hostile-posted: The site failed with an error of its own (HTTP 501" in str(
        raised.value)
    assert listing(origin, "got", {**HTML, "request": {"method": "GET"}}, LINKS) == [
        (f"{origin.base_url}/watch/a", "a"), (f"{origin.base_url}/watch/b", "b")]


def test_a_regex_match_url_takes_the_urls_it_matches(app: tuple[Runtime, Client]) -> None:
    _, client = app
    made = client.simulate_post("/api/tasks/definitions", json={"name": "numbered", "definition": {
        **HTML, "match_url": ["https://other.invalid/*", r"regex:^https://shows\.invalid/\d+$"]}})
    assert made.status_code == 201, made.text
    for url, handler in (("https://shows.invalid/12", "DefinitionHandler"),
                         ("https://shows.invalid/twelve", "GenericTaskHandler")):
        inspect = client.simulate_post("/api/tasks/inspect", json={"url": url,
                                                                   "static_only": True})
        assert inspect.json["metadata"]["handler"] == handler, url


def test_a_page_past_the_size_bound_is_named_not_read(origin: MediaOrigin) -> None:
    big = origin.big_file(16 * 1024 * 1024)
    with pytest.raises(HandlerError) as raised:
        listing(origin, "big", {**HTML, "request": {"url": big}}, LINKS)
    assert str(raised.value) == f"{big} is larger than 10 MiB."


def test_an_xpath_container_is_read_as_xpath(origin: MediaOrigin) -> None:
    """A css reading of an xpath (``//li``) finds nothing: each container its own kind."""
    definition = items(HTML, type="xpath", expression="//ul/li[a]",
                       fields=url_rule("xpath", "./a/@href"))
    assert listing(origin, "xpath", definition, LINKS) == [
        (f"{origin.base_url}/watch/a", ""), (f"{origin.base_url}/watch/b", "")]


def test_refused_and_broken_expressions_are_told_apart(app: tuple[Runtime, Client]) -> None:
    """What cannot run here "is refused"; what is no expression at all "does not compile"."""
    _, client = app
    for definition, says in (
            (items(HTML, type="xpath", expression="//li[re:test(@class, 'x')]"),
             "the xpath expression \"//li[re:test(@class, 'x')]\" is refused: " + NO_REGEX),
            (items(HTML, expression="li[["), "the css expression 'li[[' does not compile: "),
            (items(HTML, fields={"url": {"type": "css", "expression": "a::attr(href)",
                                         "post_filter": "(unclosed"}}),
             "definition.parse.items.fields.url.post_filter: ")):
        response = client.simulate_post("/api/tasks/definitions",
                                        json={"name": "d", "definition": definition})
        assert response.status_code == 400, response.text
        assert says in response.json["error"], response.json["error"]


def test_a_record_with_a_definition_of_the_wrong_kind_is_named(
        app: tuple[Runtime, Client]) -> None:
    _, client = app
    for body, error in (({"name": "d", "definition": [HTML]}, "definition must be an object."),
                        ({"name": " ", "definition": HTML},
                         "name is required (1 to 100 characters)."),
                        ({"name": "n" * 101, "definition": HTML},
                         "name is required (1 to 100 characters).")):
        response = client.simulate_post("/api/tasks/definitions", json=body)
        assert (response.status_code, response.json["error"]) == (400, error), response.text


def test_what_a_definition_is_made_of_is_checked_where_it_is_saved(
        app: tuple[Runtime, Client]) -> None:
    """A ``regex:`` match_url is compiled without its prefix (a pattern that compiles only
    with it, ``:*a``, was saved, and failed at every run); a description is text."""
    _, client = app
    refused = client.simulate_post("/api/tasks/definitions", json={
        "name": "d", "definition": {**HTML, "match_url": ["regex:*a"]}})
    assert refused.status_code == 400, refused.text
    assert refused.json["error"].startswith("definition.match_url[0]:"), refused.json
    typed = client.simulate_post("/api/tasks/definitions", json={
        "name": "d", "description": 5, "definition": HTML})
    assert typed.status_code == 400 and "description" in typed.json["error"], typed.text


def test_a_json_field_that_is_null_is_no_value(origin: MediaOrigin) -> None:
    """A null (or 0, an empty list) read by a jsonpath rule is no url, no title: not the
    text of one."""
    page = b'{"items": [{"u": null}, {"u": 0}, {"u": []}, {"u": "/watch/a", "t": null}]}'
    definition = items(JSON, fields={"url": {"type": "jsonpath", "expression": "$.u"},
                                     "title": {"type": "jsonpath", "expression": "$.t"}})
    assert listing(origin, "nulls", definition, page, "application/json") == [
        (f"{origin.base_url}/watch/a", "")]


def test_the_definitions_request_body_is_sent() -> None:
    receiver = Receiver()
    try:
        definition = {**JSON, "match_url": ["*/search"],
                      "request": {"method": "POST", "body": {"query": "new videos"}}}
        handler = DefinitionHandler(lambda: [{"name": "posted", "enabled": True,
                                              "definition": definition}])
        assert handler.list(receiver.url("/search"), "default", timeout=10).entries == []
        [hit] = receiver.to("/search")
        assert (hit.method, hit.json()) == ("POST", {"query": "new videos"})
    finally:
        receiver.close()
