"""``appliance`` commands stopped by the person or by their input: a real Ctrl-C (SIGINT)
and a closed stdin at the password prompt, each in a process of its own (these judge no
mutant: mutmut's runs see only what runs in the test process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.hostile import Held, HostileService, hostile_service
from support.server import wait_for

service = pytest.fixture(hostile_service)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


def command(home: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """``appliance ARGS`` as a process of its own, with no terminal (its own session)."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "xdg"),
           "YTP_CONFIG_PATH": str(home / "config"), "YTP_DOWNLOAD_PATH": str(home / "dl")}
    # Ctrl-C as at a terminal: a process started in the background by a shell (as a CI run
    # may be) inherits SIGINT ignored, and Python then leaves it ignored.
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
             " sys.argv[0] = 'appliance'; runpy.run_module('appliance', run_name='__main__')")
    return subprocess.Popen([sys.executable, "-c", start, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, **kwargs)


def test_ctrl_c_while_the_service_is_slow_is_one_line(service: HostileService,
                                                      home: Path) -> None:
    """Ctrl-C (SIGINT) while a slow service answered was a KeyboardInterrupt's traceback."""
    answer = service.answers["/api/history/live"] = Held({"queue": {}})
    process = command(home, "status", "--url", service.url, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: "GET /api/history/live" in service.asked, timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        answer.released.set()
        process.kill()
    assert (process.returncode, out, err) == (130, "", "\nappliance: interrupted\n")


def test_a_password_prompt_whose_input_ends_is_one_line(service: HostileService,
                                                        home: Path) -> None:
    """``--user`` with no terminal and stdin at its end (a script, cron) was getpass's
    EOFError with a traceback."""
    process = command(home, "status", "--user", "me", "--url", service.url,
                      stdin=subprocess.DEVNULL)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and out == ""
    assert err.endswith("Password for me: appliance: the input ended before a password was "
                        "given\n"), err
    assert "Traceback" not in err
    assert service.asked == []


def test_a_reader_that_goes_early_is_no_traceback(service: HostileService, home: Path) -> None:
    """``appliance status | head -1``: the rest of the list was a BrokenPipeError's
    traceback."""
    service.answers["/api/history/live"] = {"queue": {
        str(n): {"title": "t" * 100, "status": "pending"} for n in range(2000)}}  # > a pipe
    process = command(home, "status", "--url", service.url, stdin=subprocess.DEVNULL)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == f"{'pending':<15}    -   {'t' * 100}\n"
    process.stdout.close()  # as head does once it has its line
    err = process.stderr.read()
    assert (process.wait(timeout=60), err) == (1, "")
