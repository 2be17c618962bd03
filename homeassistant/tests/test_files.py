"""The integration's files agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from scripts import translations

COMPONENT = Path(__file__).resolve().parent.parent / "custom_components" / "appliance"


def test_translations_are_built_from_strings() -> None:
    assert (COMPONENT / "translations" / "en.json").read_text() == translations.build(), (
        "run homeassistant/scripts/translations.py")


def test_every_action_is_described_and_translated() -> None:
    described = yaml.safe_load((COMPONENT / "services.yaml").read_text())
    strings = json.loads((COMPONENT / "strings.json").read_text())["services"]
    icons = json.loads((COMPONENT / "icons.json").read_text())["services"]
    assert set(described) == set(strings) == set(icons) == {
        "add_url", "cancel", "retry", "run_task"}
    for name, spec in described.items():
        assert set(spec["fields"]) == set(strings[name]["fields"]), name


def test_quality_scale_says_something_for_every_rule_it_lists() -> None:
    rules = yaml.safe_load((COMPONENT / "quality_scale.yaml").read_text())["rules"]
    for name, rule in rules.items():
        if isinstance(rule, dict):
            assert rule["status"] in {"exempt", "todo", "done"}, name
            assert rule["status"] == "done" or rule.get("comment"), name
        else:
            assert rule == "done", name
