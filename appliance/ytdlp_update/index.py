"""The newest release of a project on a package index's simple API (PEP 503 pages, which
PyPI and every mirror serve; a folder served by ``python -m http.server`` is one too)."""

from __future__ import annotations

import html.parser
import logging
import re
import urllib.error
import urllib.request

from .. import __version__
from .wheels import normalize

log = logging.getLogger(__name__)

MAX_PAGE = 16 * 1024 * 1024  # PyPI's yt-dlp page is ~1 MB
# Final releases only: yt-dlp's nightly builds (…dev0) are not offered as updates.
FINAL = re.compile(r"\d+(?:\.\d+)*")


def version_key(version: str) -> tuple[int, ...]:
    """Release numbers as integers, trailing zeros dropped (2026.01.05 == 2026.1.5)."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def newer(candidate: str, installed: str | None) -> bool:
    if not FINAL.fullmatch(candidate):
        return False
    if installed is None or not FINAL.fullmatch(installed):
        return True
    return version_key(candidate) > version_key(installed)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            yanked = any(name == "data-yanked" for name, _ in attrs)
            self._current = None if yanked else ""

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.files.append(self._current.strip())
            self._current = None


def release_versions(page: str, name: str) -> set[str]:
    """Versions of the final releases a simple page links to (yanked ones left out)."""
    parser = _Links()
    parser.feed(page)
    project = normalize(name)
    versions: set[str] = set()
    for file in parser.files:
        if file.endswith(".whl"):
            stem_name, _, rest = file.partition("-")
            version = rest.split("-", 1)[0]
        elif file.endswith((".tar.gz", ".zip")):
            stem = file.removesuffix(".tar.gz").removesuffix(".zip")
            stem_name, _, version = stem.rpartition("-")
        else:
            continue
        if normalize(stem_name) == project and FINAL.fullmatch(version):
            versions.add(version)
    return versions


def newest_version(index_url: str, name: str, timeout: float) -> str | None:
    """The newest final release of ``name`` on the index; None when the index cannot be
    reached or says nothing usable (the caller reports "unknown", never an error)."""
    url = f"{index_url.rstrip('/')}/{normalize(name)}/"
    request = urllib.request.Request(url, headers={
        "Accept": "text/html", "User-Agent": f"appliance/{__version__}",
    })
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            page = answer.read(MAX_PAGE + 1)
    except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, a bad URL
        log.info("package index %s not reachable: %s", url, exc)
        return None
    if len(page) > MAX_PAGE:
        log.warning("package index page %s is larger than %d bytes; ignored", url, MAX_PAGE)
        return None
    versions = release_versions(page.decode("utf-8", "replace"), name)
    return max(versions, key=version_key) if versions else None
