"""CORS for browsers on other origins: off unless ``YTP_CORS_ORIGINS`` lists them.

A request whose ``Origin`` is listed gets ``Access-Control-Allow-Origin: <that origin>``,
``Access-Control-Allow-Credentials: true`` and ``Access-Control-Expose-Headers`` (the headers a
script needs: ETag, Link, Total-Count, Count, API-Version, X-Request-ID) — on errors too. A
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is answered
here with 204 for every path, before routing and authentication (a browser never sends
credentials on a preflight). Unlisted origins get no CORS headers at all.

This middleware must come before the authentication middleware in the app's list.

:class:`ForeignPages` refuses what CORS cannot: a page on another origin may still *send* a
"simple" request (a form post, a ``fetch`` in ``no-cors`` mode) even though it cannot read the
answer — and with auth off the request alone does the harm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import falcon

from .. import errors
from ..auth.browsers import UNSAFE_METHODS, BrowserPolicy

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, If-None-Match, X-Request-ID"
EXPOSE_HEADERS = "ETag, Link, Total-Count, Count, API-Version, X-Request-ID"
MAX_AGE = "600"

# Header names a preflight may ask for (RFC 9110 tokens), echoed back when they are well-formed.
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")


class CORS:
    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(o.lower() for o in origins)

    def _allowed(self, req: falcon.Request) -> str | None:
        origin = req.get_header("Origin")
        if origin and origin.rstrip("/").lower() in self.origins:
            return origin
        return None

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method != "OPTIONS" or not req.get_header("Access-Control-Request-Method"):
            return
        if self._allowed(req) is None:
            return  # not ours to answer: the app's own OPTIONS handling applies
        requested = (req.get_header("Access-Control-Request-Headers") or "").strip()
        resp.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
        resp.set_header("Access-Control-Allow-Headers",
                        requested if requested and _HEADER_LIST.match(requested)
                        else ALLOW_HEADERS)
        resp.set_header("Access-Control-Max-Age", MAX_AGE)
        resp.status = falcon.HTTP_204
        resp.complete = True  # skip routing, later middleware and the responder

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if not self.origins:
            return
        resp.append_header("Vary", "Origin")
        origin = self._allowed(req)
        if origin is None:
            return
        resp.set_header("Access-Control-Allow-Origin", origin)
        resp.set_header("Access-Control-Allow-Credentials", "true")
        resp.set_header("Access-Control-Expose-Headers", EXPOSE_HEADERS)


class ForeignPages:
    """Middleware: a ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` sent by a browser page on
    another origin (not the service's own, not in ``YTP_CORS_ORIGINS``) is refused with 403
    before routing and authentication (see :mod:`appliance.auth.browsers`)."""

    def __init__(self, policy: BrowserPolicy) -> None:
        self.policy = policy

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method not in UNSAFE_METHODS:
            return
        refusal = self.policy.origin_refusal(req.get_header)
        if refusal is not None:
            raise errors.AppError(refusal, errors.FORBIDDEN)
