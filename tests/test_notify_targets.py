"""A target as it is checked when saved and masked when read back (the rules docs/API.md gives
for ``request.url``, headers and masking), table by table."""

from __future__ import annotations

from typing import Any

import pytest

from appliance import errors
from appliance.notify.targets import MAX_URL, build, check_url, mask_header, mask_url


@pytest.mark.parametrize(("url", "stored"), [
    (" http://h.example/x ", "http://h.example/x"),
    ("HTTPS://h.example/x", "HTTPS://h.example/x"),
    ("http://h.example./x", "http://h.example./x"),  # the root's dot
    ("http://a_b.lan/", "http://a_b.lan/"),  # container names
    ("http://[::1]:8080/", "http://[::1]:8080/"),
    ("http://" + "a" * 63 + ".example/", "http://" + "a" * 63 + ".example/"),
    ("http://h/" + "p" * (MAX_URL - 9), "http://h/" + "p" * (MAX_URL - 9)),
    ("ntfys://my-topic", "ntfys://my-topic"),
    ("rsyslog://192.168.1.2", "rsyslog://192.168.1.2"),  # a LAN's syslog server
    ("discord://123456/abcdefTOKEN?avatar_url=https://h.example/a.png",  # Discord fetches it
     "discord://123456/abcdefTOKEN?avatar_url=https://h.example/a.png"),
])
def test_urls_saved(url: str, stored: str) -> None:
    assert check_url(url) == stored


@pytest.mark.parametrize(("url", "error"), [
    (None, "request.url is required."),
    ("  ", "request.url is required."),
    ("http://h/" + "p" * (MAX_URL - 8), f"request.url is longer than {MAX_URL} characters."),
    ("http://h/a\tb", "request.url must not contain spaces or control characters."),
    ("json://h/x\x00", "request.url must not contain spaces or control characters."),
    ("http://h/a\x9bb", "request.url must not contain spaces or control characters."),
    ("http://h:99999/", "request.url is not a valid URL: Port out of range 0-65535."),
    ("http://-a.example/", "request.url has an invalid host '-a.example'"),
    ("http://" + ("a" * 60 + ".") * 5 + "example/", "request.url has an invalid host"),
    ("http://[::1/", "request.url is not a valid URL: "),
    ("h.example/hook", "request.url must be an http(s):// webhook or an Apprise URL"),
    # Apprise's own reason, as docs/API.md shows it.
    ("tgram://abc", "request.url is not a valid Apprise URL: Unparseable Telegram URL "
                    "tgram://abc"),
    ("nosuchservice://abc", "request.url is not a valid Apprise URL: Unparseable URL "
                            "nosuchservice://abc"),
    ("discord://x", "request.url is not a valid Apprise URL: An invalid Discord Webhook Token"),
    # What would have Apprise read this machine's files or the LAN and send what they hold,
    # or act on this machine: apprise.yml's alone (its owner writes it on the box).
    ("discord://123456/abcdefTOKEN?template=http://192.168.1.5/admin.json",
     "request.url is refused: its template= has Apprise read a file or fetch a URL from this "
     "machine and send what it holds. Such a target belongs in apprise.yml"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ?template=/etc/hostname",
     "request.url is refused: its template= "),
    ("syslog://", "request.url is refused: syslog:// acts on this machine, not a chat service."),
])
def test_urls_refused(url: Any, error: str) -> None:
    with pytest.raises(errors.AppError) as refused:
        check_url(url)
    assert refused.value.message.startswith(error), refused.value.message


def test_what_is_stored_from_a_body() -> None:
    stored = build({"name": "  phone ", "on": ["item_error", "item_added", "item_error"],
                    "presets": None, "request": {"url": "http://h/x", "type": "Json",
                                                 "method": "put", "data_key": " event ",
                                                 "headers": None}})
    assert stored == {"name": "phone", "on": ["item_error", "item_added"], "presets": [],
                      "enabled": True, "request": {
                          "type": "json", "method": "PUT", "url": "http://h/x",
                          "data_key": "event", "headers": []}}
    assert build({"name": "a", "request": {"url": "http://h/", "data_key": None}})[
        "request"]["data_key"] == "data"
    with pytest.raises(errors.AppError, match="name must be a non-empty string of at most 255"):
        build({"name": "n" * 256, "request": {"url": "http://h/"}})
    with pytest.raises(errors.AppError, match=r"Unknown field\(s\) in request: body\."):
        build({"name": "a", "request": {"url": "http://h/", "body": "x"}})
    # What GET shows may be sent back as it is: the read-only fields are ignored.
    assert build({"name": "a", "id": 4, "last_status": "ok", "waiting": 3,
                  "request": {"url": "http://h/"}})["name"] == "a"


