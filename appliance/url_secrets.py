"""A URL's secrets, masked wherever a text names it on its way to others than its owner.

An item's URL may carry its owner's credentials: a password before the host
(``https://me:pw@host/``), a key as the user (``https://<api key>@host/``), a token in the
query (``?token=…``, ``&sig=…``). The item gives it back whole to its owner (a retry needs
it), but the log lines that name it go to the journal and the log file (handed to whoever
helps debug), ``/api/logs``, websocket clients and the chat targets that follow the log, and
a notification carries the item's texts (its title is its URL until the site names it, an
error may quote it). What a person needs to debug stays: the scheme, the host, the path,
the query's names and its other values.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, unquote_plus

MASK = "********"

# The names of the query's values (and of a webhook's headers) that hold a secret; a
# ticket is this service's own (/api/download/…?ticket=, a file's for hours).
SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|auth|sig|session|cred|jwt|hash|code|bearer|ticket",
    re.IGNORECASE)
# An address in a text: up to a space; signs that end a sentence, close a bracket or a quote
# after it are the text's, not the address's (a password may hold them). A scheme is looked
# for only where a run of its signs starts, and taken whole: tried inside a run ("a.a.a…"),
# each try scanned the rest of it, the square of its length (a record of megabytes held
# every logging thread).
_ADDRESS = re.compile(r"(?<![\w+.-])[\w+.-]++://[^\s<>]+")
_TEXTS_SIGNS = ".,;:!)]}'\""
# The names of the pairs of a query held in a value (after its "?", or between its "&").
_NESTED_NAME = re.compile(r"(?:^|[?&;])([^=?&;]+)=[^&;]")


def token_like(segment: str) -> bool:
    """A random-looking value: long, with letters and digits (an API key, a webhook's id)."""
    return len(segment) >= 16 and any(c.isalpha() for c in segment) \
        and any(c.isdigit() for c in segment)


def _userinfo(userinfo: str) -> str:
    name, colon, password = userinfo.partition(":")
    if colon:
        return f"{name}:{MASK}" if password else userinfo
    # a token-like user name without a password is the credential itself
    return MASK if token_like(unquote(name)) else userinfo


def _pair(pair: str) -> str:
    key, _, value = pair.partition("=")
    if value and (SECRET_NAME.search(unquote_plus(key)) or _nests_a_secret(value)):
        return f"{key}={MASK}"
    return pair


def _nests_a_secret(value: str) -> bool:
    """Whether a query's value holds a query of its own that names a secret: a login page's
    ``?next=/watch?token=…``, encoded (``%3Ftoken%3D…``) or not. The whole value is masked: it
    is one value to the page that reads it."""
    nested = unquote_plus(value)
    return "=" in nested and any(SECRET_NAME.search(name)
                                 for name in _NESTED_NAME.findall(nested))


def _address(found: re.Match[str]) -> str:
    text = found[0]
    end = len(text.rstrip(_TEXTS_SIGNS))
    address, after = text[:end], text[end:]
    scheme, _, rest = address.partition("://")
    cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, rest = rest[:cut], rest[cut:]
    userinfo, at, host = authority.rpartition("@")
    if at:
        authority = f"{_userinfo(userinfo)}@{host}"
    rest, hash_, fragment = rest.partition("#")
    path, question, query = rest.partition("?")
    if question:
        query = "&".join(map(_pair, query.split("&")))
    return f"{scheme}://{authority}{path}{question}{query}{hash_}{fragment}{after}"


def without_url_secrets(text: str) -> str:
    """``text`` with the secrets of each URL it names as ``********``: a password, a
    token-like user name, the values of the query's secret names (``token``, ``sig``,
    ``api_key``, …). Anything else as it is."""
    return _ADDRESS.sub(_address, text) if "://" in text else text


def with_urls_masked(value: Any) -> Any:
    """``value`` (JSON values: an info yt-dlp writes beside the media) with
    :func:`without_url_secrets` on every text in it."""
    if isinstance(value, str):
        return without_url_secrets(value)
    if isinstance(value, list):
        return [with_urls_masked(item) for item in value]
    if isinstance(value, dict):
        return {key: with_urls_masked(item) for key, item in value.items()}
    return value
