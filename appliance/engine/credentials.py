"""A person's credentials for a site, kept out of what yt-dlp's info is written to.

yt-dlp puts the cookies it sends for an item in its info (``cookies``, on the item and on
each format) and every header it sends in each format's ``http_headers`` (an
``--add-header "Authorization: …"`` too). Written as they are, a preset's login cookies
landed in every ``.info.json`` of the media folder (read by the media server's group, shared
on the LAN), in a channel's metadata and in the URL info the API answers. The download
itself never needs them from there: yt-dlp computes the cookies and headers of a format
again from its cookie jar and its options when it processes an item.

The item's URL is in its info too (``webpage_url``, ``original_url``, a direct link's
format ``url``, the ``Referer`` of each format's headers, its user and password in
``webpage_url_domain``): a password before its host or a token in its query went to the
same files. What is written of an info masks them (``url_secrets.with_urls_masked``); the
URL info the API answers its owner keeps them, and a channel's pictures are fetched with
their signed URLs.
"""

from __future__ import annotations

import shlex
from typing import Any

from ..url_secrets import MASK, without_url_secrets

CREDENTIAL_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
COOKIES = "cookies"  # the field yt-dlp puts them in
DOMAIN = "webpage_url_domain"


def without_credentials(info: Any) -> Any:
    """``info`` (yt-dlp's, as JSON values) without the cookies yt-dlp added, without the
    credential headers of any ``http_headers`` and without the user and password in the
    URL's domain; the rest as it is (a copy where it changed)."""
    if isinstance(info, list):
        return [without_credentials(value) for value in info]
    if not isinstance(info, dict):
        return info
    kept: dict[Any, Any] = {}
    for key, value in info.items():
        if key == COOKIES and isinstance(value, str):
            continue
        if key == DOMAIN and isinstance(value, str):  # the URL's host, with its user info
            kept[key] = value.rpartition("@")[2]
        elif key == "http_headers" and isinstance(value, dict):
            kept[key] = {name: header for name, header in value.items()
                         if str(name).lower() not in CREDENTIAL_HEADERS}
        else:
            kept[key] = without_credentials(value)
    return kept


# yt-dlp's options whose value is a secret (long names; a stored cli parsed, so a shortened
# one is unambiguous: a prefix of one of these), their short forms, and the header options.
SECRET_OPTIONS = ("--password", "--video-password", "--ap-password", "--twofactor",
                  "--client-certificate-password")
SECRET_SHORT = ("-p", "-2")
HEADER_OPTIONS = ("--add-headers", "--add-header")


def _names(token: str, options: tuple[str, ...]) -> bool:
    return len(token) > 3 and any(option.startswith(token) for option in options)


def _masked_header(value: str) -> str:
    field, colon, _ = value.partition(":")
    return f"{field}:{MASK}" if colon and field.strip().lower() in CREDENTIAL_HEADERS \
        else value


def masked_cli(cli: str) -> str:
    """``cli`` with the values of its secret options (a site's password, a second factor, an
    ``Authorization`` or ``Cookie`` header) as ``********``: for what leaves the box (a
    webhook, a chat message), which never needs them."""
    try:
        tokens = shlex.split(cli)
    except ValueError:  # not a stored cli (those are parsed): nothing of it is told
        return MASK if cli else cli
    shown: list[str] = []
    masking = headers = False
    for token in tokens:
        name, equals, value = token.partition("=")
        if masking or headers:
            shown.append(MASK if masking else _masked_header(token))
            masking = headers = False
        elif token.startswith("--") and _names(name, SECRET_OPTIONS):
            shown.append(f"{name}={MASK}" if equals else token)
            masking = not equals
        elif token.startswith("--") and _names(name, HEADER_OPTIONS):
            shown.append(f"{name}={_masked_header(value)}" if equals else token)
            headers = not equals
        elif token[:2] in SECRET_SHORT:
            shown.append(token[:2] + (MASK if len(token) > 2 else ""))
            masking = len(token) == 2
        else:
            shown.append(token)
    return shlex.join(shown)


def shared_item(data: Any) -> Any:
    """An item (or another event's data) as it may leave the box: ``masked_cli``, and the
    secrets of every URL its texts name masked (its URL's password or token; its title is
    its URL until the site names it, an error may quote it; a task's feed); anything else
    as it is."""
    if not isinstance(data, dict):
        return data
    shared = {key: without_url_secrets(value) if isinstance(value, str) else value
              for key, value in data.items()}
    if isinstance(shared.get("cli"), str):
        shared["cli"] = masked_cli(shared["cli"])
    return shared
