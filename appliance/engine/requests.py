"""What a client may ask to download, checked once for HTTP and websocket alike."""

from __future__ import annotations

import dataclasses
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from ..errors import INVALID_REQUEST, invalid
from .dl_fields import DlFields
from .options import check_template, parse_cli
from .presets import Presets

MAX_URL_LENGTH = 8192
MAX_COOKIES_LENGTH = 1024 * 1024
TEXT_FIELDS = ("preset", "folder", "template", "cookies", "cli", "batch_id", "batch_name")
# What str.isspace() calls a space (the regex's \s for str is the same test), and the C0
# controls and DEL: in one scan in C, not a Python step per character (a task run checks
# every entry of its feed's URLs: 7 ms of its 22).
NOT_IN_A_URL = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclasses.dataclass
class AddRequest:
    url: str
    preset: str = "default"
    folder: str = ""
    template: str = ""
    cookies: str = ""
    cli: str = ""
    auto_start: bool = True
    batch_id: str = ""
    batch_name: str = ""
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    cli_args: list[str] = dataclasses.field(default_factory=list)
    removed_options: list[str] = dataclasses.field(default_factory=list)


def check_url(url: Any) -> str:
    if url is not None and not isinstance(url, str):
        raise invalid("url must be a string (the link).")
    if not url or not url.strip():
        raise invalid("url param is required.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise invalid(f"url is longer than {MAX_URL_LENGTH} characters.")
    if NOT_IN_A_URL.search(url):
        raise invalid("url must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError as exc:  # e.g. "http://[::1": an unclosed IPv6 bracket
        raise invalid(f"url '{url[:200]}' is not a valid URL: {exc}.") from None
    # yt-dlp would read local files for file:// (and worse for others): only the web.
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise invalid(f"url '{url[:200]}' must be an http(s) URL.")
    return url


def check_cookies(text: str) -> None:
    """Netscape cookie format, as the contract requires: seven tab-separated fields a line."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not stripped.startswith("#HttpOnly_")):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise invalid(f"cookies must be in Netscape format: line {number} has "
                          f"{len(fields)} tab-separated fields, not 7.")
        if not fields[4].strip().lstrip("-").isdigit():
            raise invalid(f"cookies must be in Netscape format: line {number} has a "
                          f"non-numeric expiry {fields[4][:20]!r}.")


def parse_add_request(data: Any, presets: Presets, dl_fields: DlFields) -> AddRequest:
    """Validate one item of ``POST /api/history`` (or ``add_url``); raise a 400 on anything off."""
    if not isinstance(data, dict):
        raise invalid("each item must be a JSON object with a url.")
    values: dict[str, Any] = {"url": check_url(data.get("url"))}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid(f"{name} must be a string.")
        values[name] = value.strip() if name != "cookies" else value
    if not values.get("preset"):
        values.pop("preset", None)
    else:
        presets.check(values["preset"], INVALID_REQUEST)
    if len(values.get("cookies", "")) > MAX_COOKIES_LENGTH:
        raise invalid("cookies are larger than 1 MiB.")
    if values.get("cookies"):
        check_cookies(values["cookies"])
    if "auto_start" in data and data["auto_start"] is not None:
        if not isinstance(data["auto_start"], bool):
            raise invalid("auto_start must be true or false.")
        values["auto_start"] = data["auto_start"]
    extras = data.get("extras")
    if extras is not None and not isinstance(extras, dict):
        raise invalid("extras must be an object.")
    values["extras"] = dict(extras or {})
    force = data.get("force")
    if force is not None and not isinstance(force, bool):
        raise invalid("force must be true or false.")
    if force:  # download even when the archive already holds it
        values["extras"]["force"] = True
    request = AddRequest(**values)
    request.template = check_template(request.template)
    _add_options(request, dl_fields.arguments(data.get("dl_fields")))
    return request


def _add_options(request: AddRequest, field_args: list[str]) -> None:
    """The request's yt-dlp options (its ``cli`` and download fields) after the policy."""
    options = parse_cli(" ".join(filter(None, [request.cli, shlex.join(field_args)])))
    request.cli_args, request.removed_options = options.args, options.removed
    if options.archive:  # archives are named by presets, not by single items
        request.removed_options.append("--download-archive")
    if options.folder:  # -P inside the download folder: the item's folder, unless it has one
        if request.folder:
            request.removed_options.append("--paths")
        else:
            request.folder = options.folder
