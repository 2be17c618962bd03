"""Text that XML 1.0 can hold: what a site's metadata puts in an NFO file must not make it
unreadable (ElementTree writes a control character as it is, and no reader takes it back)."""

from __future__ import annotations

import re

# Outside XML 1.0's Char production: C0 controls but tab, newline and carriage return;
# surrogates; U+FFFE and U+FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """``value`` as text with the characters XML 1.0 forbids dropped."""
    return _FORBIDDEN.sub("", str(value))
