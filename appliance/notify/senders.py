"""One delivery attempt to one target: a plain webhook (requests) or an Apprise URL.

Each attempt is bounded by ``timeout``, and what it reads of an answer by ``answers``, and
says whether a failure is worth retrying: connection errors, timeouts, 5xx and 429 are; any
other 4xx is not (the request itself is wrong and will stay wrong), nor an answer too large.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import mimetypes
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from .. import __version__, errors
from ..connection_failures import unreached
from ..files.fetch import fetch_image, public_only
from ..ip_addresses import Address
from ..outbound import (
    RefusedAddress,
    check_host,
    checked_session,
    connections_checked,
    proxied,
)
from .messages import Message
from .targets import asset, check_headers, check_url, local_use, scrub

if TYPE_CHECKING:
    import requests

    from .answers import Answers

log = logging.getLogger("appliance.notify")

USER_AGENT = f"appliance/{__version__}"
DELIVERY_HEADER = "X-Appliance-Delivery"
_APPRISE_STATUS = re.compile(r"error=(\d{3})")
_ATTACH_WORDS = re.compile(r"attach", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None  # the HTTP status, when one came back
    error: str = ""
    transient: bool = False  # worth a retry
    retry_after: float | None = None
    # An exception no sender expects (a bug): logged with its traceback, once, by the caller.
    bug: BaseException | None = dataclasses.field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "error": self.error}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _picture(url: str, allow: Callable[[Address], bool]) -> Any:
    """The picture at ``url`` as Apprise attaches it; None (the message goes without it) when
    it may not or cannot be fetched."""
    from apprise.attachment.memory import AttachMemory

    try:
        image = fetch_image(url, allow)
    except errors.AppError as exc:
        log.info("a notification's picture is left out: %s", exc.message)
        return None
    extension = mimetypes.guess_extension(image.content_type) or ".jpg"
    return AttachMemory(content=image.data, name=f"thumbnail{extension}",
                        mimetype=image.content_type)


def send_webhook(request: dict[str, Any], envelope: dict[str, Any], timeout: float,
                 session: requests.Session | None = None) -> Outcome:
    """POST/PUT ``envelope`` under ``data_key`` as JSON or a form, with the target's headers,
    through ``session`` (made by ``checked_session``: where it may connect is checked) or a
    session of its own.

    The URL and headers are checked as when they are saved: a target stored before those
    checks (or written around them) fails with the same words, and never with an exception.
    """
    try:
        check_url(request.get("url"))
        checked = check_headers(request.get("headers"))
    except errors.AppError as exc:
        return Outcome(False, None, scrub(f"Cannot send: {exc.message}", request))
    # The envelope's id, the same at each try and after a restart: a receiver that got a
    # delivery whose answer was lost (at least once: it may come twice) drops the repeat.
    headers = {"User-Agent": USER_AGENT, DELIVERY_HEADER: str(envelope.get("id", ""))}
    headers.update({h["key"]: h["value"] for h in checked})
    key = request.get("data_key") or "data"
    if request.get("type") == "form":
        body: Any = {key: orjson.dumps(envelope).decode()}
    else:
        body = orjson.dumps({key: envelope})
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    import requests  # with the first webhook, not with the service (~15 MB)

    own = session is None  # (the test endpoint's single sends)
    sender = checked_session("notifications") if session is None else session
    try:
        response = sender.request(
            request.get("method", "POST"), request["url"], data=body, headers=headers,
            timeout=(timeout, timeout), allow_redirects=False,
            # The answer's status is all a delivery needs: a body is never read (one that
            # never ends filled the memory, with no timeout while bytes kept coming).
            stream=True,
        )
    except requests.Timeout:
        return Outcome(False, None, f"No answer within {timeout:g} s.", transient=True)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader) as exc:
        return Outcome(False, None, scrub(f"Cannot send: {type(exc).__name__}: {exc}", request))
    except requests.RequestException as exc:
        # (requests' own text is a repr of its connection pool, the reason deep in it)
        plain = unreached(str(exc))
        said = (f"{plain} ({request.get('method', 'POST')} {request['url']})" if plain
                else f"Connection failed: {type(exc).__name__}: {exc}")
        return Outcome(False, None, scrub(said, request), transient=True)
    except RefusedAddress as exc:
        return Outcome(False, None, scrub(f"Cannot send: {exc}", request))
    except ValueError as exc:  # raised below requests (urllib3, http.client): will not change
        return Outcome(False, None, scrub(f"Cannot send: {type(exc).__name__}: {exc}", request))
    finally:
        if own:
            sender.close()
    with response:
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(True, status)
        reason = f"HTTP {status} {response.reason or ''}".strip()
        if 300 <= status < 400:
            reason += f" (redirected to {response.headers.get('Location', '?')}; use that URL)"
        transient = status >= 500 or status == 429
        return Outcome(False, status, scrub(reason, request), transient,
                       _retry_after(response) if status == 429 else None)


def _apprise_outcome(result: Any, timeout: float, answers: Answers) -> Outcome:
    if result:
        return Outcome(True)
    if answers.too_large:
        # Not worth a retry: the same request gets the same answer, and each try would send
        # the message again (it may have arrived: an answer came) and read a MiB more.
        return Outcome(False, None, f"The answer was larger than {answers.limit / 2**20:g} MiB.")
    logs = list(result.logs())
    lines = [entry.message for entry in logs if entry.level in {"WARNING", "ERROR", "CRITICAL"}]
    error = lines[-1] if lines else "Apprise could not deliver the notification."
    # Why a connection failed, Apprise says only at DEBUG: "A Connection error occurred" at
    # WARNING, then "Socket Exception: <requests' words>".
    reasons = [plain for entry in logs if entry.message.startswith("Socket Exception:")
               for plain in [unreached(entry.message)] if plain]
    error = reasons[-1] if reasons else error
    statuses = [int(m.group(1)) for line in lines for m in [_APPRISE_STATUS.search(line)] if m]
    status = statuses[-1] if statuses else None
    import apprise

    if result.status == apprise.AppriseResultStatus.TIMEOUT:
        # (an answer that comes a byte at a time, each within the socket's timeout)
        said = "The answer took longer than" if answers.begun else "No answer within"
        return Outcome(False, None, f"{said} {timeout:g} s.", transient=True)
    transient = status is None or status >= 500 or status == 429
    return Outcome(False, status, error, transient)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # Apprise read it; its host is then no address either
        return None


def _prepared(notifier: Any, url: str, trusted: bool) -> str | None:
    """Why ``notifier`` (``url`` added) may not send, or None. A message too long for a
    service is cut to its limits (unless the URL says ``overflow=``): Apprise's default hands
    it on whole, and Discord (2,000 characters), Telegram or Pushover refuse the whole
    message (a summary of long titles, one title of a site's 10,000 characters)."""
    from apprise import OverflowMode

    try:
        cut = "overflow" not in {k.lower() for k, _ in parse_qsl(urlsplit(url).query)}
    except ValueError:  # Apprise read it; it then says no overflow= either
        cut = True
    for service in notifier:
        if not trusted and (local := local_use(service)) is not None:
            return f"Cannot send: {local}; set such a target in apprise.yml."
        if cut:
            service.overflow_mode = OverflowMode.TRUNCATE
    return None


class _Onward(logging.Handler):
    """Apprise's lines on to the service's log at the level the service logs at."""

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if record.levelno >= root.getEffectiveLevel():
            root.handle(record)


@functools.cache
def _hear_apprise() -> None:
    """Apprise's DEBUG lines made, for each send's own capture (``log_level``) to hold the
    reason of a failed connection, and kept out of the service's log as before."""
    apprise_log = logging.getLogger("apprise")
    apprise_log.setLevel(logging.DEBUG)
    apprise_log.propagate = False
    apprise_log.addHandler(_Onward())


def send_apprise(url: str, message: Message, timeout: float,
                 allow: Callable[[Address], bool] = public_only, *,
                 trusted: bool = False) -> Outcome:
    """Send through Apprise; the thumbnail is attached where the service takes attachments,
    fetched here as the thumbnail proxy fetches (``allow``: whose addresses): it is the site's
    URL, which Apprise would fetch from wherever it points (the LAN, this machine).

    ``trusted``: the URL is apprise.yml's, which may read local files (``local_use``); one
    set through the API (or stored before that was refused) may not. The message is plain
    text, said so to Apprise: a service that reads HTML or Markdown (Telegram, e-mail, Slack)
    gets it escaped, so a site's title with ``<`` or ``&`` neither breaks the message
    (Telegram refused it whole) nor becomes markup in a person's mail."""
    import apprise

    _hear_apprise()
    notifier = apprise.Apprise(asset=asset())
    if not notifier.add(url):
        return Outcome(False, None, "Apprise cannot load this URL.", transient=False)
    if (refusal := _prepared(notifier, url, trusted)) is not None:
        return Outcome(False, None, refusal, transient=False)
    attach = _picture(message.attach, allow) if message.attach and all(
        getattr(s, "attachment_support", False) for s in notifier) else None
    host = _host(url)
    if proxied(host):
        # The connection is the proxy's and the proxy resolves the host: the hook below sees
        # only the proxy. (A service's own host, api.telegram.org, is public in any case.)
        try:
            check_host(host, "notifications")
        except RefusedAddress as exc:
            return Outcome(False, None, f"Cannot send: {exc}", transient=False)
    from .answers import answers_bounded  # (urllib3: loaded with Apprise)

    try:  # Apprise connects by itself, in threads of its own
        with connections_checked("notifications") as refused, answers_bounded() as answers:
            result = notifier.notify(body=message.body, title=message.title,
                                     notify_type=message.type, attach=attach, timeout=timeout,
                                     body_format=apprise.NotifyFormat.TEXT,
                                     log_level=logging.DEBUG)
            outcome = _apprise_outcome(result, timeout, answers)
            if not outcome.ok and attach and _ATTACH_WORDS.search(outcome.error):
                # The picture was not taken: the message matters more than the picture.
                result = notifier.notify(body=message.body, title=message.title,
                                         notify_type=message.type, timeout=timeout,
                                         body_format=apprise.NotifyFormat.TEXT,
                                         log_level=logging.DEBUG)
                outcome = _apprise_outcome(result, timeout, answers)
    except Exception as exc:  # a plugin bug must not kill the delivery thread
        return Outcome(False, None, scrub(f"Apprise failed: {type(exc).__name__}: {exc}",
                                          {"url": url}), True, bug=exc)
    if not outcome.ok and (refusal := refused()) is not None:
        return Outcome(False, None, f"Cannot send: {refusal}", transient=False)
    # Apprise's words may quote what a service answered, which may quote the URL's secrets
    # (a server's "invalid password …"): last_error is read by any client.
    return dataclasses.replace(outcome, error=scrub(outcome.error, {"url": url}))
