"""The one pagination helper of the API.

Every paginated endpoint reads ``page`` and its page-size parameter here, and answers with
``pagination(...)``: the contract's body ``pagination`` object, plus FlexGet's headers —
RFC 5988 ``Link`` (``next``, ``prev``, ``last``, built from the request's own URL with every
query parameter kept and only ``page`` replaced, as FlexGet and GitHub do), ``Total-Count``
(entities in the whole list) and ``Count`` (entities in this page).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from urllib.parse import parse_qsl, urlencode

import falcon

from .. import errors
from ..store.order import Anchor

MAX_PER_PAGE = 1000
# Far past any real list; keeps the SQL offset inside a 64-bit integer.
MAX_PAGE = 10_000_000


@dataclasses.dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def page_request(
    req: falcon.Request, default_per_page: int, *, size_param: str = "per_page",
    maximum: int = MAX_PER_PAGE,
) -> PageRequest:
    """``page`` and the page size (``per_page``, or ``limit`` for Flasharr), checked.

    The texts are the contract's: "page must be >= 1.", "per_page must be between 1 and
    1000.", "page and per_page must be valid integers." (with ``size_param`` in place of
    ``per_page``).
    """
    try:
        page = int(req.get_param("page") or 1)
        per_page = int(req.get_param(size_param) or default_per_page)
    except ValueError:
        raise errors.invalid(f"page and {size_param} must be valid integers.") from None
    if page < 1:
        raise errors.invalid("page must be >= 1.")
    if page > MAX_PAGE:
        raise errors.invalid(f"page must be <= {MAX_PAGE}.")
    if not 1 <= per_page <= maximum:
        raise errors.invalid(f"{size_param} must be between 1 and {maximum}.")
    return PageRequest(page, per_page)


def total_pages(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


@dataclasses.dataclass(frozen=True)
class Anchored:
    """A page read after an anchor (``after``): whether more items follow it, and the
    anchor of the next page (its last item's, as ``Anchor.text`` writes it)."""

    more: bool
    next_after: str | None


# An item's id is a UUID (36 characters); one longer than this is no id.
MAX_ANCHOR_ID = 200
_ANCHOR_ERROR = ("after must be a number: an item's created_at (as the next link carries "
                 "it), or that number, a comma and the item's id.")


def anchor(req: falcon.Request) -> Anchor | None:
    """``after``: a position in a list (an item's ``created_at``, or ``created_at,id`` as the
    ``next`` link carries it), or None."""
    text = req.get_param("after")
    if not text:  # (a blank one as none, as for page)
        return None
    number, comma, item_id = text.partition(",")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (comma and not 0 < len(item_id) <= MAX_ANCHOR_ID):
        raise errors.invalid(_ANCHOR_ERROR)
    return Anchor(value, item_id if comma else None)


def pagination(
    req: falcon.Request, resp: falcon.Response, paging: PageRequest, total: int, count: int,
    anchored: Anchored | None = None,
) -> dict[str, Any]:
    """Set ``Link``, ``Total-Count`` and ``Count`` on ``resp``; return the body object.
    ``anchored``: the page was read after an anchor, and its ``next`` link carries the next
    one (at page 1)."""
    last = total_pages(total, paging.per_page)
    has_next = paging.page < last if anchored is None else anchored.more
    links = []
    if anchored is not None and has_next:
        links.append(page_url(req, 1, after=anchored.next_after) + '; rel="next"')
    elif has_next:
        links.append(page_url(req, paging.page + 1) + '; rel="next"')
    if paging.page > 1:
        links.append(page_url(req, min(paging.page - 1, last)) + '; rel="prev"')
    links.append(page_url(req, last, after=None) + '; rel="last"')
    resp.set_header("Link", ", ".join(links))
    resp.set_header("Total-Count", str(total))
    resp.set_header("Count", str(count))
    return {
        "page": paging.page,
        "per_page": paging.per_page,
        "total": total,
        "total_pages": last,
        "has_next": has_next,
        "has_prev": paging.page > 1,
    }


_KEEP = object()


def page_url(req: falcon.Request, page: int, *, after: Any = _KEEP) -> str:
    """The request's own URL (as the client sent it, through a reverse proxy too) in angle
    brackets, with ``page`` set to ``page`` (and ``after`` to ``after``, or dropped for None);
    every other query parameter is kept, in order."""
    params = parse_qsl(req.query_string, keep_blank_values=True)
    wanted = {"page": str(page)}
    if after is not _KEEP:
        wanted["after"] = after
    out: list[tuple[str, str]] = []
    for key, value in params:
        if key not in wanted:
            out.append((key, value))
        elif wanted[key] is not None:
            out.append((key, wanted.pop(key)))
            wanted[key] = None  # (given twice: once)
    out += [(key, value) for key, value in wanted.items() if value is not None]
    return f"<{req.context.prefix}{req.path}?{urlencode(out)}>"


# OpenAPI fragments for the documents of paginated endpoints.
OPENAPI_HEADERS: dict[str, dict[str, Any]] = {
    "Link": {
        "description": "RFC 5988 links to the next, prev and last pages (this URL with only "
                       "page replaced).",
        "schema": {"type": "string"},
    },
    "Total-Count": {"description": "Entities in the whole list.",
                    "schema": {"type": "integer"}},
    "Count": {"description": "Entities in this page.", "schema": {"type": "integer"}},
}


def openapi_parameters(size_param: str = "per_page", default: int = 50) -> list[dict[str, Any]]:
    return [
        {"name": "page", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}},
        {"name": size_param, "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE,
                    "default": default}},
    ]
