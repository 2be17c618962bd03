"""Notification targets: checking what a client sends, and masking secrets in what it reads.

A target's ``request.url`` is either a plain ``http(s)://`` webhook (sent as the ``request``
block says) or any Apprise URL (``discord://``, ``tgram://``, ``ntfys://``, ``mailto://``,
``json://`` …), checked with Apprise when it is saved.

Masking (what ``GET`` shows): in a webhook URL the password, the values of query parameters
whose names look secret (``token``, ``key``, ``secret``, ``sig``, ``auth`` …) and path segments
that look like tokens (16+ characters mixing letters and digits); an Apprise URL is shown as
Apprise's own privacy form (``tgram://1...G/12345/``, passwords as ``****``) with only the
query parameters the user wrote; header values other than a few plain ones (``Content-Type``,
``Accept``, ``User-Agent`` …) become ``****`` (``Authorization`` keeps its scheme:
``Bearer ****``). A write that sends a masked value back unchanged keeps the stored secret.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from .. import errors
from ..host_names import is_host_name
from ..http_headers import header_problem
from ..outbound import literal_problem
from ..url_secrets import SECRET_NAME, token_like
from .catalog import EVENTS

MASK = "****"
MAX_NAME = 255
MAX_NAMES = 1000  # in ``on`` or ``presets``
MAX_URL = 8192
TYPES = ("json", "form")
METHODS = ("POST", "PUT")
FIELDS = ("name", "on", "presets", "enabled", "request")
REQUEST_FIELDS = ("type", "method", "url", "data_key", "headers")
# Read-only fields of a target as the API shows it: a client may send them back (GET, edit,
# PUT) and they are ignored.
READ_ONLY = frozenset({"id", "kind", "last_status", "last_error", "last_sent_at", "waiting"})

@functools.cache
def asset() -> Any:
    """Apprise's description of this app. Apprise is imported on first use: it adds ~17 MB
    to the service, which a box without chat targets should not carry."""
    import apprise

    return apprise.AppriseAsset(app_id="appliance", app_desc="appliance: downloads with yt-dlp")


_PUBLIC_HEADERS = frozenset({
    "accept", "accept-language", "cache-control", "content-language", "content-type",
    "user-agent", "x-requested-with",
})


def default_request() -> dict[str, Any]:
    return {"type": "json", "method": "POST", "url": "", "data_key": "data", "headers": []}


def is_webhook(url: str) -> bool:
    # Not urlsplit: it raises on a malformed address ("http://[::1"), which check_url reports.
    scheme, colon, _ = url.partition(":")
    return bool(colon) and scheme.strip().lower() in {"http", "https"}


# --- checking input -------------------------------------------------------------------------


def build(body: dict[str, Any], stored: dict[str, Any] | None = None, *,
          partial: bool = False) -> dict[str, Any]:
    """The target fields to store from a request ``body``.

    ``partial`` (PATCH): ``body`` changes ``stored`` (``request`` is merged key by key).
    Otherwise (POST, PUT) ``body`` is the whole target: ``name`` and ``request.url`` are
    required and the rest takes defaults. ``stored`` (PATCH, PUT) lets masked values sent back
    keep the secrets they stand for.
    """
    unknown = sorted(set(body) - set(FIELDS) - READ_ONLY)
    if unknown:
        raise errors.invalid(f"Unknown field(s): {', '.join(unknown)}.")
    if partial and stored is not None:
        target = {k: stored[k] for k in FIELDS}
        target["request"] = dict(stored["request"])
    else:
        target = {"name": None, "on": [], "presets": [], "enabled": True,
                  "request": default_request()}
    for key in ("name", "on", "presets", "enabled"):
        if key in body:
            target[key] = body[key]
    if "request" in body or not partial:
        request = body.get("request")
        if not isinstance(request, dict):
            raise errors.invalid("request is required and must be an object.")
        unknown = sorted(set(request) - set(REQUEST_FIELDS))
        if unknown:
            raise errors.invalid(f"Unknown field(s) in request: {', '.join(unknown)}.")
        target["request"] = {**target["request"], **request}
    if stored is not None:
        kept = partial and "headers" not in (body.get("request") or {})
        target["request"] = restore_secrets(target["request"], stored["request"],
                                            headers_kept=kept)
    return {
        "name": _name(target["name"]),
        "on": _names(target["on"], "on", allowed=EVENTS),
        "presets": _names(target["presets"], "presets"),
        "enabled": _bool(target["enabled"], "enabled"),
        "request": _request(target["request"]),
    }


def _control(text: str) -> bool:
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


def _name(value: Any) -> str:
    if value is None:
        raise errors.invalid("name is required.")
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_NAME:
        raise errors.invalid(f"name must be a non-empty string of at most {MAX_NAME} characters.")
    if _control(value):  # (shown in the log, the TUI, a failure's text)
        raise errors.invalid("name must not contain control characters.")
    return value.strip()


def _names(value: Any, field: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    if value is None:
        return []
    # (every item event is looked up in ``presets``: a list of 100,000 names was taken)
    if not isinstance(value, list) or len(value) > MAX_NAMES or not all(
            isinstance(v, str) and v and len(v) <= MAX_NAME for v in value):
        raise errors.invalid(f"{field} must be an array of at most {MAX_NAMES} names of 1 to "
                             f"{MAX_NAME} characters (empty: all).")
    if allowed is not None:
        wrong = [v for v in value if v not in allowed]
        if wrong:
            raise errors.invalid(f"Unknown event(s) in {field}: {', '.join(wrong)}. "
                                 f"Allowed: {', '.join(allowed)}.")
    return list(dict.fromkeys(value))


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise errors.invalid(f"{field} must be true or false.")
    return value


def _request(request: dict[str, Any]) -> dict[str, Any]:
    kind = request.get("type")
    if not isinstance(kind, str) or kind.lower() not in TYPES:
        raise errors.invalid("request.type must be json or form.")
    method = request.get("method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise errors.invalid("request.method must be POST or PUT.")
    data_key = request.get("data_key")
    if data_key is None:
        data_key = "data"
    if not isinstance(data_key, str) or not data_key.strip():
        raise errors.invalid("request.data_key must be a non-empty string.")
    return {
        "type": kind.lower(),
        "method": method.upper(),
        "url": check_url(request.get("url")),
        "data_key": data_key.strip(),
        "headers": check_headers(request.get("headers")),
    }


def check_headers(value: Any) -> list[dict[str, str]]:
    """The headers to store and send (values trimmed); 400 naming the first wrong one."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.invalid("request.headers must be an array of {key, value} objects.")
    headers = []
    for n, header in enumerate(value):
        if not isinstance(header, dict) or set(header) - {"key", "value"}:
            raise errors.invalid("request.headers must be an array of {key, value} objects.")
        key, text = header.get("key"), header.get("value", "")
        if not isinstance(key, str) or not isinstance(text, str):
            raise errors.invalid(f"request.headers[{n}]: key and value must be strings.")
        if (problem := header_problem(key, text.strip(" \t"))) is not None:
            part, why = problem
            raise errors.invalid(f"request.headers[{n}].{'key' if part == 'name' else part} "
                                 f"{why}.")
        # Spaces around a value are not part of it in HTTP (and requests refuses a leading one).
        headers.append({"key": key, "value": text.strip(" \t")})
    return headers


