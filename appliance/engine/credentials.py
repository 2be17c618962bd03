"""A person's credentials for a site, kept out of what yt-dlp's info is written to.

yt-dlp puts the cookies it sends for an item in its info (``cookies``, on the item and on
each format) and every header it sends in each format's ``http_headers`` (an
``--add-header "Authorization: …"`` too). Written as they are, a preset's login cookies
landed in every ``.info.json`` of the media folder (read by the media server's group, shared
on the LAN), in a channel's metadata and in the URL info the API answers. The download
itself never needs them from there: yt-dlp computes the cookies and headers of a format
again from its cookie jar and its options when it processes an item.
"""

from __future__ import annotations

from typing import Any

CREDENTIAL_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
COOKIES = "cookies"  # the field yt-dlp puts them in


def without_credentials(info: Any) -> Any:
    """``info`` (yt-dlp's, as JSON values) without the cookies yt-dlp added and without the
    credential headers of any ``http_headers``; the rest as it is (a copy where it
    changed)."""
    if isinstance(info, list):
        return [without_credentials(value) for value in info]
    if not isinstance(info, dict):
        return info
    kept: dict[Any, Any] = {}
    for key, value in info.items():
        if key == COOKIES and isinstance(value, str):
            continue
        if key == "http_headers" and isinstance(value, dict):
            kept[key] = {name: header for name, header in value.items()
                         if str(name).lower() not in CREDENTIAL_HEADERS}
        else:
            kept[key] = without_credentials(value)
    return kept
