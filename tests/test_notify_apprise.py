"""Chat targets through real Apprise: what a failure says and whether it is worth a retry, and
the thumbnail attached where the service takes attachments (and left out, not the message,
when it cannot be fetched).

Apprise's ``json://`` service posts to a real receiver on 127.0.0.1 in this process.
"""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from support.site import serving
from support.webhooks import PICTURE, Receiver

from appliance.files.fetch import any_address
from appliance.notify.messages import Message
from appliance.notify.senders import Outcome, send_apprise

MESSAGE = Message("Downloaded: Clip", "Downloaded: Clip (1.0 MB)", "success")


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_answers_and_whether_each_is_worth_a_retry(receiver: Receiver) -> None:
    def outcome(path: str, timeout: float = 5) -> Outcome:
        return send_apprise(receiver.url(path, scheme="json"), MESSAGE, timeout)

    assert outcome("/ok") == Outcome(True)
    [sent] = receiver.to("/ok")
    assert {k: sent.json()[k] for k in ("title", "message", "type")} == {
        "title": "Downloaded: Clip", "message": "Downloaded: Clip (1.0 MB)", "type": "success"}
    failed = outcome("/fail")
    assert (failed.ok, failed.status, failed.transient) == (False, 500, True)
    assert failed.error.startswith("Failed to send JSON POST notification: ")
    refused = outcome("/bad")
    assert (refused.ok, refused.status, refused.transient) == (False, 400, False)
    assert "error=400" in refused.error
    busy = outcome("/status/429")
    assert (busy.status, busy.transient) == (429, True)
    assert outcome("/hang", timeout=1) == Outcome(False, None, "No answer within 1 s.",
                                                  transient=True)
    assert send_apprise("nosuchservice://x", MESSAGE, 5) == Outcome(
        False, None, "Apprise cannot load this URL.")


