"""Users' regular expressions are bounded: ``^(a|a)+$`` against forty a's and a '!' once held
the GIL for ~100 s and froze the service. Now it is an error on that condition, and the
service answers meanwhile."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from support.origin import MediaOrigin
from support.server import Server, wait_for

from appliance.engine.filters import FilterSyntaxError, parse_filter
from appliance.patterns import (
    MAX_LENGTH,
    Budget,
    PatternError,
    PatternTimeout,
    compile_pattern,
)
from appliance.runtime import Runtime

ATTACK = "^(a|a)+$"
VICTIM = "a" * 40 + "!"


def test_catastrophic_backtracking_stops_at_the_bound() -> None:
    pattern = compile_pattern(ATTACK)
    with pytest.raises(PatternTimeout, match=r"took longer than 0\.2 s"):
        pattern.search(VICTIM, Budget(0.2))


def test_other_threads_run_while_a_search_backtracks() -> None:
    """The search releases the GIL: a thread that counts keeps counting meanwhile (Python's
    re would leave it at 0 until the search ended)."""
    ticks = 0
    searching = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while searching.is_set():
            ticks += 1
            time.sleep(0.001)

    searching.set()
    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        with pytest.raises(PatternTimeout):
            compile_pattern(ATTACK).search(VICTIM, Budget(0.3))
        during = ticks
    finally:
        searching.clear()
        ticker.join()
    assert during > 10


@pytest.mark.parametrize("join", [" || ", " & "])
def test_one_budget_for_every_search_of_an_evaluation(join: str) -> None:
    """Twenty slow expressions in one filter share the bound instead of adding twenty."""
    source = join.join([f"title ~= '{ATTACK}'"] * 20)
    budget = Budget(0.3)
    with pytest.raises(PatternTimeout):
        parse_filter(source).matches({"title": VICTIM}, budget)
    with pytest.raises(PatternTimeout):  # nothing left of it: the next search stops at once
        compile_pattern("a").search("a", budget)


def test_only_the_searches_spend_a_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A definition's page is parsed between its searches (its parser imported first): that
    time, however long on a busy box, is not the searches' to spend."""
    import appliance.patterns

    now = [1000.0]
    monkeypatch.setattr(appliance.patterns.time, "monotonic", lambda: now[0])
    budget = Budget(0.5)
    pattern = compile_pattern("<p>(.*?)</p>")
    assert pattern.extract("<p>one</p>", budget) == "one"
    now[0] += 60  # a minute of other work, e.g. a starved process parsing the page
    assert pattern.extract("<p>two</p>", budget) == "two"
    assert budget.spent < 0.5


def test_sensible_expressions_match_as_re_does() -> None:
    cases = [("(?i)live", "A LIVE show", True), (r"^\w+$", "Ünïcode", True),
             (r"^(?!.*trailer)", "the trailer", False), (r"(\w)\1", "aa", True),
             (r"\bcat\b", "concat", False)]
    for source, subject, expected in cases:
        assert compile_pattern(source).search(subject) is expected, source
    assert parse_filter("title ~= '(?i)live' & duration > 5").matches(
        {"title": "Live now", "duration": 6})