def check_url(url: Any) -> str:
    """A webhook or Apprise URL, stripped; 400 with the reason otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise errors.invalid("request.url is required.")
    url = url.strip()
    if len(url) > MAX_URL:
        raise errors.invalid(f"request.url is longer than {MAX_URL} characters.")
    if any(c.isspace() for c in url) or _control(url):
        raise errors.invalid("request.url must not contain spaces or control characters.")
    if is_webhook(url):
        _check_webhook_url(url)
    elif "://" not in url:
        raise errors.invalid("request.url must be an http(s):// webhook or an Apprise URL "
                             "(scheme://…, e.g. discord://, tgram://, ntfys://, json://).")
    elif problem := apprise_problem(url):
        raise errors.invalid(f"request.url is not a valid Apprise URL: {problem}")
    with contextlib.suppress(ValueError):  # (an Apprise URL need not parse as one)
        if (refused := literal_problem(urlsplit(url).hostname, "notifications")) is not None:
            raise errors.invalid(f"request.url: {refused}.")
    return url


def _check_webhook_url(url: str) -> None:
    """Parsed as requests parses it when sending, with the host checked as urllib3 checks it
    only when it connects (a label over 63 characters or an empty one raised there)."""
    import requests  # a webhook is being saved: it will be sent with requests anyway
    from urllib3.util import parse_url

    try:
        parts = urlsplit(url)  # as masking splits it
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise errors.invalid(f"request.url is not a valid URL: {exc}.") from None
    if not parts.hostname:
        raise errors.invalid("request.url must name a host (http(s)://host/…).")
    try:
        prepared = requests.models.PreparedRequest()
        prepared.prepare_url(url, None)
        host = parse_url(prepared.url).host or ""
    except (requests.RequestException, ValueError) as exc:
        raise errors.invalid(f"request.url is not a valid URL: {exc}") from None
    if host.startswith("["):
        return  # an IPv6 address: urllib3 has checked it
    name = host.removesuffix(".")
    if not is_host_name(name):
        raise errors.invalid(
            f"request.url has an invalid host {host[:80]!r}: a host name is labels of 1 to 63 "
            "letters, digits or hyphens, separated by single dots.")


class _ThreadLog(logging.Handler):
    """Apprise explains a refused URL only in its log: catch this thread's lines of it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