def test_no_connection_is_worth_a_retry_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apprise says why only at DEBUG: its words are heard for the outcome, and its DEBUG lines
    (a message's payload among them) stay out of the service's log as before (its handlers
    take every level: the root logger's decides)."""
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    monkeypatch.setattr(logging.getLogger(), "level", logging.INFO)
    with socket.socket() as closed:  # bound, never listening: refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        outcome = send_apprise(f"json://127.0.0.1:{port}/x", MESSAGE, 5)
    assert (outcome.ok, outcome.status, outcome.transient) == (False, None, True)
    assert outcome.error == (f"Connection refused by 127.0.0.1:{port}: nothing answers there (the "
                             "site is down, or the address or its port is wrong). Try again once "
                             "it is up."), outcome.error
    apprise_lines = [(r.levelname, r.getMessage()) for r in seen if r.name.startswith("apprise")]
    assert apprise_lines and all(level != "DEBUG" for level, _ in apprise_lines), apprise_lines
    assert ("WARNING", "A Connection error occurred sending JSON notification to 127.0.0.1."
            ) in apprise_lines


def test_the_thumbnail_is_attached_or_left_out(receiver: Receiver) -> None:
    pictured = Message(MESSAGE.title, MESSAGE.body, MESSAGE.type, receiver.url("/thumb.png"))
    # (the picture is on this machine: fetched as with YTP_FETCH_PRIVATE_ADDRESSES)
    assert send_apprise(receiver.url("/with", scheme="json"), pictured, 5,
                        any_address) == Outcome(True)
    [sent] = receiver.to("/with")
    [attachment] = sent.json()["attachments"]
    assert base64.b64decode(attachment["base64"]) == PICTURE
    assert (attachment["filename"], attachment["mimetype"]) == ("thumbnail.png", "image/png")

    # A picture that cannot be fetched: the message goes without it, once.
    lost = Message(MESSAGE.title, MESSAGE.body, MESSAGE.type, receiver.url("/gone.png"))
    assert send_apprise(receiver.url("/without", scheme="json"), lost, 5,
                        any_address) == Outcome(True)
    [sent] = receiver.to("/without")
    assert sent.json()["title"] == MESSAGE.title
    assert not sent.json().get("attachments")
    # A failure that is not the picture's is not sent again without it.
    assert not send_apprise(receiver.url("/fail", scheme="json"), pictured, 5, any_address).ok
    assert len(receiver.to("/fail")) == 1


def test_a_service_that_refuses_the_picture_gets_the_message_without_it(
        receiver: Receiver) -> None:
    """Mattermost's bot mode uploads the picture first (``/api/v4/files``); refused, Apprise
    sends nothing and says the attachment failed: the message goes again, without it."""
    receiver.answers["/api/v4/files"] = 413
    pictured = Message(MESSAGE.title, MESSAGE.body, MESSAGE.type, receiver.url("/thumb.png"))
    url = receiver.url("/token?mode=bot&to=channel", scheme="mmost")
    assert send_apprise(url, pictured, 5, any_address) == Outcome(True)
    assert len(receiver.to("/api/v4/files")) == 1
    [sent] = receiver.to("/api/v4/posts")
    assert sent.json() == {"channel_id": "channel", "message": f"{MESSAGE.title}\r\n{MESSAGE.body}"}


def test_a_sites_markup_reaches_a_service_as_text(receiver: Receiver) -> None:
    """The message is plain text, and Apprise is told so: a service that reads HTML (Telegram,
    e-mail) or Markdown gets a title's ``<``, ``&`` and ``*`` escaped, not as markup (Telegram
    refused such a message whole; an e-mail showed the site's HTML)."""
    hostile = Message("Downloaded: <b>Tom & Jerry</b> *live*",
                      'Downloaded: <img src="http://tracker.example/p.gif"> <3 *live*', "success")
    assert send_apprise(receiver.url("/html", scheme="json") + "?format=html", hostile,
                        5) == Outcome(True)
    [sent] = receiver.to("/html")
    assert "<img" not in sent.json()["message"] and "<b>" not in sent.json()["message"]
    assert "&lt;img" in sent.json()["message"]
    assert send_apprise(receiver.url("/md", scheme="json") + "?format=markdown", hostile,
                        5) == Outcome(True)
    [sent] = receiver.to("/md")
    assert "\\*live\\*" in sent.json()["message"]


def test_a_message_too_long_for_a_service_is_cut_to_its_limits(receiver: Receiver) -> None:
    """A site's 100,000-character title: Apprise handed it on whole by default, and a service
    with a limit (Discord's 2,000 characters) refused the message, which was then lost. It is
    cut to the service's limits (json://: a 250-character title, 32,768 in all), unless the
    URL asks otherwise (``overflow=``)."""
    long = Message("Downloaded: " + "T" * 100_000, "Downloaded: " + "B" * 100_000, "success")
    assert send_apprise(receiver.url("/cut", scheme="json"), long, 5) == Outcome(True)
    [sent] = receiver.to("/cut")
    assert len(sent.json()["title"]) <= 250
    assert 0 < len(sent.json()["message"]) <= 32_768
    assert send_apprise(receiver.url("/whole", scheme="json") + "?overflow=upstream", long,
                        5) == Outcome(True)
    [sent] = receiver.to("/whole")
    assert len(sent.json()["message"]) == len(long.body)


@pytest.mark.parametrize("url", [
    # a template: Apprise reads the file (or fetches the URL, a LAN device's answer) and
    # sends what it holds to the target's chat
    "discord://123456/abcdefTOKEN?template={file}",
    "tgram://123456789:abcdefg_hijklmnop/12315544/?template=http://192.168.1.5/admin.json",
    # this machine's syslog (the service's own journal)
    "syslog://",
])
def test_an_apprise_url_that_acts_on_this_machine_is_not_sent(url: str, tmp_path: Any) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"content": "the service\'s own file"}')
    outcome = send_apprise(url.format(file=secret), MESSAGE, 5)
    assert (outcome.ok, outcome.transient) == (False, False)
    assert outcome.error.startswith("Cannot send: "), outcome.error
    assert "set such a target in apprise.yml" in outcome.error


def test_what_a_service_answers_is_said_without_the_urls_secrets() -> None:
    """ntfy's refusal quotes the server's words, and a server may quote the password it was
    sent: the error (last_error, which any client reads, and the log) shows it masked."""

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"error": "wrong password Sesame-4f7Kq9Zr2x for user"}'
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Echo) as url:
        outcome = send_apprise(f"ntfy://user:Sesame-4f7Kq9Zr2x@{url.split('//')[1]}/topic",
                               MESSAGE, 5)
    assert (outcome.ok, outcome.status) == (False, 401)
    assert "wrong password ****" in outcome.error, outcome.error
    assert "Sesame" not in outcome.error

