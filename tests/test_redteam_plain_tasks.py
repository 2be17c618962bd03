"""Red team (plain17): what a person reads when a task's feed cannot be used, or its timer
can never run. Each says what the site sent or what is wrong, and what to do: the run's error
was "…answered HTTP 500.", "…is not a feed: <unknown>:2:0: not well-formed (invalid token).",
"…is not a feed: no RSS or Atom document." for a login page, and "0 0 30 2 *" was "not a
valid cron expression: Bad day-of-month", though it is one: it never runs."""

from __future__ import annotations

import falcon.testing
import pytest
from support.origin import MediaOrigin
from support.task_runs import run_now

from appliance.runtime import Runtime

LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form></form>"


@pytest.mark.parametrize(("name", "make", "said"), [
    ("down", lambda feeds: feeds.fail("down", 500),
     "could not read {url}: The site failed with an error of its own (HTTP 500 Internal "
     "Server Error): try again later."),
    ("login", lambda feeds: feeds.junk("login", LOGIN_PAGE),
     "{url} is not a feed: the site sent a web page (HTML), not RSS or Atom: often a login, an "
     "error or a block page. Check that the address is the feed's own."),
    ("junk", lambda feeds: feeds.junk("junk", b"\x00\x01 junk \xff"),
     "{url} is not a feed: it is not readable XML (not well-formed (invalid token))."),
])
def test_a_feed_that_cannot_be_used_says_what_the_site_sent_and_what_to_do(
        runtime: Runtime, client: falcon.testing.TestClient, origin: MediaOrigin, name: str,
        make: object, said: str) -> None:
    make(origin.feeds)  # type: ignore[operator]
    url = f"{origin.base_url}/feeds/{name}.rss"
    task = client.simulate_post("/api/tasks", json={"name": name, "url": url,
                                                    "timer": "0 3 * * *"}).json
    execution = run_now(runtime, task)
    assert execution["status"] == "failed"
    assert execution["error"] == said.format(url=url)


@pytest.mark.parametrize(("timer", "said"), [
    ("0 0 30 2 *", "timer '0 0 30 2 *' never runs: the day of the month '30' comes in none of "
                   "the months '2' (February has 29 days at most, April, June, September and "
                   "November 30): choose a day those months have."),
    ("0 24 * * *", "timer '0 24 * * *' is not a valid cron expression: its hour (field 2) '24' "
                   "is not 0-23, a range (1-5), a list (1,15) or a step (*/15)."),
])
def test_a_timer_that_never_runs_or_cannot_be_read_says_which_field_and_why(
        client: falcon.testing.TestClient, origin: MediaOrigin, timer: str, said: str) -> None:
    refused = client.simulate_post("/api/tasks", json={
        "name": "never", "url": f"{origin.base_url}/feeds/never.rss", "timer": timer})
    assert refused.status_code == 400, refused.text
    assert refused.json["error"] == said


def test_a_task_whose_page_holds_no_video_is_told_to_check_its_link_not_for_one_video(
        runtime: Runtime, client: falcon.testing.TestClient, origin: MediaOrigin) -> None:
    origin.feeds.pages["nothing"] = (b"<html><body><p>No videos here.</p></body></html>",
                                     "text/html")
    url = f"{origin.base_url}/pages/nothing"
    task = client.simulate_post("/api/tasks", json={"name": "nothing", "url": url,
                                                    "timer": "0 3 * * *"}).json
    execution = run_now(runtime, task)
    assert execution["status"] == "failed"
    # it said "(the page of the video itself, not a page around it)", wrong for a channel's
    assert execution["error"] == (
        "yt-dlp knows no site at this address, and found no video in its page: check the link "
        "(a video's own page, or a playlist's or a channel's; not a page that only mentions "
        f"it). (Unsupported URL: {url})")


LIST = b"<html><body><ul><li><a href='/watch/a'>a</a></li><li><a href='/watch/b'>b</a></li>"


@pytest.mark.parametrize(("items", "said"), [
    ({"type": "css", "expression": "div.video", "fields": {
        "url": {"type": "css", "expression": "a::attr(href)"}}},
     "parse.items's css expression 'div.video' matches nothing on {url}: the site may have "
     "changed its pages, or sent a login or block page instead. Check the definition against "
     "the page (open it in a browser)."),
    ({"type": "css", "expression": "li", "fields": {
        "url": {"type": "css", "expression": "span::attr(href)"}}},
     "none of the 2 items parse.items finds on {url} has a url: parse.items.fields.url's css "
     "expression 'span::attr(href)' matches nothing in them. Check it against the page (open "
     "it in a browser)."),
])
def test_a_definition_that_no_longer_fits_its_page_says_so_not_found_nothing(
        runtime: Runtime, client: falcon.testing.TestClient, origin: MediaOrigin,
        items: dict, said: str) -> None:
    """Its run succeeded with 0 entries: a task whose site changed its pages looked well
    while it never queued a thing again."""
    origin.feeds.pages["videos"] = (LIST, "text/html")
    url = f"{origin.base_url}/pages/videos"
    made = client.simulate_post("/api/tasks/definitions", json={
        "name": "videos", "definition": {"match_url": [url], "parse": {"items": items}}})
    assert made.status_code == 201, made.text
    task = client.simulate_post("/api/tasks", json={"name": "videos", "url": url,
                                                    "timer": "0 3 * * *"}).json
    execution = run_now(runtime, task)
    assert execution["status"] == "failed", execution
    assert execution["error"] == "task definition 'videos': " + said.format(url=url)


@pytest.mark.parametrize(("page", "said"), [
    (LOGIN_PAGE, "the site sent a web page (HTML), not JSON: often a login, an error or a "
                 "block page. Check that the definition's url is the address of the site's "
                 "JSON, not of its page."),
    (b"  \n", "the site sent an empty answer."),
    (b"{'items': []}", "the page is not JSON: Expecting property name enclosed in double "
                       "quotes: line 1 column 2 (char 1)"),
])
def test_a_json_definition_given_a_page_says_what_the_site_sent(
        runtime: Runtime, client: falcon.testing.TestClient, origin: MediaOrigin,
        page: bytes, said: str) -> None:
    """It said "the page is not JSON: Expecting value: line 1 column 1 (char 0)" for a login
    page."""
    origin.feeds.pages["api"] = (page, "application/json")
    url = f"{origin.base_url}/pages/api"
    made = client.simulate_post("/api/tasks/definitions", json={
        "name": "api", "definition": {"match_url": [url], "response": {"type": "json"},
                                      "parse": {"items": {
            "type": "jsonpath", "expression": "$.items[*]",
            "fields": {"url": {"type": "jsonpath", "expression": "$.u"}}}}}})
    assert made.status_code == 201, made.text
    task = client.simulate_post("/api/tasks", json={"name": "api", "url": url,
                                                    "timer": "0 3 * * *"}).json
    execution = run_now(runtime, task)
    assert execution["status"] == "failed", execution
    assert execution["error"] == f"task definition 'api': {said}"
