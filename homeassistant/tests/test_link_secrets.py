"""What of a link Home Assistant keeps: the recorder keeps every entity's attributes and every
event, so a link's user and password and its secret-looking query parameters stay out; which
playlist or video it is stays in."""

from __future__ import annotations

import pytest

from custom_components.appliance.redaction import shown_text, shown_url


@pytest.mark.parametrize(("url", "shown"), [
    ("https://me:pw@feeds.example/f.rss?passkey=k&list=PL1",
     "https://feeds.example/f.rss?passkey=***&list=PL1"),
    ("https://www.youtube.com/playlist?list=PLx", "https://www.youtube.com/playlist?list=PLx"),
    ("https://cdn.example/v.mp4?X-Amz-Signature=s&Expires=1#t=3",
     "https://cdn.example/v.mp4?X-Amz-Signature=***&Expires=1"),
    ("https://u@h.example/?api_key=a&Token=b&SESSION=c",
     "https://h.example/?api_key=***&Token=***&SESSION=***"),
    ("http://[::1", ""),
    (None, None),
])
def test_a_link_an_entity_shows_holds_no_secret(url: str | None, shown: str | None) -> None:
    """A private feed's password or passkey, a signed link's signature: the recorder keeps
    every attribute. Which playlist or video it is stays."""
    assert shown_url(url) == shown


@pytest.mark.parametrize(("text", "shown"), [
    ("ERROR: [generic] Unable to download https://me:pw@h.example/v?token=t&v=1: 404",
     "ERROR: [generic] Unable to download https://h.example/v?token=***&v=1: 404"),
    ("a http://u:p@a.example/ and b https://b.example/x?sig=s#t", "a http://a.example/ and b "
     "https://b.example/x?sig=***"),
    ("(see https://h.example/?passkey=k).", "(see https://h.example/?passkey=***)."),
    ("no link, user:pass@host", "no link, user:pass@host"),
    (7, 7),
])
def test_a_text_an_event_holds_shows_its_links_without_secrets(text: object,
                                                                shown: object) -> None:
    assert shown_text(text) == shown

