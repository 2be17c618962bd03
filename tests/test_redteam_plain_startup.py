"""Red team (plain17): a download folder the service may not write stops the start with the
setting, the folder, whose it must be and what to do; it said "YTP_DOWNLOAD_PATH: /srv/media
is not writable" and, for one it could not make, "cannot create …: Permission denied"."""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from support.server import free_port_pair

ROOT = os.geteuid() == 0
USER = pwd.getpwuid(os.geteuid()).pw_name


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """``folder`` refused to this user: as root (who ignores permission bits) made immutable."""
    folder.mkdir()
    if ROOT:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o500)
    try:
        yield
    finally:
        if ROOT:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o700)


def serve(tmp_path: Path, downloads: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("YTP_")},
           "YTP_CONFIG_PATH": str(tmp_path / "config"), "YTP_TEMP_PATH": str(tmp_path / "tmp"),
           "YTP_DOWNLOAD_PATH": str(downloads), "YTP_HOST": "127.0.0.1",
           "YTP_PORT": str(free_port_pair())}
    return subprocess.run([sys.executable, "-m", "appliance", "serve"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_download_folder_the_service_may_not_write_says_whose_it_must_be(
        tmp_path: Path) -> None:
    media = tmp_path / "media"
    with unwritable(media):
        written = serve(tmp_path, media)
        made = serve(tmp_path, media / "shows" / "new")
    assert written.returncode == made.returncode == 2
    assert written.stderr.strip() == (
        f"appliance: bad setting: YTP_DOWNLOAD_PATH: {media} is not writable by the user the "
        f"service runs as ({USER}): give it the folder (sudo chown {USER} {media}), or choose "
        f"another")
    # the folder to give is the one it would be made in
    assert made.stderr.strip().startswith(
        f"appliance: bad setting: YTP_DOWNLOAD_PATH: cannot create {media}/shows/new: "), made
    assert made.stderr.strip().endswith(
        f" by the user the service runs as ({USER}): give it the folder (sudo chown {USER} "
        f"{media}), or choose another"), made.stderr
