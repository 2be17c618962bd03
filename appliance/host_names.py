"""What a host name may look like: labels of 1 to 63 letters, digits, hyphens (not at either
end) or underscores (container and LAN names use them, and resolvers take them), separated by
single dots, 253 characters at most."""

from __future__ import annotations

import re

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def is_host_name(name: str) -> bool:
    """``name`` (without a final dot) is a well-formed host name."""
    return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))
