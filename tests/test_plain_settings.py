"""A bad config.yml stops the start with one line a person can fix the file by: the file's
path, the line (and column, for a YAML error), the setting, what is wrong; an unknown key with
the setting it is likely a typo of. A value is never repeated when it may be a secret."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import falcon.testing
import pytest

from appliance.config import load_settings
from appliance.runtime import Runtime
from appliance.setting_fields import SettingsError


def refusal(folder: Path, content: str) -> str:
    (folder / "config.yml").write_text(content)
    with pytest.raises(SettingsError) as caught:
        load_settings({"YTP_CONFIG_PATH": str(folder)})
    return str(caught.value)


@pytest.mark.parametrize(("content", "place"), [
    ("max_workers: 2\nport: [1\nhost: x\n", "line 2, column 7: "),  # where the [ opens
    ("max_workers: 2\n  port: 1\n", "line 2, column 7: "),
    ("# the box's settings\n\nport: 'x\n", "line 3, column 7: "),
])
def test_a_yaml_error_names_the_file_and_the_line(tmp_path: Path, content: str,
                                                   place: str) -> None:
    assert refusal(tmp_path, content).startswith(
        f"{tmp_path}/config.yml: {place}cannot read config file: ")


def test_a_wrong_value_names_the_file_the_setting_and_its_line(tmp_path: Path) -> None:
    said = refusal(tmp_path, "# the box's settings\nport: 8081\nmax_workers: two\n")
    assert said == (f"{tmp_path}/config.yml max_workers: expected a whole number, got 'two' "
                    f"on line 3")
    said = refusal(tmp_path, "YTP_MAX_WORKERS: 99\n")
    assert said == f"{tmp_path}/config.yml max_workers: must be at most 64, got 99 on line 1"


def test_an_unknown_setting_names_its_line_and_what_it_is_likely_a_typo_of(
        tmp_path: Path) -> None:
    said = refusal(tmp_path, "port: 8081\nmax_wrokers: 2\n")
    assert said == (f"{tmp_path}/config.yml: unknown setting 'max_wrokers' on line 2 (did you "
                    f"mean max_workers? `appliance settings` lists them all)")
    said = refusal(tmp_path, "colour: blue\n")
    assert said == (f"{tmp_path}/config.yml: unknown setting 'colour' on line 1 "
                    f"(`appliance settings` lists them all)")


def test_a_bad_password_is_refused_without_repeating_it(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(
        'auth_username: bob\nauth_password: "hunter2\\0"\n')
    env = {"YTP_CONFIG_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    # the command's own output, as the journal gets it
    done = subprocess.run([sys.executable, "-m", "appliance", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "hunter2" not in done.stdout + done.stderr
    assert done.stderr.strip() == (
        f"appliance: bad setting: {tmp_path}/config.yml auth_password: a NUL byte cannot be "
        f"part of a setting (character 8 of 8) on line 2")


def test_a_config_folder_that_is_a_file_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("")
    with pytest.raises(SettingsError) as caught:
        load_settings({"YTP_CONFIG_PATH": str(tmp_path / "config")})
    assert str(caught.value) == f"YTP_CONFIG_PATH: {tmp_path}/config is a file, not a folder"


def test_saved_settings_that_cannot_be_read_say_why_without_an_errno(tmp_path: Path) -> None:
    (tmp_path / "settings.json").mkdir()  # a folder where the file should be
    with pytest.raises(SettingsError) as caught:
        load_settings({"YTP_CONFIG_PATH": str(tmp_path)})
    assert str(caught.value) == (f"{tmp_path}/settings.json: cannot read saved settings: Is a "
                                 f"directory")


def test_a_download_folder_refused_through_the_api_is_named_as_the_api_names_it(
        app_with: Callable[..., tuple[Runtime, falcon.testing.TestClient]],
        tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.yml").write_text(f"download_path: {tmp_path / 'downloads'}\n")
    _, client = app_with({"YTP_CONFIG_PATH": str(config), "YTP_TEMP_PATH": str(tmp_path / "t")})
    refused = client.simulate_put("/api/settings", json={"download_directory": "/etc"})
    assert refused.status_code == 400, refused.text
    # (it said "download_path (download_path): …", a name the API does not have)
    assert refused.json["error"] == ("download_directory: /etc is, contains or lies inside the "
                                     "system folder /etc; choose a folder of its own for "
                                     "downloads")
