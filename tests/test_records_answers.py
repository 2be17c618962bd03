"""What the configured records (presets, conditions, archives) answer a person who gets them
wrong, word for word, and what they keep of what is right."""

from __future__ import annotations

import sys

import pytest
from falcon.testing import TestClient

from appliance.engine.requests import NOT_IN_A_URL, check_url
from appliance.errors import AppError
from appliance.runtime import Runtime


def _post(client: TestClient, path: str, body: dict) -> dict:
    response = client.simulate_post(path, json=body)
    assert response.status_code in {200, 201}, response.text
    return response.json


def test_a_preset_shows_whether_it_is_shipped_as_default_only(client: TestClient) -> None:
    _post(client, "/api/presets", {"name": "mine", "cli": "-f best"})
    listed = client.simulate_get("/api/presets?per_page=100").json["items"]
    presets = {p["name"]: p for p in listed}
    assert presets["mine"]["default"] is False
    assert presets["audio-mp3"]["default"] is True
    assert not [p for p in presets.values() if "builtin" in p]


def test_a_presets_template_is_kept_as_checked(client: TestClient) -> None:
    made = _post(client, "/api/presets", {"name": "trim", "template": "  %(id)s.%(ext)s \n"})
    assert made["template"] == "%(id)s.%(ext)s"
    assert client.simulate_get(f"/api/presets/{made['id']}").json["template"] == \
        "%(id)s.%(ext)s"


def test_a_preset_in_use_names_five_users_and_counts_the_rest(client: TestClient) -> None:
    preset = _post(client, "/api/presets", {"name": "shared"})
    for number in range(7):
        _post(client, "/api/conditions", {"name": f"c{number}", "filter": "duration > 1",
                                          "extras": {"preset": "shared"}})
    response = client.simulate_delete(f"/api/presets/{preset['id']}")
    assert response.status_code == 409, response.text
    assert response.json["error"] == (
        "Preset 'shared' cannot be deleted: condition 'c0', condition 'c1', condition 'c2', "
        "condition 'c3', condition 'c4' and 2 more use it. Give them another preset first.")


@pytest.mark.parametrize(("body", "error"), [
    ({"enabled": "yes"}, "enabled must be true or false."),
    ({"extras": {"skip": "yes"}}, "extras.skip must be true or false."),
    ({"priority": 2**31}, "priority must be between -2147483648 and 2147483647."),
])
def test_a_conditions_wrong_values_are_named(client: TestClient, body: dict,
                                             error: str) -> None:
    response = client.simulate_post("/api/conditions", json={
        "name": "c", "filter": "duration > 1", **body})
    assert response.status_code == 400, response.text
    assert response.json["error"] == error


def test_an_archive_of_an_unknown_preset_is_a_bad_request(client: TestClient) -> None:
    response = client.simulate_get("/api/archiver", params={"preset": "nope"})
    assert response.status_code == 400, response.text
    assert response.json == {"error": "Preset 'nope' not found.", "code": "INVALID_REQUEST"}


@pytest.mark.parametrize(("body", "error"), [
    (["http://x.invalid/a.mp4"], "each item must be a JSON object with a url."),
    ({"url": "http://x.invalid/a\x7f.mp4"}, "url must not contain spaces or control characters."),
    ({"url": "http://x.invalid/a\x01.mp4"}, "url must not contain spaces or control characters."),
    ({"url": "http://x.invalid/a.mp4", "preset": "nope"}, "Preset 'nope' not found."),
])
def test_an_add_that_is_wrong_is_named(client: TestClient, body: object, error: str) -> None:
    response = client.simulate_post("/api/history", json=body)
    assert response.status_code == 400, response.text
    assert response.json == {"error": error, "code": "INVALID_REQUEST"}


def test_a_url_holding_a_space_or_a_control_character_is_refused() -> None:
    """Every character Python calls a space (NBSP, U+2028, U+3000 ...), the C0 controls and
    DEL; any other character is the URL's own (an IRI's letters)."""
    refused = [chr(code) for code in range(sys.maxunicode + 1)
               if chr(code).isspace() or code < 0x20 or code == 0x7F]
    assert len(refused) > 40 and "\u3000" in refused and "\x85" in refused
    for ch in refused:
        with pytest.raises(AppError, match="must not contain spaces or control characters"):
            check_url(f"http://x.invalid/a{ch}b")
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert {found.group() for found in NOT_IN_A_URL.finditer(every)} == set(refused)
    assert check_url("http://x.invalid/é\x80\u200b") == "http://x.invalid/é\x80\u200b"


def test_a_shipped_preset_keeps_its_ffmpeg_arguments_when_it_is_used(
        runtime: Runtime) -> None:
    # (ffmpeg arguments are refused in a person's preset: they can name any file)
    args = runtime.engine.presets.resolve("mobile-mp4").cli_args
    assert args[args.index("--ppa") + 1] == "ffmpeg:-movflags +faststart"
