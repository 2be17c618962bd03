"""A person's secrets for a site, kept off every command line a download starts.

A program's command line is no secret on Linux: every user of the box reads it in
``/proc/PID/cmdline`` (``ps``). yt-dlp hands some streams to ffmpeg (HLS and DASH when a site's
extractor or ``--hls-prefer-ffmpeg`` asks for it, a live stream, ``--download-sections``) and
names the request's cookies and headers on its command line: ``-cookies "session=…"``,
``-headers "Authorization: Bearer …"``, and the URL with its ``?token=``. So a download that
carries the person's secrets -- cookies (an item's or a preset's), a header that names a
credential (``--add-header``), a login (``--username``/``--password``, ``--netrc``), a URL
with a password or a token -- gets yt-dlp's own downloaders for every protocol, which keep
them in the process, and ffmpeg sees only the files it fixes up or merges. What only ffmpeg
can download (a live HLS stream, a section) is refused rather than started with them
(``refusal``, asked by the download process's audit hook, ``containment``).

A download that carries none keeps yt-dlp's choice: the cookies a site sets for an
anonymous visitor are its own, not the person's.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

from yt_dlp.cookies import YoutubeDLCookieJar

from ..url_secrets import SECRET_NAME, token_like
from .credentials import CREDENTIAL_HEADERS

# yt-dlp's params whose values are a login's secrets, and those that log in without one here.
PASSWORDS = ("password", "videopassword", "ap_password", "twofactor")
LOGINS = ("usenetrc",)
# Every protocol to yt-dlp's own downloader (``--downloader native``): what the option policy
# refuses a request to choose, the service chooses.
NATIVE = {"default": "native"}
# ffmpeg's option that takes the cookies it sends (the site's own too, once a person's are
# in the jar), and those whose values go to the network with them: the headers, and each
# address (``-i https://…``). Only these are looked at: a file's name or a title given to
# ffmpeg (``file:…``, ``-metadata title=…``) is the site's text, and a person's short cookie
# ("true", "1234") is found in one by chance.
COOKIES_OPTION = "-cookies"
SENT_OPTIONS = frozenset({COOKIES_OPTION, "-headers"})
ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A value this short is found in an address by chance (a cookie "true" in "?live=true");
# ``-cookies`` is refused whatever its value, and an address with a password whatever its
# length.
SHORTEST = 8


@dataclass(frozen=True)
class Secrets:
    """What of a download's request is the person's secret: ``carried`` when there is any,
    ``values`` the texts that must not be on a command line."""

    carried: bool = False
    values: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.carried

    def refusal(self, program: str, argv: Iterable[Any]) -> str | None:
        """Why ``program`` may not start with ``argv``; None when it names none of these
        secrets."""
        if not self.carried:
            return None
        args = [os.fsdecode(arg) for arg in argv]
        sent = [arg for before, arg in zip(["", *args], args, strict=False)
                if before in SENT_OPTIONS or ADDRESS.match(arg)]
        if COOKIES_OPTION not in args and not any(
                value in arg for arg in sent for value in self.values) and not any(
                _password(arg) for arg in sent if ADDRESS.match(arg)):
            return None
        return (f"Refused to start {program} with the item's cookies or credentials on its "
                f"command line, where every user of this box could read them: yt-dlp "
                f"downloads this stream only through {program} (a live stream, or "
                f"--download-sections). Download it without cookies or credentials, or once "
                f"it is no longer live.")


NONE = Secrets()


def of_job(url: str, params: dict[str, Any]) -> Secrets:
    """The secrets a download of ``url`` with yt-dlp's ``params`` (parsed, before a
    YoutubeDL adds its own headers) carries."""
    values = [*_cookies(params.get("cookiefile")), *_headers(params.get("http_headers")),
              *(str(params[name]) for name in PASSWORDS if params.get(name)), *_in_url(url)]
    carried = bool(values or params.get("cookiefile") or any(
        params.get(name) for name in LOGINS))
    return Secrets(carried, frozenset(value for value in values if len(value) >= SHORTEST))


def native_downloads(params: dict[str, Any], secrets: Secrets) -> dict[str, Any]:
    """``params`` with yt-dlp's own downloaders when the download carries ``secrets``."""
    return {**params, "external_downloader": NATIVE} if secrets else params


def _cookies(path: Any) -> list[str]:
    if not path:
        return []
    jar = YoutubeDLCookieJar(str(path))
    # a file yt-dlp cannot read fails the job in yt-dlp, which says why
    with contextlib.suppress(OSError, http.cookiejar.LoadError, ValueError):
        jar.load(ignore_discard=True, ignore_expires=True)
    return [cookie.value for cookie in jar if cookie.value]


def _headers(headers: Any) -> list[str]:
    return [str(value).strip() for name, value in dict(headers or {}).items()
            if str(name).lower() in CREDENTIAL_HEADERS or SECRET_NAME.search(str(name))]


def _password(address: str) -> bool:
    with contextlib.suppress(ValueError):
        return bool(urlsplit(address).password)
    return True  # an address Python cannot read: ffmpeg may read a password in it


def _in_url(url: str) -> list[str]:
    """A password before the host, a token-like user, the query's secret values (as
    ``url_secrets`` masks them), as written and unquoted."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return []
    found = [password] if password else []
    if user and not password and token_like(unquote(user)):
        found.append(user)
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and SECRET_NAME.search(unquote_plus(name)):
            found.append(value)
    return [form for value in found for form in {value, unquote_plus(value)}]