# Apprise services that act on this machine instead of sending anywhere: its own syslog (the
# service's journal already says what happens, and its lines would be a site's words under the
# service's name) and desktop notices (no desktop session here).
_LOCAL_SCHEMES = frozenset({
    "syslog", "dbus", "kde", "qt", "glib", "gio", "gnome", "macosx", "windows", "blink1"})


def _protocols(plugin: Any) -> set[str]:
    found: set[str] = set()
    for name in ("protocol", "secure_protocol"):
        value = getattr(plugin, name, None)
        found.update([value] if isinstance(value, str) else value or ())
    return {p.lower() for p in found}


def local_use(plugin: Any) -> str | None:
    """Why an Apprise service (an instantiated URL) may not be a target set through the API:
    it reads a file of this machine or fetches a URL from here as it sends (a ``template=``,
    a ``keyfile=``: what it holds goes to whoever the URL names, a LAN device's answer or
    the service's own files), or it writes on this machine (``syslog://``). None when it
    only sends. apprise.yml, which only the box's owner writes, may use them."""
    from apprise import AppriseAttachment

    if scheme := sorted(_protocols(plugin) & _LOCAL_SCHEMES):
        return f"{scheme[0]}:// acts on this machine, not a chat service"
    for name, value in vars(plugin).items():
        if isinstance(value, AppriseAttachment) and len(value):
            return (f"its {name.strip('_')}= has Apprise read a file or fetch a URL from this "
                    "machine and send what it holds")
    return None


