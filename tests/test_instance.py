"""One service per config folder: the lock another process holds, the one a killed process
left behind, and a lock file that cannot be opened; the instance id on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.instance import ID_NAME, LOCK_NAME, AlreadyRunning, hold_lock, instance_id
from appliance.setting_fields import SettingsError

_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture(name="config")
def _config(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir()
    return tmp_path / "config"


@pytest.fixture(name="holder")
def _holder(config: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the config folder's lock (as a running service does)."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(config / LOCK_NAME)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    yield process
    process.kill()
    process.wait()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _env(monkeypatch: pytest.MonkeyPatch, root: Path, config: Path) -> None:
    monkeypatch.setenv("YTP_CONFIG_PATH", str(config))
    monkeypatch.setenv("YTP_DOWNLOAD_PATH", str(root / "downloads"))
    monkeypatch.setenv("YTP_TEMP_PATH", str(root / "temp"))


def test_a_second_service_is_refused_until_the_first_is_gone_however_it_ended(
        tmp_path: Path, config: Path, holder: subprocess.Popen[str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(AlreadyRunning) as refused:
        hold_lock(config)
    assert str(refused.value) == (f"the service is running with the config folder {config} "
                                  f"(a process holds {config / LOCK_NAME})")
    _env(monkeypatch, tmp_path, config)
    assert main(["serve"]) == 2  # systemd does not start it again and again
    assert capsys.readouterr().err == f"appliance: {refused.value}\n"
    # Killed: its lock file stays, its lock does not (the kernel drops it).
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (config / LOCK_NAME).exists()
    (config / LOCK_NAME).unlink()  # made again, readable by all (it holds nothing)
    fd = hold_lock(config)
    assert (config / LOCK_NAME).stat().st_mode & 0o777 == 0o644 & ~_umask()
    try:
        with pytest.raises(AlreadyRunning):  # held here now: refused to anyone else
            hold_lock(config)
    finally:
        os.close(fd)
    os.close(hold_lock(config))  # closed: free again


def test_a_lock_file_that_cannot_be_opened_is_a_plain_error(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A folder by the lock's name (or a file of another user's): one line and the exit
    status systemd does not restart on, not a traceback on every restart."""
    (config / LOCK_NAME).mkdir()
    with pytest.raises(SettingsError, match=r"^YTP_CONFIG_PATH: cannot open .*: Is a direc"):
        hold_lock(config)
    _env(monkeypatch, tmp_path, config)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (f"appliance: bad setting: YTP_CONFIG_PATH: cannot open "
                                       f"{config / LOCK_NAME}: Is a directory\n")


def test_the_instance_id_is_made_once_and_an_unusable_one_replaced(tmp_path: Path) -> None:
    made = instance_id(tmp_path)
    assert len(made) == 32 and int(made, 16) >= 0
    assert (tmp_path / ID_NAME).read_text() == made + "\n"
    assert instance_id(tmp_path) == made
    (tmp_path / ID_NAME).write_text(f"  {made.upper()}\n")  # hex, but not the form written
    upper = instance_id(tmp_path)
    assert upper != made and (tmp_path / ID_NAME).read_text() == upper + "\n"
    for text in (b"\xff" * 32, b"", made.encode()[:31], b"g" * 32, made.encode() + b"0"):
        (tmp_path / ID_NAME).write_bytes(text)
        new = instance_id(tmp_path)
        assert len(new) == 32 and new != made and (tmp_path / ID_NAME).read_text() == new + "\n"
    (tmp_path / ID_NAME).write_text(f"\n{made}  \n")  # spaces and lines around: the same id
    assert instance_id(tmp_path) == made
