"""Names that are not UTF-8 as the API carries them: by their bytes, percent-encoded.

An old tool, or a folder copied from Windows, leaves names of Latin-1 bytes (``caf\\xe9.mp4``).
Python reads them with each such byte as a surrogate escape (``os.fsdecode``), which neither
JSON nor a URL can carry. The player's URLs name them by their bytes, percent-encoded
(``caf%E9.mp4``), as a URL carries any byte; the whole API does the same, in URLs and in JSON:
each component that is not UTF-8 is written with its bytes from 0x80 (and ``%``) encoded, the
rest as it is (``Fotos/caf%E9.mp4``).

Read back, a component is its bytes only when it names no entry as written and its
percent-decoding is not UTF-8 (the one reason to encode a name in JSON): a name that is UTF-8
as written, ``100%`` or ``a%20b``, is itself. Both there at once (``caf%E9.mp4`` written so
beside ``caf\\xe9.mp4``) is a conflict the API will not guess at: 409, rename one on the disk.
The decoded bytes are checked on their final form: a ``/``, a backslash, NUL or another
control byte, or UTF-8's overlong forms and encoded surrogates (which lenient decoders read as
``.``, ``/`` or NUL: ``%C0%AE%C0%AE``) are refused, and a name on the disk made of such bytes
is one the API cannot name (``reachable``).
"""

from __future__ import annotations

import os
import re
import string
from urllib.parse import quote, unquote_to_bytes

from .. import errors

# What an encoded component keeps as it is: printable ASCII but the percent sign.
_KEPT = "".join(c for c in string.printable if c.isprintable() and c != "%") + " "
_REFUSED_BYTES = re.compile(
    rb"[\x00-\x1f\x7f/\\]"  # separators, NUL and control bytes
    rb"|[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f]|\xf0[\x80-\x8f]"  # overlong forms
    rb"|\xed[\xa0-\xbf]"  # UTF-16 surrogates written as UTF-8
)


def is_text(name: str) -> bool:
    """Whether ``name`` (as ``os.fsdecode`` reads it) is valid UTF-8: JSON carries it as is."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reachable_bytes(raw: bytes) -> bool:
    """Whether a name of these bytes (not UTF-8) may be named by its percent-encoding."""
    return _REFUSED_BYTES.search(raw) is None


def api_form(rel: str) -> str:
    """A name or relative path read from the disk, as the API writes it (JSON and URLs)."""
    if is_text(rel):
        return rel
    return "/".join(part if is_text(part) else quote(os.fsencode(part), safe=_KEPT)
                    for part in rel.split("/"))


def readable(name: str) -> str:
    """A name for people (a zip's entry, a search): the bytes of one that is not UTF-8 read as
    Windows-1252, the code page such names come from (``café.mp4``)."""
    if is_text(name):
        return name
    return os.fsencode(name).decode("cp1252", errors="replace")


def encoded_bytes(part: str) -> bytes | None:
    """The bytes that the component ``part`` percent-encodes when they are not UTF-8 (the
    name it may stand for), else None."""
    if "%" not in part:
        return None
    raw = unquote_to_bytes(part)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def shortest(part: str) -> str:
    """The shorter of the names ``part`` may stand for, for the system's limits: a name of
    200 bytes is 400 characters percent-encoded (one written so could not be there)."""
    raw = encoded_bytes(part)
    return part if raw is None else os.fsdecode(raw)


def two_entries(part: str) -> errors.AppError:
    return errors.AppError(f"'{part}' names two entries: one named so, and one whose name is "
                           "these bytes (not UTF-8). Rename one of them on the disk.",
                           errors.CONFLICT)


def disk_part(folder: str, part: str, conflicts: list[str] | None = None) -> str:
    """The entry of ``folder`` (a path on the disk) that the component ``part`` (as the API
    writes it) names: itself, or the bytes its percent-encoding names (see above). A part
    that names two entries is refused (409), or, given ``conflicts``, taken as written and
    added there: a caller that has yet to check that ``folder`` lies inside the download
    folder refuses it after (else the 409 would tell what lies outside)."""
    raw = encoded_bytes(part)
    if raw is None:
        return part
    decoded = os.fsdecode(raw)
    literal = os.path.lexists(os.path.join(folder, part))
    if literal and os.path.lexists(os.path.join(folder, decoded)):
        if conflicts is None:
            raise two_entries(part)
        conflicts.append(part)
    if literal:
        return part
    if not reachable_bytes(raw):
        raise errors.invalid(f"'{part}' percent-encodes a separator, a control byte or a "
                             "form of UTF-8 that is not allowed (overlong, a surrogate).")
    return decoded
