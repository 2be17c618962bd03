"""What of a link may be shown: a link's user and password ("https://me:secret@feeds.example/…")
and its query (a private feed's "?passkey=…", a signed media URL) are secrets. Diagnostics,
sent to whoever asks for help, keep scheme, host and path; entities' attributes, which Home
Assistant's recorder keeps, keep the query's other parameters too (which playlist, which
video)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# A scheme is looked for only where a run of scheme characters starts, and taken whole
# (possessive): tried at every character of a word, the pattern scanned the rest of it each
# time, the square of its length (a service's text of megabytes froze Home Assistant's loop
# in diagnostics). The run before "://" stays as it is, so "1https://" keeps its "1".
URL_SECRETS = re.compile(r"(?<![\w+.-])(?P<scheme>[\w+.-]++://)(?:[^/@\s?#]*+@)?"
                         r"(?P<rest>[^\s?#]*+)(?:[?#]\S*+)?")


def without_url_secrets(value: Any) -> Any:
    """``value`` with every link in its text (in its lists and dicts too) cut to scheme, host
    and path."""
    if isinstance(value, str):
        return URL_SECRETS.sub(r"\g<scheme>\g<rest>", value)
    if isinstance(value, dict):
        return {key: without_url_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_url_secrets(item) for item in value]
    return value


# A query parameter whose name says it holds a secret ("passkey", "api_key", "token", "sig").
SECRET_PARAMETER = re.compile(r"key|token|auth|pass|secret|sig|session|cred", re.IGNORECASE)


def shown_url(url: Any) -> Any:
    """A link as an entity shows it: without its user and password, and the values of the
    query's secret-looking parameters ``***`` (a playlist's ``?list=`` stays: it says which)."""
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        query = [(name, "***" if SECRET_PARAMETER.search(name) else value)
                 for name, value in parse_qsl(parts.query, keep_blank_values=True)]
        host = parts.netloc.rpartition("@")[2]
    except ValueError:  # not a link at all ("http://[::1"): nothing of it is shown
        return ""
    return urlunsplit((parts.scheme, host, parts.path, urlencode(query, safe="*"), ""))


def shown_text(value: Any) -> Any:
    """A text with each link in it as :func:`shown_url` shows one (a download's title before
    the site names it is its link; yt-dlp's errors quote it)."""
    if not isinstance(value, str):
        return value
    return URL_SECRETS.sub(_shown_link, value)


def _shown_link(link: re.Match[str]) -> str:
    """A link found in a text, shown; the punctuation after it ("…/v?x=1: 404") stays."""
    text = link.group(0)
    bare = text.rstrip(".,:;!?)]}'\"")
    return shown_url(bare) + text[len(bare):]
