"""The ``appliance`` command's ``main()`` run in the test process, in a home of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cli

# What a terminal takes for a command (ESC, BEL, CSI): none may reach it from a service.
CONTROLS = "\x1b\x07\x9b"


def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fixture's body: HOME, the config folders and the service's folders in ``tmp_path``,
    no service named by the environment."""
    for name in ("APPLIANCE_URL", "APPLIANCE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("YTP_CONFIG_PATH", str(tmp_path / "config"))
    monkeypatch.setenv("YTP_DOWNLOAD_PATH", str(tmp_path / "downloads"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``appliance ARGS``: its exit code, stdout and stderr (never a control character)."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    assert not any(ch in out + err for ch in CONTROLS), (out, err)
    return code, out, err
