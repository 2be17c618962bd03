"""Secrets that stayed in plain text when they held one of the signs the masks cut at (planted
bugs that survived the suite, round mutation18): a signature's base64 padding, a header
value's colon, a URL's password holding an ``@``, credentials a level deeper in an info.
"""

from __future__ import annotations

import pytest

from appliance.engine.credentials import masked_cli, without_credentials
from appliance.url_secrets import without_url_secrets


@pytest.mark.parametrize(("text", "shown"), [
    # base64 padding: cut at its last "=", the whole signature was the "name" and went out
    ("https://cdn.example/v.mp4?sig=c2VjcmV0==&n=1", "https://cdn.example/v.mp4?sig=********&n=1"),
    ("https://h.example/a?token=a=b", "https://h.example/a?token=********"),
    ("https://h.example/v?sig=ab?cd", "https://h.example/v?sig=********"),
    # a password with an "@" of its own, a user name with a capital X (or after a scheme,
    # another address in the query): the password is masked whole all the same
    ("https://me:p@ss@h.example/", "https://me:********@h.example/"),
    ("https://Xavier:pw@h.example/x", "https://Xavier:********@h.example/x"),
    ("https://me:pw@h.example/in?next=https://h.example/home",
     "https://me:********@h.example/in?next=https://h.example/home"),
    # what is no secret stays as a person wrote it, for whoever debugs: no password (an
    # empty one), a fragment (a time to play from), a file's path
    ("https://me:@h.example/x", "https://me:@h.example/x"),
    ("https://h.example/p?token=abc#t=30", "https://h.example/p?token=********#t=30"),
    ("file:///media/talk:me@home.mp4", "file:///media/talk:me@home.mp4"),
    # a query held in a value (a login page's way back), encoded or not: the whole value
    ("https://h.example/login?next=/watch?token=abc&lang=en",
     "https://h.example/login?next=********&lang=en"),
    ("https://h.example/login?next=%2Fwatch%3Fv%3Dx%26sig%3Dabc",
     "https://h.example/login?next=********"),
    ("https://h.example/r?u=https://cdn.example/x?v=1&n=2", "https://h.example/r?u=https://cdn.example/x?v=1&n=2"),
    ("https://h.example/r?n=YWJj==", "https://h.example/r?n=YWJj=="),
])
def test_a_secret_holding_the_signs_it_is_cut_at_is_masked_whole(text: str, shown: str) -> None:
    assert without_url_secrets(text) == shown


@pytest.mark.parametrize(("cli", "shown"), [
    # a cookie's or a token's value with a colon in it: cut at its last colon, the header's
    # name was "Cookie: session=a", no credential's, and the cookie went out whole
    ("--add-header 'Cookie: session=a:b'", "--add-header 'Cookie:********'"),
    ("'--add-headers=Authorization:Basic me:pw'", "'--add-headers=Authorization:********'"),
    # the shortest name yt-dlp takes for --twofactor (four signs)
    ("--tw 123456", "--tw '********'"),
    # what no header option takes is no header, whatever it reads like: shown as it is
    ("--print 'Cookie: %(id)s'", "--print 'Cookie: %(id)s'"),
])
def test_a_header_or_second_factor_is_masked_in_what_leaves_the_box(cli: str,
                                                                    shown: str) -> None:
    assert masked_cli(cli) == shown


def test_a_urls_user_and_password_leave_its_domain_even_with_an_at_sign_in_the_password(
        ) -> None:
    info = {"webpage_url_domain": "me:p@ss@example.com"}
    assert without_credentials(info) == {"webpage_url_domain": "example.com"}


def test_credentials_a_level_down_in_a_dict_of_the_info_are_taken_too() -> None:
    """yt-dlp's ``requested_subtitles`` is a dict of languages, each a dict with the headers
    and cookies its fetch sends."""
    info = {"requested_subtitles": {"en": {
        "url": "https://h.example/en.vtt", "cookies": "session=s3cret",
        "http_headers": {"Cookie": "session=s3cret", "Accept": "*/*"}}}}
    assert without_credentials(info) == {"requested_subtitles": {"en": {
        "url": "https://h.example/en.vtt", "http_headers": {"Accept": "*/*"}}}}
