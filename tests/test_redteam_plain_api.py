"""Red team (plain17): what the API answers a client that sent a wrong value, and what the
update check says when the package index cannot be read: the field and why, the failure in
words. "url param is required." answered a url that was given, as a number; the update check
said "[Errno -2] Name or service not known", "[Errno 111] Connection refused" and, for an
answer without info.version, "'version'" (a KeyError's text)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import falcon.testing
import pytest
from support.site import pages_handler, serving

from appliance.runtime import Runtime


def test_a_url_that_is_no_string_is_said_so_not_said_missing(
        client: falcon.testing.TestClient) -> None:
    refused = client.simulate_post("/api/history", json={"url": 5})
    assert refused.status_code == 400
    assert refused.json["error"] == "url must be a string (the link)."
    # the contract's words for a url not given at all stay
    missing = client.simulate_post("/api/history", json={"preset": "default"})
    assert missing.json["error"] == "url param is required."


def _closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


@pytest.mark.parametrize(("where", "said"), [
    ("http://127.0.0.1:{port}/pypi/appliance/json",
     "Cannot reach {url}: Connection refused: nothing answers there (the site is down, or the "
     "address or its port is wrong). Try again once it is up."),
    ("http://nothing.invalid/pypi/appliance/json",
     "Cannot reach {url}: The site's name could not be found (DNS): check the address for a "
     "typo, and that this box reaches its name server."),
    ("{site}/missing",
     "Cannot read {url}: The site has nothing at this address (HTTP 404 Not Found): the link "
     "is wrong, or what it led to was removed or made private. Check the link in a browser."),
    ("{site}/page",
     "Unexpected answer from {url}: the answer is not JSON (YTP_UPDATE_CHECK_URL must be a "
     "package index's JSON address, …/pypi/appliance/json)."),
    ("{site}/other", "Unexpected answer from {url}: the answer has no info.version."),
])
def test_an_update_check_that_fails_says_why_in_words(
        app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]], where: str,
        said: str) -> None:
    pages = {"/page": b"<html><body>Sign in</body></html>", "/other": b'{"releases": {}}'}
    with serving(pages_handler(pages, "application/json")) as site:
        url = where.format(port=_closed_port(), site=site)
        _, client = app_with(YTP_CHECK_FOR_UPDATES="true", YTP_UPDATE_CHECK_URL=url)
        result = client.simulate_post("/api/system/check-updates").json
    assert result["status"] == "error"
    assert result["error"] == said.format(url=url)


def test_an_item_edit_that_changes_nothing_or_the_wrong_thing_says_what_can_change(
        client: falcon.testing.TestClient) -> None:
    """It said "The request body is empty." for {}, and "title must be a str." (Python's)."""
    [item] = client.simulate_post("/api/history", json={
        "url": "http://127.0.0.1:9/clip.mp4", "auto_start": False}).json
    can = ("These can: title, extras (any item); preset, folder, template, cli, cookies (an "
           "item that waits).")
    for body, said in (({}, f"No field to change was given. {can}"),
                       ({"url": "x"}, f"These fields cannot be changed: url. {can}"),
                       ({"title": 5}, "title must be a string.")):
        refused = client.simulate_post(f"/api/history/{item['id']}", json=body)
        assert (refused.status_code, refused.json["error"]) == (400, said), body