def apprise_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (its own words), or None when it can; a 400 when it
    could but the API may not set it (``local_use``)."""
    catcher = _ThreadLog()
    logger = logging.getLogger("apprise")
    logger.addHandler(catcher)
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url, asset=asset(), suppress_exceptions=False)
    except Exception as exc:
        return str(exc).strip() or type(exc).__name__
    finally:
        logger.removeHandler(catcher)
    if plugin is None:
        reason = catcher.lines[-1] if catcher.lines else ""
        scheme = url.split("://", 1)[0]
        return reason or f"Apprise does not support {scheme}:// here."
    if (local := local_use(plugin)) is not None:
        raise errors.invalid(f"request.url is refused: {local}. Such a target belongs in "
                             "apprise.yml in the config folder.")
    return None


# --- masking --------------------------------------------------------------------------------


def _mask_query(query: str, keep: set[str] | None = None) -> str:
    pairs = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if keep is not None and key.lower() not in keep:
            continue
        secret = value and (SECRET_NAME.search(key) or token_like(value))
        pairs.append((key, MASK if secret else value))
    return urlencode(pairs, safe="*:/,")


def _lone_user_secret(parts: Any) -> bool:
    """A token-like user name without a password is the credential itself
    (``https://<api key>@host/``)."""
    return not parts.password and token_like(unquote(parts.username or ""))


def _mask_netloc(parts: Any) -> str:
    netloc = parts.netloc
    if parts.password:
        user = quote(parts.username or "", safe="")
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:{MASK}@{host}"
    elif _lone_user_secret(parts):
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    return netloc


def _mask_plain(url: str) -> str:
    parts = urlsplit(url)
    path = "/".join(MASK if token_like(s) else s for s in parts.path.split("/"))
    return urlunsplit((parts.scheme, _mask_netloc(parts), path, _mask_query(parts.query),
                       parts.fragment))


@functools.lru_cache(maxsize=512)
def _mask_apprise(url: str) -> str:
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url, asset=asset())
        private = plugin.url(privacy=True) if plugin is not None else None
    except Exception:
        private = None
    if not private:
        return f"{url.split('://', 1)[0]}://{MASK}"
    given = {k.lower() for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    parts = urlsplit(private)
    return urlunsplit((parts.scheme, _mask_netloc(parts), parts.path,
                       _mask_query(parts.query, keep=given), ""))


def mask_url(url: str) -> str:
    if not url:
        return url
    return _mask_plain(url) if is_webhook(url) else _mask_apprise(url)


def mask_header(key: str, value: str) -> str:
    if not value or key.lower() in _PUBLIC_HEADERS:
        return value
    scheme, space, rest = value.partition(" ")
    if key.lower() in {"authorization", "proxy-authorization"} and space and rest:
        return f"{scheme} {MASK}"
    return MASK


def masked_request(request: dict[str, Any]) -> dict[str, Any]:
    return {
        **request,
        "url": mask_url(request.get("url", "")),
        "headers": [{"key": h["key"], "value": mask_header(h["key"], h["value"])}
                    for h in request.get("headers", [])],
    }


def _destination(url: Any) -> tuple[str, str | None, int | None] | None:
    try:
        parts = urlsplit(url.strip())
        return parts.scheme.lower(), parts.hostname, parts.port
    except (AttributeError, ValueError):  # no text, or a bad port: _request reports it
        return None


def restore_secrets(request: dict[str, Any], stored: dict[str, Any], *,
                    headers_kept: bool) -> dict[str, Any]:
    """``request`` with masked values sent back unchanged replaced by the stored secrets.

    A stored secret header stays with the host it was written for: whoever may edit a target
    cannot read its secrets, and must not be able to have them sent to a host of their own.
    A request naming another host that keeps one (``headers_kept``: a PATCH without
    ``headers``) or sends its masked form back is refused; sending the value itself is fine.
    """
    request = dict(request)
    stored_url = stored.get("url", "")
    url = request.get("url")
    if isinstance(url, str) and stored_url and url.strip() == mask_url(stored_url) \
            and url.strip() != stored_url:
        request["url"] = stored_url
    moved = _destination(request.get("url")) != _destination(stored_url)
    headers = request.get("headers")
    if isinstance(headers, list):
        old = {h["key"].lower(): h["value"] for h in stored.get("headers", [])}
        restored = []
        for n, header in enumerate(headers):
            if isinstance(header, dict) and isinstance(header.get("key"), str):
                previous = old.get(header["key"].lower())
                secret = previous is not None and mask_header(header["key"], previous) \
                    != previous
                if secret and moved and (headers_kept or header.get("value") == mask_header(
                        header["key"], previous)):
                    raise errors.invalid(
                        f"request.headers[{n}] ({header['key']}): its stored value is kept "
                        "for the host it was written for; to send it to another host, send "
                        "the value itself.")
                if previous is not None and header.get("value") == mask_header(
                        header["key"], previous) and header.get("value") != previous:
                    header = {**header, "value": previous}
            restored.append(header)
        request["headers"] = restored
    return request


# What requests.utils.requote_uri leaves as it is: the rest of a URL goes on the wire, and into
# the sender's error texts, percent-encoded ("|" as %7C, "é" as %C3%A9).
_WIRE_SAFE = "!#$%&'()*+,/:;=?@[]~"


def _url_secrets(url: str) -> list[str]:
    """The secret parts of ``url`` as it writes them and as they read decoded."""
    parts = urlsplit(url)
    found = [parts.password or "", unquote(parts.password or "")]
    if _lone_user_secret(parts):
        found += [parts.username, unquote(parts.username)]
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        plain = unquote_plus(value)
        if plain and (SECRET_NAME.search(unquote_plus(key)) or token_like(plain)):
            found += [value, plain]
    for segment in parts.path.split("/"):
        if token_like(unquote(segment)):
            found += [segment, unquote(segment)]
    return found


def secrets_of(request: dict[str, Any]) -> list[str]:
    """Values that must not appear in an error text shown to clients or logged."""
    url = request.get("url", "")
    found: list[str] = []
    if url:
        found += _url_secrets(url) + _url_secrets(quote(url, safe=_WIRE_SAFE))
    found += [h["value"] for h in request.get("headers", [])
              if mask_header(h["key"], h["value"]) != h["value"]]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _secret_pattern(secret: str) -> re.Pattern[str]:
    """Where ``secret`` is to be masked in a text: a short value (a header "lead") only where it
    stands as a whole, not inside a longer word ("leading"); a long one wherever it is."""
    if len(secret) >= 16:
        return re.compile(re.escape(secret))
    before = r"(?<!\w)" if secret[0].isalnum() else ""
    after = r"(?!\w)" if secret[-1].isalnum() else ""
    return re.compile(before + re.escape(secret) + after)


def scrub(text: str, request: dict[str, Any]) -> str:
    url = request.get("url", "")
    if url and url in text:
        text = text.replace(url, mask_url(url))
    for secret in secrets_of(request):
        text = _secret_pattern(secret).sub(MASK, text)
    return text