@pytest.mark.parametrize(("url", "shown"), [
    ("http://u:pw@h/x?token=abc&Room=general&key=", "http://u:****@h/x?token=****&Room=general"
                                                    "&key="),
    ("http://h/hook/AAbb11ddEEff22hh?id=ABCDEFGH12345678", "http://h/hook/****?id=****"),
    ("http://h/hook/short1?page=2", "http://h/hook/short1?page=2"),
    # A token as the user name, without a password, is the credential.
    ("https://sk1live2abcdefgh345@api.h/v1", "https://****@api.h/v1"),
    ("https://me@h/x", "https://me@h/x"),
    ("https://AC1234567890abcdef:pw@h/x", "https://AC1234567890abcdef:****@h/x"),
    ("https://[::1]:8443/p/ABCDEFGH12345678", "https://[::1]:8443/p/****"),
    # Apprise's privacy form, with only the query parameters the user wrote.
    ("tgram://123456789:AAbbCCddEEffGGhh/12345?format=markdown",
     "tgram://1...h/12345/?format=markdown"),
    ("mailto://user:secretpw@example.com?to=a@b.c", "mailto://user:****@example.com/"),
    ("json://u:pw12@127.0.0.1:8/x", "json://u:****@127.0.0.1:8/x"),
    ("", ""),
])
def test_urls_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("Authorization", "Bearer tok-1", "Bearer ****"),
    # (all after the scheme is the secret, spaces and all)
    ("Authorization", 'Digest username="a", response="6629fae4"', "Digest ****"),
    ("proxy-authorization", "Basic abc", "Basic ****"),
    ("Authorization", "tok-1", "****"),  # no scheme: all of it is the secret
    ("Authorization", "Bearer ", "****"),
    ("Cookie", "session=abc", "****"),
    ("Accept", "application/json", "application/json"),
    ("USER-AGENT", "mine", "mine"),
    ("X-Api-Key", "", ""),
])
def test_headers_masked(key: str, value: str, shown: str) -> None:
    assert mask_header(key, value) == shown


@pytest.mark.parametrize(("fields", "error"), [
    ({"name": "a\x00b"}, "name must not contain control characters."),
    ({"name": "\x1b[2Jphone"}, "name must not contain control characters."),
    ({"presets": [str(n) for n in range(1001)]},
     "presets must be an array of at most 1000 names of 1 to 255 characters (empty: all)."),
    ({"presets": ["p" * 256]}, "presets must be an array of at most 1000 names"),
    ({"presets": [""]}, "presets must be an array of at most 1000 names"),
    ({"on": "item_added"}, "on must be an array of at most 1000 names"),
    ({"color": "red", "sound": "ding"}, "Unknown field(s): color, sound."),
    ({"request": {"url": "ntfys://t", "headers": {"X-Key": "v"}}},
     "request.headers must be an array of {key, value} objects."),
    ({"request": {"url": "ntfys://t", "headers": [["X-Key", "v"]]}},
     "request.headers must be an array of {key, value} objects."),
    ({"request": {"url": "ntfys://t", "headers": [{"key": "X", "value": "v", "x": 1}]}},
     "request.headers must be an array of {key, value} objects."),
])
def test_bodies_refused(fields: dict[str, Any], error: str) -> None:
    body = {"name": "phone", "request": {"url": "ntfys://my-topic"}, **fields}
    with pytest.raises(errors.AppError) as refused:
        build(body)
    assert refused.value.message.startswith(error), refused.value.message


def test_the_longest_lists_and_names_are_taken() -> None:
    names = [str(n) for n in range(999)] + ["p" * 255]
    built = build({"name": "phone", "presets": names, "request": {"url": "ntfys://my-topic"}})
    assert built["presets"] == names
