"""A site's error status said plainly: what it means and what to do, the status in brackets.
The same words for a download (engine/failures.py, from yt-dlp's "HTTP Error 404: Not Found"),
a feed or page a task reads (tasks/handlers.py) and the update check (api/admin.py)."""

from __future__ import annotations

_WORDS = {
    401: ("The site wants a login ({status}): give its cookies in a preset, or a username and "
          "password in the options (--username, --password)."),
    403: ("The site refused access ({status}): it may need a login (cookies, in a preset), or "
          "it refuses this box's address."),
    404: ("The site has nothing at this address ({status}): the link is wrong, or what it led "
          "to was removed or made private. Check the link in a browser."),
    410: ("The site says what was at this address is gone for good ({status}): it was removed, "
          "and cannot be downloaded from there any more."),
    429: ("The site is limiting requests from this box ({status}): try again later, with fewer "
          "downloads from it at once (YTP_MAX_WORKERS_PER_EXTRACTOR)."),
}
_FAILED = "The site failed with an error of its own ({status}): try again later."


def said(status: int, reason: str) -> str | None:
    """The words for ``status`` (``reason``: the site's own, "Not Found"); None for a status
    with nothing more to say than its reason (another 4xx)."""
    words = _WORDS.get(status) or (_FAILED if status >= 500 else None)
    return words.format(status=f"HTTP {status} {reason.strip()}".rstrip()) if words else None
