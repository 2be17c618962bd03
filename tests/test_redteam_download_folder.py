"""A red team's try at the download folder itself: a home folder's hidden folders (``.ssh``,
``.config``, ``.local``) hold its programs' settings and code, so a download folder there let
a site's file become ``authorized_keys``, an autostart entry or a ``.pth`` that runs at the
next Python start. Refused at start-up and for a change while running (``with_changes``, what
``PUT /api/settings`` runs), before anything is made."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from appliance.config import SettingsError, load_settings, with_changes
from appliance.download_folder import download_folder_problem

# Debian's nobody: /nonexistent, a home no test makes
HOME = Path(pwd.getpwnam("nobody").pw_dir)


@pytest.mark.parametrize(("below", "hidden"), [
    (".ssh", ".ssh"),
    (".config/autostart", ".config"),
    (".local/lib/python3.12/site-packages", ".local"),
    ("Videos/.hidden/show", "Videos/.hidden"),
])
def test_never_inside_a_home_folders_hidden_folder(tmp_path: Path, below: str,
                                                   hidden: str) -> None:
    folder = HOME / below
    assert download_folder_problem(folder, tmp_path / "config", tmp_path / "temp") == (
        f"{folder} lies inside {HOME / hidden}, a home folder's hidden folder")


def test_a_plain_folder_of_a_home_and_a_dotted_name_elsewhere_stay_fine(tmp_path: Path) -> None:
    config, temp = tmp_path / "config", tmp_path / "temp"
    assert download_folder_problem(HOME / "Videos" / "a.b", config, temp) is None
    assert download_folder_problem(tmp_path / ".media", config, temp) is None  # no one's home


def test_refused_while_running_and_at_start_before_anything_is_made(tmp_path: Path) -> None:
    config = tmp_path / "config"
    settings = load_settings({"YTP_CONFIG_PATH": str(config),
                              "YTP_DOWNLOAD_PATH": str(tmp_path / "downloads")})
    with pytest.raises(SettingsError, match=r"hidden folder; choose a folder of its own"):
        with_changes(settings, {"download_path": str(HOME / ".ssh")})
    with pytest.raises(SettingsError, match=r"^download_path \(YTP_DOWNLOAD_PATH\): .*\.config"):
        load_settings({"YTP_CONFIG_PATH": str(config),
                       "YTP_DOWNLOAD_PATH": str(HOME / ".config" / "autostart")})
    assert not HOME.exists()
