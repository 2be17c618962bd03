"""The newest release of a project on a package index's simple API: PEP 691's JSON page when
the index serves one (PyPI does), else PEP 503's HTML page (every mirror; a folder served by
``python -m http.server`` is one too).

Only a release with a pure-Python wheel for the environment's Python counts (the file's
``requires-python``, PEP 503's ``data-requires-python``): pip installs it with
``--only-binary``, never from a source archive, whose build would run the index's setup code
on the box; and a release pip would not install would be offered, then fail, at every check
(yt-dlp drops a Python when it reaches its end: the box's stays on the last release for it)."""

from __future__ import annotations

import contextlib
import html.parser
import http.client
import json
import logging
import re
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

from .. import __version__
from ..config import url_shown
from .wheels import normalize

log = logging.getLogger(__name__)

MAX_PAGE = 16 * 1024 * 1024  # PyPI's yt-dlp page is ~1 MB
CHUNK = 64 * 1024
# A release number: bounded, because an index may offer "9" * 5000 (int() refuses > 4300
# digits, and no release is numbered so).
RELEASE = re.compile(r"\d{1,30}(?:\.\d{1,30}){0,30}")
JSON_PAGE = "application/vnd.pypi.simple.v1+json"
# PEP 691's content negotiation: its JSON page first, its HTML page, then PEP 503's.
ACCEPT = f"{JSON_PAGE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"


def final(version: str) -> bool:
    """A final release: yt-dlp's nightly builds (…dev0) are not offered as updates."""
    return RELEASE.fullmatch(version) is not None


def version_key(version: str) -> tuple[int, ...]:
    """The release numbers a version starts with, as integers, trailing zeros dropped
    (2026.01.05 == 2026.1.5; 2026.1.5.120000.dev0 -> 2026.1.5.120000); () for a version
    that starts with none. Never raises: installed metadata and a check's answer are
    whatever the package says."""
    found = RELEASE.match(version)
    parts = [int(p) for p in found.group().split(".")] if found else []
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def newer(candidate: str, installed: str | None) -> bool:
    """Whether the final release ``candidate`` is newer than what is installed: an
    installed nightly build of a later day is not replaced by an older final release."""
    if not final(candidate):
        return False
    if installed is None or not version_key(installed):
        return True
    return version_key(candidate) > version_key(installed)