@pytest.mark.parametrize(("source", "reason"), [
    ("(", "missing ), unterminated subpattern"),
    ("a" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH} characters"),
    # regex builds counted repeats out: this one alone took ~3 GB and 6 s to compile.
    ("(?:(?:a{1000}){1000}){10}", "repeats too much"),
    ("a{1000000}", "repeats too much"),
    ("a{20000}", "repeats too much"),  # one past the bound (a{19999} is 20,000 elements)
    ("(?:a{0,1000}){0,1000}", "repeats too much"),  # a repeat's upper bound counts
    # a group's contents count too, a capturing group's as a non-capturing one's
    ("(a{1000}){1000}", "repeats too much"),
    ("(?P<x>a{200}|b{200}){100}", "repeats too much"),
    ("(" * 300 + ")" * 300, "the regular expression is nested too deeply"),
    # Counted as regex reads it too: in verbose mode, blanks in a count are text to re and
    # skipped by regex (this one, weighed as re reads it, took a GB and 2 s to build).
    ("(?x)(?:(?:a{ 1000 }){ 1000 }){ 3 }", "repeats too much"),
    ("(?x)a{ 20000 }", "repeats too much"),
    ("(?x)(?:a{1 0 0}){2 0 0 0}", "repeats too much"),
    ("(?:live){e<=2}", "fuzzy matching ({e<=1} and the like) is not Python's re syntax, where "
                       "it is text: write \\{ to mean a brace"),
    ("x(?:a|b{i<=1,d<=1})", "fuzzy matching"),
    ("(?x)(?:a{ 0 , 1000 }){ 0 , 1000 }", "repeats too much"),  # the upper bound, here too
    ("(?x)(a{ 19999 })", "repeats too much"),  # a group is an element, as with re
    # A set re reads as characters, regex as a POSIX class it does not know.
    pytest.param("[[:foo:]]", "invalid regular expression (unknown property at position 8)",
                 marks=pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")),
    ("[a-\\d]", "invalid regular expression (bad character range a-\\d)"),
])
def test_refused_at_compile_time(source: str, reason: str) -> None:
    with pytest.raises(PatternError, match=re.escape(reason)):
        compile_pattern(source)
    with pytest.raises(FilterSyntaxError, match=re.escape(reason)) as error:
        parse_filter(f"title ~= '{source}'")
    assert error.value.position == len("title ~= ")


def test_verbose_expressions_and_braces_as_text_within_the_bound_are_taken() -> None:
    assert compile_pattern("(?x) live \\s+ now  # a comment").search("live  now")
    assert compile_pattern("(?x)(?:a{ 100 }){ 198 }").search("a" * 19_800)  # 19,999
    assert compile_pattern("a\\{e<=1}").search("a{e<=1}")  # the brace, escaped: text
    assert compile_pattern("[{e<=1}]").search("<")
    # A blank that is not ASCII is text in a count to both (regex's VERSION0, as re).
    count = "{\xa01000\xa0}"
    assert compile_pattern(f"(?x)(?:a{count}){count}").search(f"a{count}{count}")


def test_a_condition_that_would_take_a_gigabyte_to_build_is_refused(client: Any) -> None:
    response = client.simulate_post("/api/conditions", json={
        "name": "verbose", "filter": "title ~= '(?x)(?:(?:a{ 1000 }){ 1000 }){ 3 }'"})
    assert response.status_code == 400, response.text
    assert "repeats too much" in response.json["error"]


def test_what_is_refused_says_why_in_words() -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(123)  # type: ignore[arg-type]
    assert caught.value.message == "a regular expression must be a string"
    with pytest.raises(PatternError) as caught:
        compile_pattern("(" * 300 + ")" * 300)
    assert caught.value.message == "the regular expression is nested too deeply"
    timeout = PatternTimeout("(a+)+$", 0.5)
    assert str(timeout) == ("the regular expression '(a+)+$' took longer than 0.5 s (it "
                            "backtracks too much; simplify it, e.g. avoid nested or "
                            "overlapping repeats such as (a|a)+ or (a+)+)")


def test_condition_over_the_bound_is_skipped_when_an_item_is_added(
        runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    conditions = runtime.engine.conditions
    conditions.create({"name": "slow", "filter": f"title ~= '{ATTACK}'", "priority": 10,
                       "extras": {"skip": True}})
    conditions.create({"name": "fine", "filter": "title *= a", "extras": {"skip": True}})
    with caplog.at_level("WARNING", logger="appliance.engine.conditions"):
        matched = conditions.match({"title": VICTIM})
    assert matched is not None and matched["name"] == "fine"
    assert "Condition 'slow' failed" in caplog.text and "took longer than" in caplog.text


def test_priority_is_a_32_bit_number(client: Any) -> None:
    for priority in (2**31, -(2**31) - 1, 2**40):
        response = client.simulate_post("/api/conditions", json={
            "name": f"p{priority}", "filter": "title", "priority": priority})
        assert response.status_code == 400, response.text
        assert response.json["code"] == "INVALID_REQUEST"
        assert "priority must be between" in response.json["error"]
    response = client.simulate_post("/api/conditions", json={
        "name": "top", "filter": "title", "priority": 2**31 - 1})
    assert response.status_code == 200 and response.json["priority"] == 2**31 - 1


# --- the attack through the real service --------------------------------------------------


@pytest.mark.e2e
def test_attack_through_http_while_ping_answers(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    url = origin.watch_url("clip", title=VICTIM)
    answer: dict[str, requests.Response] = {}

    def attack() -> None:
        answer["response"] = requests.post(
            server.url + "/api/conditions/test", timeout=120,
            json={"url": url, "condition": f"title ~= '{ATTACK}'"})

    attacker = threading.Thread(target=attack)
    pings = 0
    attacker.start()
    with requests.Session() as second:
        while attacker.is_alive():  # the second client is served all the while
            assert second.get(server.url + "/api/ping", timeout=5).status_code == 200
            pings += 1
    attacker.join()
    response = answer["response"]
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "REGEX_TIMEOUT"
    assert "took longer than" in response.json()["error"]
    assert pings > 1
    # The same page with a sensible expression is evaluated as before.
    fine = server.post("/api/conditions/test", {"url": url, "condition": "title ~= '^a+!$'"})
    assert fine.status_code == 200 and fine.json()["status"] is True


@pytest.mark.e2e
def test_add_time_failure_is_reported_and_the_item_goes_on(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    created = server.post("/api/conditions", {
        "name": "slow skip", "filter": f"title ~= '{ATTACK}'", "extras": {"skip": True}})
    assert created.status_code == 200, created.text
    added = server.post("/api/history", {"url": origin.watch_url("clip", title=VICTIM)})
    assert added.status_code == 200, added.text
    item = server.wait_status(added.json()[0]["id"], {"finished", "skip", "error"})
    assert item["status"] == "finished", item  # not skipped: the condition failed

    def reported() -> bool:
        logs = server.get("/api/logs").json()["logs"]
        return any("Condition 'slow skip' failed" in e["message"] for e in logs)

    wait_for(reported, timeout=10, message="the condition's failure in the log")
    assert server.get("/api/ping").status_code == 200


def test_a_saved_filter_refused_now_is_passed_over(
        runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    """A condition saved before expressions were bounded does not break every add."""
    conditions = runtime.engine.conditions
    conditions.table.create({"name": "old", "filter": "title ~= 'a{100000}'", "cli": "",
                             "extras": {"skip": True}, "enabled": True, "priority": 5,
                             "description": ""})
    conditions.create({"name": "fine", "filter": "title *= a", "extras": {"skip": True}})
    with caplog.at_level("WARNING", logger="appliance.engine.conditions"):
        matched = conditions.match({"title": "a" * 10})
    assert matched is not None and matched["name"] == "fine"
    assert "Condition 'old' is passed over" in caplog.text and "repeats too much" in caplog.text


def test_the_bound_itself_is_accepted_and_extract_gives_the_match_or_its_group() -> None:
    assert compile_pattern("a{19999}").search("a" * 19999)
    assert compile_pattern("a{19997}b?").search("a" * 19997)  # an optional b: 2 elements
    assert compile_pattern("a" * MAX_LENGTH).search("a" * MAX_LENGTH)
    assert compile_pattern("b+").extract("abbc") == "bb"  # no group: the whole match
    assert compile_pattern("a(b+)").extract("abbc") == "bb"
    assert compile_pattern("z").extract("abc") is None
    with pytest.raises(TypeError, match="only strings are searched"):
        compile_pattern("a").search(b"a")  # type: ignore[arg-type]


def test_extract_spends_the_evaluations_budget() -> None:
    spent = Budget(0.5)
    spent.spent = 0.5
    with pytest.raises(PatternTimeout, match=re.escape("took longer than 0.5 s (it backtracks "
                                                       "too much; simplify it")):
        compile_pattern("(.*)").extract("abc", spent)
