"""yt-dlp's readers of sizes and durations (``yt_dlp.utils.parse_filesize``,
``parse_duration``), as yt-dlp 2026.10.26 has them, for the condition filters
(``engine/filters.py``): "500k", "1.5G" or "10:00" mean here what they mean to yt-dlp's
``--match-filters``.

Why a copy: the filters are parsed and run in the service's worker, where importing
``yt_dlp.utils`` would load all of yt-dlp (~9 MB for the worker's life) for a few regular
expressions. ``tests/test_filters.py`` holds them to yt-dlp's own, on generated input, so a
yt-dlp that reads numbers differently fails the tests instead of drifting apart.
"""

from __future__ import annotations

import re

# yt-dlp's unit table of parse_filesize, in its order: for each prefix the binary and decimal
# forms, and the lower-case ones yt-dlp accepts too.
_PREFIXES = (("K", "kilo", "kibi"), ("M", "mega", "mebi"), ("G", "giga", "gibi"),
             ("T", "tera", "tebi"), ("P", "peta", "pebi"), ("E", "exa", "exbi"),
             ("Z", "zetta", "zebi"), ("Y", "yotta", "yobi"))
UNITS = {"B": 1, "b": 1, "bytes": 1}
for _power, (_letter, _decimal, _binary) in enumerate(_PREFIXES, 1):
    UNITS.update({
        f"{_letter}iB": 1024 ** _power, f"{_letter}B": 1000 ** _power,
        f"{_letter.lower()}B": 1024 ** _power, f"{_letter}b": 1000 ** _power,
        f"{_letter.lower()}b": 1000 ** _power, f"{_decimal}bytes": 1000 ** _power,
        f"{_binary}bytes": 1024 ** _power,
    })
_UNIT = "|".join(re.escape(unit) for unit in UNITS)
_SIZE = re.compile(rf"(?P<num>\d+(?:[,.]\d+)?)\s*(?P<unit>{_UNIT})\b")
_CLOCK = re.compile(r"""(?x)
    (?P<before_secs>
        (?:(?:(?P<days>[0-9]+):)?(?P<hours>[0-9]+):)?(?P<mins>[0-9]+):)?
    (?P<secs>(?(before_secs)[0-9]{1,2}|[0-9]+))
    (?P<ms>[.:][0-9]+)?Z?$""")
_ISO = re.compile(r"""(?ix)(?:P?
        (?:[0-9]+\s*y(?:ears?)?,?\s*)?
        (?:[0-9]+\s*m(?:onths?)?,?\s*)?
        (?:[0-9]+\s*w(?:eeks?)?,?\s*)?
        (?:(?P<days>[0-9]+)\s*d(?:ays?)?,?\s*)?
        T)?
        (?:(?P<hours>[0-9]+)\s*h(?:(?:ou)?rs?)?,?\s*)?
        (?:(?P<mins>[0-9]+)\s*m(?:in(?:ute)?s?)?,?\s*)?
        (?:(?P<secs>[0-9]+)(?P<ms>\.[0-9]+)?\s*s(?:ec(?:ond)?s?)?\s*)?Z?$""")
_WORDS = re.compile(
    r"(?i)(?:(?P<hours>[0-9.]+)\s*(?:hours?)|(?P<mins>[0-9.]+)\s*(?:mins?\.?|minutes?)\s*)Z?$")


def parse_filesize(text: str | None) -> int | None:
    if text is None:
        return None
    match = _SIZE.match(text)
    if not match:
        return None
    return round(float(match.group("num").replace(",", ".")) * UNITS[match.group("unit")])


def parse_duration(text: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    days = ms = None
    if match := _CLOCK.match(text):
        days, hours, mins, secs, ms = match.group("days", "hours", "mins", "secs", "ms")
    elif match := _ISO.match(text):
        days, hours, mins, secs, ms = match.groups()
    elif match := _WORDS.match(text):
        (hours, mins), secs = match.groups(), None
    else:
        return None
    if ms:
        ms = ms.replace(":", ".")
    total = sum(float(part or 0) * mult for part, mult in (
        (days, 86400), (hours, 3600), (mins, 60), (secs, 1), (ms, 1)))
    return int(total) if total.is_integer() else total
