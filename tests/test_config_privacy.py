"""The config folder is its owner's alone, and a user who may not read it is told so.

It holds the database (sites' cookies, notification credentials), its backups and the auth
file. Under the unit's ``UMask=0027`` (media readable by Jellyfin's or Samba's group) it was
the group's to read, and made by hand under umask 022, everyone's on the box. A user who
cannot read it (an admin running ``appliance status`` without sudo) got a traceback."""

from __future__ import annotations

import io
import logging
import os
import pickle
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.commands import isolated_home

from appliance import cli
from appliance.atomic import private_folder
from appliance.auth.authfile import AuthFile
from appliance.config import SettingsError, ensure_folders, load_settings

home = pytest.fixture(isolated_home)
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


def as_another_user(folder: Path, work: Callable[[], Any], *, deny: bool = True) -> Any:
    """What ``work`` answers (or raises, as text) run by another user than ``folder``'s
    owner, who may not enter it when ``deny``: nobody, in a child of this process (root
    here); for a test run without root, the folder's owner with its permissions taken
    away."""
    if os.geteuid() != 0 and deny:
        folder.chmod(0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            answer: Any = ("answer", work())
        except BaseException as exc:  # the parent judges it
            answer = ("raised", f"{type(exc).__name__}: {exc}")
        os.write(write, pickle.dumps(answer))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    if deny:
        folder.chmod(0o700)
    return pickle.loads(data)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_the_config_folder_is_made_for_its_owner_alone(
        home: Path, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    settings = load_settings()
    ensure_folders(settings)
    assert mode(settings.config_path) == 0o700
    # the media stay the group's to read, as the unit's UMask says
    assert mode(settings.download_path) == 0o777 & ~mask


def test_an_open_config_folder_is_closed_and_said(
        home: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings()
    settings.config_path.mkdir(parents=True)
    settings.config_path.chmod(0o755)
    (settings.config_path / "appliance.db").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="appliance.atomic"):
        ensure_folders(settings)
    assert mode(settings.config_path) == 0o700
    assert f"{settings.config_path} could be read by others (mode 755)" in caplog.text
    caplog.clear()
    ensure_folders(settings)  # closed already: nothing to say
    assert "could be read" not in caplog.text


def test_a_password_set_before_the_first_start_makes_the_folder_closed(
        home: Path, umask: Callable[[int], None]) -> None:
    """``appliance web passwd`` before the service ever ran makes the folder first."""
    folder = load_settings().config_path
    AuthFile(folder).update(lambda state: state)
    assert mode(folder) == 0o700


def test_a_user_who_cannot_read_the_settings_is_told_which_file(home: Path) -> None:
    settings = load_settings()
    ensure_folders(settings)
    (settings.config_path / "config.yml").write_text("port: 9000\n")
    kind, said = as_another_user(settings.config_path, load_settings)
    assert kind == "raised", said
    assert said == (f"SettingsError: {settings.config_path}/config.yml: cannot read config "
                    "file: Permission denied")


def test_status_by_a_user_who_cannot_read_the_settings_says_so(home: Path) -> None:
    """No traceback: the command says there is no service to connect to and why the local
    one's settings could not be used."""
    settings = load_settings()
    ensure_folders(settings)

    def status() -> tuple[int, str]:
        os.environ["XDG_CONFIG_HOME"] = "/nonexistent"  # the user's own: no client file
        sys.stderr = io.StringIO()
        code = cli.main(["status"])
        return code, sys.stderr.getvalue()

    kind, (code, said) = as_another_user(settings.config_path, status)
    assert (kind, code) == ("answer", 1), said
    assert said.startswith("appliance: no service to connect to: give --url"), said
    assert said.endswith(f"(the local service's settings are not usable: "
                         f"{settings.config_path}/config.yml: cannot read config file: "
                         "Permission denied)\n"), said


def test_a_config_file_that_is_not_utf8_is_a_settings_error(home: Path) -> None:
    folder = Path(os.environ["YTP_CONFIG_PATH"])
    folder.mkdir(parents=True)
    (folder / "config.yml").write_bytes(b"port: 9000 # \xff\xfe\n")
    with pytest.raises(SettingsError, match=r"config\.yml: cannot read config file: 'utf-8'"):
        load_settings()


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's folder needs root to make")
def test_a_folder_that_cannot_be_closed_is_said_so(tmp_path: Path) -> None:
    """The service's user does not own it (made by hand as another user): the warning says
    it stays open, never that it was closed."""
    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # (a test's own folder: nobody may not enter)
    try:
        shared.chmod(0o755)

        def close() -> list[str]:
            said: list[str] = []
            handler = logging.Handler()
            handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
            logging.getLogger("appliance.atomic").addHandler(handler)
            private_folder(shared)
            return said

        kind, said = as_another_user(shared, close, deny=False)
        assert kind == "answer", said
        assert said == [f"{shared} can be read by others (mode 755) and cannot be closed: "
                        "Operation not permitted"]
        assert mode(shared) == 0o755
    finally:
        shutil.rmtree(shared)