class _Links(html.parser.HTMLParser):
    """The files a PEP 503 page links to, as (name, requires-python), yanked ones (PEP 592)
    left out."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, Any]] = []
        self._current: str | None = None
        self._requires: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            found = dict(attrs)
            self._current = None if "data-yanked" in found else ""
            self._requires = found.get("data-requires-python")

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.files.append((self._current.strip(), self._requires))
            self._current = None


def _json_files(page: str) -> list[tuple[str, Any]]:
    """The files of a PEP 691 page as (name, requires-python), yanked ones (a true
    ``yanked``) left out; an entry of another shape is none."""
    try:
        files = json.loads(page).get("files")
    except (ValueError, RecursionError, AttributeError):
        return []
    return [(entry["filename"], entry.get("requires-python")) for entry in files
            if isinstance(entry, dict) and isinstance(entry.get("filename"), str)
            and not entry.get("yanked")] if isinstance(files, list) else []


def runs_on(requires_python: Any, python: str | None) -> bool:
    """Whether a file's ``requires-python`` admits the environment's Python ``python`` (as
    pip judges it: a specifier it cannot read, or no Python known, admits)."""
    if not requires_python or python is None:
        return True
    # Here, not at the top: 1 MiB the service's worker holds only once an index says it.
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(str(requires_python)).contains(python, prereleases=True)
    except InvalidSpecifier:
        return True


def release_versions(page: str, name: str, content_type: str = "text/html",
                     python: str | None = None) -> set[str]:
    """Versions of the final releases the page offers a pure-Python wheel of (the
    ``py3-none-any`` kind, which pip installs on any box) for the Python ``python`` (its
    version, e.g. "3.11.2")."""
    if content_type.split(";")[0].strip().lower() == JSON_PAGE:
        files = _json_files(page)
    else:
        parser = _Links()
        parser.feed(page)
        files = parser.files
    project = normalize(name)
    versions: set[str] = set()
    for file, requires_python in files:
        # {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl
        parts = file.removesuffix(".whl").split("-")
        if not file.endswith(".whl") or len(parts) not in (5, 6):
            continue
        tags, abi, platform = parts[-3:]
        pure = abi == "none" and platform == "any" and any(
            tag.startswith("py3") for tag in tags.split("."))
        if pure and normalize(parts[0]) == project and final(parts[1]) \
                and runs_on(requires_python, python):
            versions.add(parts[1])
    return versions


class _Deadline:
    """Shuts the connections made through its handlers down when the time is up: the
    socket's timeout bounds one read only, and an index that trickles its headers or its page
    a byte at a time would hold an update (and the 409 of the next) for ever."""

    def __init__(self, seconds: float) -> None:
        self.expired = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> urllib.request.OpenerDirector:
        self._timer.start()
        return urllib.request.build_opener(_HTTP(self), _HTTPS(self), _NoFTP())

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once

    def connection(self, base: type[http.client.HTTPConnection]) -> Any:
        deadline = self

        class Connection(base):  # type: ignore[valid-type,misc]
            def connect(self) -> None:
                super().connect()
                with deadline._lock:
                    deadline._sockets.append(self.sock)
                    if deadline.expired.is_set():
                        self.sock.shutdown(socket.SHUT_RDWR)

        return Connection


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self.deadline.connection(http.client.HTTPConnection), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self.deadline.connection(http.client.HTTPSConnection), req,
                            context=self._context)  # type: ignore[attr-defined]


class _NoFTP(urllib.request.FTPHandler):
    """urllib follows an index's redirect to ftp://, whose server no deadline of ours bounds
    (one that trickles its greeting held the update, and the 409 of the next, for ever);
    pip does not read an index there either."""

    def ftp_open(self, req: urllib.request.Request) -> Any:
        raise urllib.error.URLError(f"{url_shown(req.full_url)} is an FTP address, which is "
                                    f"not read")


def _read(answer: Any, url: str) -> bytes | None:
    """The page, or None past MAX_PAGE or when it was cut short."""
    page = bytearray()
    while chunk := answer.read1(CHUNK):
        page += chunk
        if len(page) > MAX_PAGE:
            log.warning("package index page %s is larger than %d bytes; ignored", url_shown(url),
                        MAX_PAGE)
            return None
    if getattr(answer, "length", None):  # closed before the end its Content-Length said
        log.info("package index page %s was cut short; ignored", url_shown(url))
        return None
    return bytes(page)


def newest_version(index_url: str, name: str, timeout: float,
                   python: str | None = None) -> str | None:
    """The newest final release of ``name`` on the index for the Python ``python``; None when
    the index cannot be reached within ``timeout`` or says nothing usable (the caller reports
    "unknown", never an error)."""
    url = f"{index_url.rstrip('/')}/{normalize(name)}/"
    deadline = _Deadline(timeout)
    try:
        request = urllib.request.Request(url, headers={
            "Accept": ACCEPT, "User-Agent": f"appliance/{__version__}",
        })
        with deadline as opener, opener.open(request, timeout=timeout) as answer:
            page = _read(answer, url)
            content_type = answer.headers.get("Content-Type") or "text/html"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        # URLError, HTTPError, timeouts, a setting that is no URL ("pypi.org/simple"), an
        # answer that breaks HTTP
        log.info("package index %s not reachable: %s", url_shown(url), exc)
        return None
    if deadline.expired.is_set():
        log.warning("package index %s did not answer within %g s; ignored", url_shown(url),
                    timeout)
        return None
    if page is None:
        return None
    versions = release_versions(page.decode("utf-8", "replace"), name, content_type, python)
    return max(versions, key=version_key) if versions else None
