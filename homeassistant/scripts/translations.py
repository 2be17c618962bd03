"""Writes translations/en.json from strings.json, resolving ``[%key:common::…%]`` references
the way Home Assistant's own build does for core integrations (custom integrations ship the
resolved file). Run with the Home Assistant test environment's Python:

    .venv-ha/bin/python homeassistant/scripts/translations.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import homeassistant

COMPONENT = Path(__file__).resolve().parent.parent / "custom_components" / "appliance"
REFERENCE = re.compile(r"\[%key:([a-z0-9_:]+)%\]")


def _lookup(tree: dict[str, Any], path: str) -> str:
    node: Any = tree
    for part in path.split("::"):
        node = node[part]
    if not isinstance(node, str):
        raise KeyError(path)
    return node


def resolve(node: Any, common: dict[str, Any], own: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: resolve(value, common, own) for key, value in node.items()}
    if isinstance(node, str):
        def replace(match: re.Match[str]) -> str:
            key = match.group(1)
            if key.startswith("common::"):
                return _lookup(common, key.removeprefix("common::"))
            return _lookup(own, key)

        return REFERENCE.sub(replace, node)
    return node


def build() -> str:
    common = json.loads((Path(homeassistant.__file__).parent / "strings.json").read_text())
    own = json.loads((COMPONENT / "strings.json").read_text())
    return json.dumps(resolve(own, common["common"], own), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    target = COMPONENT / "translations" / "en.json"
    text = build()
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date: run {__file__}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
