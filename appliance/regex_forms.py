"""Compiled regular expressions kept as plain data, and built again without compiling.

Python's regex compiler is itself Python: yt-dlp's pattern of PeerTube's ~1,000 instances (65 KB)
takes 80-95 ms of CPU to compile here, YouTube's 60 ms, and each zygote compiles the patterns
every URL is tried against (``engine.url_matching``): 0.2 s of its ~0.7 s warm-up, at every
start of the service and every first download after the pool retired; seconds on a Pi. What
the compiler makes of a pattern (the code ``_sre`` runs, its flags and its groups) is numbers
and names: kept in a file, the pattern is built again from it in a few milliseconds.

The form is what ``re._compiler.compile`` hands ``_sre.compile``: private to the standard
library, so a form is kept only when the pattern built from it equals (code, flags and source
compared) the one ``re.compile`` builds, and a form this Python cannot build is compiled anew.
``_sre`` checks that the code it is given is safe to run (damaged code is refused); where the
form is kept must be the service's own, as its bytecode is.
"""

from __future__ import annotations

import _sre
import array
import base64
import re
from re import _compiler as sre_compile  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

# [flags, code, the number of groups less one, {name: group}, [name or None of each group]];
# the code's words (32 bits: _sre's SRE_CODE) in base64: JSON read them as a list of numbers
# in 12 ms, as base64 (and its decoding) in 6 ms (a 65 KB pattern is 51,000 words).
Form = list[Any]
WORD = "I"


def compiled_form(source: str) -> tuple[re.Pattern[str], Form | None]:
    """``re.compile(source)`` and what it built, as plain data (JSON's); None for the form when
    this Python's compiler builds it otherwise."""
    pattern = re.compile(source)
    try:
        parsed = sre_parse.parse(source, 0)
        state = parsed.state
        names: list[str | None] = [None] * state.groups
        for name, group in state.groupdict.items():
            names[group] = name
        code = array.array(WORD, sre_compile._code(parsed, 0))
        form = [state.flags, base64.b64encode(code.tobytes()).decode(), state.groups - 1,
                dict(state.groupdict), names]
    except Exception:  # another Python's compiler: compiled as usual
        return pattern, None
    return pattern, (form if built(source, form) == pattern else None)


def built(source: str, form: Any) -> re.Pattern[str] | None:
    """The pattern ``form`` describes; None when it cannot be built (damaged, or made by
    another Python)."""
    try:
        flags, text, groups, groupindex, names = form
        code = array.array(WORD, base64.b64decode(text, validate=True))
        return _sre.compile(source, flags, code.tolist(), groups, groupindex, tuple(names))
    except Exception:  # _sre refuses code it cannot run (RuntimeError), a wrong type, ...
        return None
