"""Searching the items' titles and URLs: the words of a search, as SQL.

Words of three characters or more are looked up in ``items_search``, an FTS5 index with the
trigram tokenizer over ``items.title`` and ``items.url`` (kept by triggers, see
``database.py``): a substring match in any case (Unicode case folding) that reads only the
matching rows. Shorter words cannot be trigram-indexed and become ``LIKE`` on the rows, in
any case too (see ``_forms``). At 100,000 items, ``LIKE`` alone read every row on every
request (45 ms a query, twice per page for the total); the index answers a selective search
in about 1 ms (``bench/history_scale.py``, whose figures docs/API.md gives).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import invalid

TRIGRAM = 3  # the shortest word the trigram index can find
# A word shorter than that is looked for in every item the others leave (LIKE): each one is
# a scan of the history when it is common (0.1-0.2 s at 100,000 items). A search of 45 such
# words, within the 200 characters a search may have, held a request thread 3 s, counted
# again after every write; more than this many are refused.
MAX_SHORT_WORDS = 4
# The most case forms a word is looked for in (see _forms); only a long word read without the
# index can have more, and it is then looked for as typed and in lower case.
MAX_FORMS = 8


def _phrase(word: str) -> str:
    """An FTS5 string: every character literal (quotes doubled), no operators."""
    return '"' + word.replace('"', '""') + '"'


def _like(word: str) -> str:
    """A LIKE pattern finding ``word`` anywhere, ``%`` ``_`` and ``\\`` taken literally."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _ascii_lower(text: str) -> str:
    """``text`` lowered as SQLite's ``lower()`` lowers it: ASCII letters only."""
    return "".join(c.lower() if c.isascii() else c for c in text)


def _forms(word: str) -> list[str]:
    """What ``lower(column)`` holds where ``word`` is written in any case. SQLite's
    ``lower()`` folds ASCII only and leaves "Öl" as it is: a word lowered in Python alone
    ("öl") never matched it, nor did "Öl" typed as written. So each other letter is looked
    for in both cases."""
    forms = [""]
    for char in word:
        options = [char.lower()] if char.isascii() else list(dict.fromkeys(
            _ascii_lower(c) for c in (char, char.lower(), char.upper())))
        forms = [form + option for form in forms for option in options]
        if len(forms) > MAX_FORMS:
            return list(dict.fromkeys((_ascii_lower(word), _ascii_lower(word.lower()))))
    return forms


@dataclasses.dataclass(frozen=True)
class TextSearch:
    """Words that must each appear in an item's title or URL, in any case."""

    words: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | None) -> TextSearch | None:
        words = tuple(dict.fromkeys((text or "").split()))
        if sum(1 for word in words if len(word) < TRIGRAM) > MAX_SHORT_WORDS:
            raise invalid(f"search may hold at most {MAX_SHORT_WORDS} words shorter than "
                          f"{TRIGRAM} characters (each is looked for in every item).")
        return cls(words) if words else None

    def indexed(self, indexed: bool = True) -> tuple[str, list[str], dict[str, Any]]:
        """``(match, conditions, scope)``: the FTS5 query for the long words ('' when there
        is none, or no index), SQL conditions on ``items`` for the others and their
        parameters."""
        long_words = [w for w in self.words if indexed and len(w) >= TRIGRAM]
        conditions, scope = [], {}
        for n, word in enumerate(w for w in self.words if w not in long_words):
            # Pony makes LIKE case-sensitive (PRAGMA case_sensitive_like), so the columns are
            # lowered and the word is looked for in each of its forms. SQLite's lower() folds
            # ASCII only; Pony's py_lower (Python's, Unicode) would call into Python for every
            # row, holding the interpreter lock for the whole scan (0.2-0.4 s at 100,000
            # items) while the other requests wait.
            alternatives = []
            for m, form in enumerate(_forms(word)):
                scope[f"word{n}_{m}"] = _like(form)
                alternatives += [f"lower(items.title) LIKE $word{n}_{m} ESCAPE '\\'",
                                 f"lower(items.url) LIKE $word{n}_{m} ESCAPE '\\'"]
            conditions.append(f"({' OR '.join(alternatives)})")
        return " AND ".join(_phrase(w) for w in long_words), conditions, scope

    def finds(self, title: str, url: str) -> bool:
        """The same test on values in memory (the queue)."""
        text = f"{title}\n{url}".casefold()
        return all(word.casefold() in text for word in self.words)
