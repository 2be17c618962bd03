"""What a person reads of a site's error status and of a connection that failed, each word of
it (round mutation18: the suite read the first words only, and let planted bugs through in
the rest: the status in brackets, the host named, the advice), and the clock's steps: the smallest
one, and a step back's words.
"""

from __future__ import annotations

import logging

import pytest

from appliance.clock_steps import STEP, ClockSteps, Step
from appliance.connection_failures import unreached
from appliance.http_statuses import said

REFUSED = ("HTTPConnection(host='h.example', port=8080): Failed to establish a new "
           "connection: [Errno 111] Connection refused")


@pytest.mark.parametrize(("status", "reason", "words"), [
    (401, "Unauthorized", "The site wants a login (HTTP 401 Unauthorized): give its cookies in "
     "a preset, or a username and password in the options (--username, --password)."),
    (403, " Forbidden ", "The site refused access (HTTP 403 Forbidden): it may need a login "
     "(cookies, in a preset), or it refuses this box's address."),
    (404, "Not Found", "The site has nothing at this address (HTTP 404 Not Found): the link is "
     "wrong, or what it led to was removed or made private. Check the link in a browser."),
    (410, "Gone", "The site says what was at this address is gone for good (HTTP 410 Gone): it "
     "was removed, and cannot be downloaded from there any more."),
    (429, "Too Many Requests", "The site is limiting requests from this box (HTTP 429 Too Many "
     "Requests): try again later, with fewer downloads from it at once "
     "(YTP_MAX_WORKERS_PER_EXTRACTOR)."),
    (500, "Internal Server Error", "The site failed with an error of its own (HTTP 500 Internal "
     "Server Error): try again later."),
    (503, "", "The site failed with an error of its own (HTTP 503): try again later."),
    (418, "I'm a teapot", None),
    (499, "Client Closed Request", None),
])
def test_a_sites_status_is_said_whole(status: int, reason: str, words: str | None) -> None:
    assert said(status, reason) == words


@pytest.mark.parametrize(("text", "words"), [
    (REFUSED, "Connection refused by h.example:8080: nothing answers there (the site is down, "
     "or the address or its port is wrong). Try again once it is up."),
    ("[Errno 111] Connection refused", "Connection refused: nothing answers there (the site is "
     "down, or the address or its port is wrong). Try again once it is up."),
    ("Failed to resolve 'nowhere.example' ([Errno -2] Name or service not known)",
     "The name nowhere.example could not be found (DNS): check the address for a typo, and "
     "that this box reaches its name server."),
    ("[Errno -3] Temporary failure in name resolution", "The site's name could not be found "
     "(DNS): check the address for a typo, and that this box reaches its name server."),
    ("[Errno -2] Name or service not known", "The site's name could not be found (DNS): check "
     "the address for a typo, and that this box reaches its name server."),
    ("HTTPSConnectionPool(host='h.example', port=443): Max retries exceeded (Caused by "
     "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
     "verify failed: certificate has expired')))", "The certificate of h.example:443 is not "
     "valid (expired, for another name, or from no authority this box trusts): its secure "
     "connection (HTTPS) cannot be trusted."),
    ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", "The site's certificate is "
     "not valid (expired, for another name, or from no authority this box trusts): its secure "
     "connection (HTTPS) cannot be trusted."),
    ("CheckedHTTPS(host='h.example', port=8443): [SSL: WRONG_VERSION_NUMBER] wrong version",
     "A secure connection (HTTPS) to h.example:8443 could not be made: the address may not "
     "serve HTTPS (try http://), or something on the way (a proxy, a firewall) breaks it."),
    ("SSLError('EOF occurred in violation of protocol')", "A secure connection (HTTPS) to the "
     "site could not be made: the address may not serve HTTPS (try http://), or something on "
     "the way (a proxy, a firewall) breaks it."),
    ("HTTPConnectionPool(host='h.example', port=80): Read timed out. (read timeout=20.0)",
     "h.example:80 did not answer in time: it is slow or down. Try again later."),
    ("Read timeout", "The site did not answer in time: it is slow or down. Try again later."),
    ("ReadTimeout()", "The site did not answer in time: it is slow or down. Try again later."),
    ("HTTP Error 404: Not Found", None),
])
def test_a_connection_that_failed_is_said_whole(text: str, words: str | None) -> None:
    assert unreached(text) == words


class _Clocks:
    def __init__(self) -> None:
        self.wall, self.boot = 1_700_000_000.0, 100.0


def test_a_step_back_is_said_whole(caplog: pytest.LogCaptureFixture) -> None:
    clocks = _Clocks()
    steps = ClockSteps(wall=lambda: clocks.wall, boot=lambda: clocks.boot)
    clocks.wall -= 86_400
    with caplog.at_level(logging.WARNING, logger="appliance.clock_steps"):
        assert steps.step() is None
    assert caplog.messages == [
        "the clock went back 86400 s; times stamped before stay as they are (a file's time "
        "later than it was only keeps it longer)"]


def test_a_step_of_exactly_a_minute_is_a_step_said_whole(
        caplog: pytest.LogCaptureFixture) -> None:
    clocks = _Clocks()
    steps = ClockSteps(wall=lambda: clocks.wall, boot=lambda: clocks.boot)
    clocks.wall += STEP
    with caplog.at_level(logging.WARNING, logger="appliance.clock_steps"):
        assert steps.step() == Step(1_700_000_000.0, 1_700_000_000.0, STEP)
    assert steps.started_at == 1_700_000_000.0 + STEP
    assert caplog.messages == [
        "the clock stepped forward 60 s (set from the network after the start, as on a box "
        "without a battery clock): what finished since the start is dated again"]
