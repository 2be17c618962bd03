"""Options hidden in another option's values: the policy must read a command line exactly as
yt-dlp's parser will, or what it checked is not what runs. ``--replace-in-metadata`` takes
three values; written ``--replace-in-metadata=FIELDS``, the "=" gives the first and the next
two words are the others, whatever they look like."""

from __future__ import annotations

import optparse
import random
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings, started
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for
from yt_dlp.options import create_parser, parseOpts

from appliance.api.app import create_app
from appliance.engine.options import BLOCKED_DESTS, parse_cli, split_options
from appliance.errors import AppError
from appliance.runtime import Runtime
from appliance.store import Item, ItemStore
from appliance.store.records import new_id


def _smuggling(marker: Path) -> str:
    # yt-dlp reads "--no-mtime" and "-f" as two of --replace-in-metadata's values, and the
    # last word as an option of its own: --exec.
    return f"--replace-in-metadata=title --no-mtime -f '--exec=touch {marker}'"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    rt = started(make_settings(tmp_path, YTP_CONSOLE_ENABLED="true"))
    yield rt, TestClient(create_app(rt))
    rt.stop()


def test_a_command_hidden_in_an_options_values_never_runs(
        served: tuple[Runtime, TestClient], origin: MediaOrigin, tmp_path: Path) -> None:
    _rt, client = served
    marker = tmp_path / "ran"
    response = client.simulate_post("/api/history", json={
        "url": origin.clip_url, "cli": _smuggling(marker)})
    assert response.status_code == 200, response.text
    [item] = response.json if isinstance(response.json, list) else [response.json]
    done = wait_for(lambda: (i := client.simulate_get(f"/api/history/{item['id']}").json)
                    ["kind"] == "done" and i, timeout=90, message="the item done")
    assert not marker.exists()
    assert done["status"] == "finished", done
    assert "--exec" in (done.get("removed_options") or item.get("removed_options") or [])


def test_a_preset_that_hides_a_command_is_refused(served: tuple[Runtime, TestClient],
                                                  tmp_path: Path) -> None:
    _rt, client = served
    response = client.simulate_post("/api/presets", json={
        "name": "smuggler", "cli": _smuggling(tmp_path / "ran")})
    assert response.status_code == 400, response.text
    assert "--exec" in response.json["error"]


def test_the_terminal_refuses_a_command_hidden_in_an_options_values(
        served: tuple[Runtime, TestClient], origin: MediaOrigin, tmp_path: Path) -> None:
    _rt, client = served
    marker = tmp_path / "ran"
    response = client.simulate_post("/api/system/terminal", json={
        "command": f"{_smuggling(marker)} {origin.clip_url}"})
    assert response.status_code == 400, response.text
    assert response.json["error"] == "These options are not allowed in the terminal: --exec."
    assert not marker.exists()


def _valued_options() -> list[tuple[str, int]]:
    return sorted({(option.get_opt_string(), option.nargs)
                   for option in create_parser()._get_all_options()
                   if option.takes_value() and option.get_opt_string().startswith("--")})


@pytest.mark.parametrize(("flag", "nargs"), _valued_options())
def test_every_option_takes_its_values_as_ytdlp_reads_them(flag: str, nargs: int) -> None:
    values = ["--no-mtime"] * (nargs - 1)
    assert split_options([f"{flag}=v", *values, "-x"])[0][2] == [f"{flag}=v", *values]
    assert split_options([flag, "v", *values, "-x"])[0][2] == [flag, "v", *values]



def test_an_item_queued_with_a_hidden_command_before_the_fix_is_refused_on_it(
        origin: MediaOrigin, tmp_path: Path) -> None:
    """Its command line stored as an earlier version kept it; judged again when it runs."""
    settings = make_settings(tmp_path)
    marker = tmp_path / "ran"
    store = ItemStore(settings.config_path / "appliance.db")
    queued = Item(id=new_id(), url=origin.clip_url, created_at=store.stamp(),
                  cli=_smuggling(marker))
    store.insert([queued])
    store.close()
    rt = started(settings)
    try:
        done = wait_for(lambda: (i := rt.store.get(queued.id)) and i.kind == "done" and i,
                        timeout=90, message="the queued item ended")
    finally:
        rt.stop()
    assert not marker.exists()
    assert done.status == "error"
    assert "Refused: this item's options --exec are not allowed" in (done.error or done.msg)


# Words a command line may be made of: refused options (whole, abbreviated, "=V", in a short
# cluster), options of one, two and three values, plain words, "-" and "--".
_WORDS = ["--exec", "--exe", "--exec=x", "-o", "-ox", "--replace-in-metadata",
          "--replace-in-metadata=a", "--print-to-file", "--print-to-file=a", "-f", "-fx", "-xf",
          "-xk", "--no-mtime", "--", "-", "x", "--no-exec", "-P", "-Px", "--paths=x",
          "--config-locations", "--config-loc=x", "-a", "-ax", "--batch-file=x", "--alias",
          "--alias=a", "--cookies=x", "--load-info-json", "--format=--exec", "-t", "mp3",
          "--parse-metadata", "--output-na-placeholder", "-xa", "-kP", "--ppa", "--ppa=x",
          "-fa", "--exec-before", "--download-archive", "a", "--netrc-cmd", "-J",
          "--use-postprocessor=x", "--plugin-dirs"]


def test_what_the_policy_keeps_yt_dlp_reads_no_refused_option_from() -> None:
    """yt-dlp's own parser, on what ``parse_cli`` keeps of random command lines: none of the
    refused options is set, and nothing is left as a URL."""
    defaults = create_parser().get_default_values()
    refused = BLOCKED_DESTS - {"print_help", "ignoreconfig"}  # both harmless in a download
    chance = random.Random(11)
    kept_lines = 0
    for _ in range(1500):
        argv = [chance.choice(_WORDS) for _ in range(chance.randint(1, 7))]
        try:
            kept = parse_cli(shlex.join(argv)).args
        except AppError:
            continue  # refused whole
        try:
            _, opts, urls = parseOpts(kept, ignore_config_files=True)
        except optparse.OptParseError:
            continue  # what yt-dlp refuses never runs
        kept_lines += 1
        assert urls == [], (argv, kept)
        for dest in refused:
            value = getattr(opts, dest, None)
            assert not value or value == getattr(defaults, dest, None), (argv, kept, dest)
    assert kept_lines > 300  # the sample reaches yt-dlp's parser, not only refusals
