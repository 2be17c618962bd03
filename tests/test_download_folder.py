"""Which folders may be the download folder (appliance/download_folder.py): never one where a
written file changes what the service or the system does. Decided on resolved paths, both
ways, and on where they are on their disks (a bind mount, a second mount of a disk: real
mounts, as root), at start-up (``load_settings``) and for a change while running
(``with_changes``, what ``PUT /api/settings`` runs)."""

from __future__ import annotations

import contextlib
import pwd
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import appliance
from appliance.config import SettingsError, load_settings, with_changes
from appliance.download_folder import download_folder_problem


def problem(tmp_path: Path, folder: Path | str) -> str | None:
    return download_folder_problem(Path(folder), tmp_path / "config", tmp_path / "temp")


@pytest.mark.parametrize("where", ["config", "config/downloads", "."])  # is, inside, contains
def test_never_the_config_folder_nor_near_it(tmp_path: Path, where: str) -> None:
    folder = (tmp_path / where).resolve()
    assert problem(tmp_path, folder) == (
        f"{folder} is, contains or lies inside the config folder ({tmp_path / 'config'})")


@pytest.mark.parametrize("where", ["temp", "temp/x"])
def test_never_the_temp_folder_nor_inside_it(tmp_path: Path, where: str) -> None:
    (tmp_path / "config").mkdir()  # beside, not related: only the temp folder is named
    folder = tmp_path / where
    assert problem(tmp_path, folder) == (
        f"{folder} is, contains or lies inside the temp folder ({tmp_path / 'temp'})")


def test_never_the_programs_own_installation_nor_pythons(tmp_path: Path) -> None:
    package = Path(appliance.__file__).parent.resolve()
    assert problem(tmp_path, package / "engine") == (
        f"{package / 'engine'} is, contains or lies inside the program's installation "
        f"({package})")
    environment = Path(sys.prefix).resolve()
    assert problem(tmp_path, environment / "share" / "media") == (
        f"{environment / 'share' / 'media'} is, contains or lies inside the Python "
        f"environment ({environment})")
    import yt_dlp

    ytdlp = Path(yt_dlp.__file__).parent.resolve()
    # inside the environment too; named as yt-dlp's, which is asked first
    assert problem(tmp_path, ytdlp / "extractor") == (
        f"{ytdlp / 'extractor'} is, contains or lies inside yt-dlp's installation ({ytdlp})")


@pytest.mark.parametrize(("folder", "reason"), [
    ("/etc", "is, contains or lies inside the system folder /etc"),
    ("/usr/local/media", "is, contains or lies inside the system folder /usr"),
    ("/home", "is or contains /home, a system or home folder"),
    ("/var/lib", "is or contains /var/lib, a system or home folder"),
    ("/mnt", "is or contains /mnt, a system or home folder"),
])
def test_never_a_system_folder(tmp_path: Path, folder: str, reason: str) -> None:
    assert problem(tmp_path, folder) == f"{folder} {reason}"
    assert problem(tmp_path, "/") is not None  # contains everything (first: the config folder)


def test_never_a_users_home_nor_a_folder_holding_one(tmp_path: Path) -> None:
    home = Path(pwd.getpwnam("nobody").pw_dir)  # Debian's: /nonexistent
    assert problem(tmp_path, home) == f"{home} is or contains {home}, a system or home folder"
    assert problem(tmp_path, home / "media") is None  # inside one is what usually is


@pytest.mark.parametrize("folder", ["/var/lib/appliance/downloads", "/mnt/usb", "/srv/media",
                                    "/media/pi/disk", "/home/pi/Videos"])
def test_what_a_download_folder_usually_is_is_fine(tmp_path: Path, folder: str) -> None:
    assert problem(tmp_path, folder) is None


def test_decided_on_the_resolved_folder(tmp_path: Path) -> None:
    link = tmp_path / "media"
    link.symlink_to("/etc")
    assert problem(tmp_path, link) == "/etc is, contains or lies inside the system folder /etc"
    inner = tmp_path / "config" / "x"
    inner.mkdir(parents=True)
    (tmp_path / "elsewhere").symlink_to(inner)
    assert "the config folder" in (problem(tmp_path, tmp_path / "elsewhere") or "")


def test_refused_at_start_and_while_running_naming_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "config"
    with pytest.raises(SettingsError) as refused:
        load_settings({"YTP_CONFIG_PATH": str(config), "YTP_DOWNLOAD_PATH": "/etc"})
    assert str(refused.value) == (
        "download_path (YTP_DOWNLOAD_PATH): /etc is, contains or lies inside the system folder "
        "/etc; choose a folder of its own for downloads")
    settings = load_settings({"YTP_CONFIG_PATH": str(config),
                              "YTP_DOWNLOAD_PATH": str(tmp_path / "downloads")})
    with pytest.raises(SettingsError,
                       match=r"^download_path \(download_path\): .* inside the config folder"):
        with_changes(settings, {"download_path": str(config / "media")})
    moved = with_changes(settings, {"download_path": str(tmp_path / "media")})
    assert moved.download_path == tmp_path / "media"


@contextlib.contextmanager
def bound(source: Path, seen: Path) -> Iterator[Path]:
    """``source`` bind-mounted, read-only, at ``seen`` (made): the same folder under another
    path that no ``realpath`` leads back from. Read-only: a clean-up that walks the test's
    folder must not delete through it if the unmount fails."""
    seen.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(seen)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(seen)], check=True)
        yield seen
    finally:
        subprocess.run(["umount", str(seen)], check=True)


def test_a_bind_mount_of_the_config_folder_is_the_config_folder(tmp_path: Path) -> None:
    """A download folder written through a bind mount writes into the folder bound: into the
    config folder (config.yml switches the console on) as much as at its own path."""
    config = tmp_path / "config"
    (config / "presets").mkdir(parents=True)
    settings = load_settings({"YTP_CONFIG_PATH": str(config),
                              "YTP_DOWNLOAD_PATH": str(tmp_path / "downloads")})
    with bound(config, tmp_path / "media view") as seen:  # (a blank: escaped in the table)
        for folder, other in ((seen, config), (seen / "presets", config)):
            assert problem(tmp_path, folder) == (
                f"{folder} is, contains or lies inside the config folder ({other}, the same "
                "folder through another mount of its disk)")
        with pytest.raises(SettingsError, match=r"^download_path \(download_path\): "
                           + re.escape(f"{seen / 'new'} is, contains or lies inside the config "
                                       "folder")):
            with_changes(settings, {"download_path": str(seen / "new")})
    assert problem(tmp_path, tmp_path / "media view") is None  # unmounted: its own folder


def test_a_system_folder_mounted_again_is_that_system_folder(tmp_path: Path) -> None:
    with bound(Path("/etc"), tmp_path / "etc-view") as seen:
        assert problem(tmp_path, seen / "media") == (
            f"{seen / 'media'} is, contains or lies inside the system folder /etc, the same "
            "folder through another mount of its disk")
    with bound(Path("/var/log"), tmp_path / "logs-view") as seen:
        assert problem(tmp_path, seen) == (
            f"{seen} is or contains /var/log, a system or home folder, the same folder "
            "through another mount of its disk")
        assert problem(tmp_path, seen / "media") is None  # inside one is fine, as at its path
