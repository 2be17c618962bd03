"""Fixtures: a REAL appliance (``appliance serve`` from the main virtual environment) on
127.0.0.1, the local media origin it downloads from, and Home Assistant itself (the ``hass``
fixture of pytest-homeassistant-custom-component).

The service and the origin run as child processes of the main environment's Python
(``APPLIANCE_PYTHON``, by default the repository's ``.venv``): Home Assistant needs its own
Python, and nothing of the service is imported here.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_socket
import requests
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from custom_components.appliance.const import DOMAIN  # noqa: E402
from support.server import Server, free_port_pair, wait_for  # noqa: E402  (the main suite's)

from .fake_appliance import FakeAppliance  # noqa: E402

APPLIANCE_PYTHON = os.environ.get("APPLIANCE_PYTHON") or str(REPO / ".venv" / "bin" / "python")
Server.python = APPLIANCE_PYTHON
NEWER_RELEASE = "99.0.0"
CLI_SECRET = "video-password-in-the-cli"

_ORIGIN = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from support.origin import MediaOrigin
with MediaOrigin(Path(sys.argv[2])) as origin:
    print(json.dumps({"clip": origin.clip_url, "short": origin.short_url,
                      "fail": origin.fail_url, "slow": origin.slow_url_at(1_500_000),
                      "crawl": origin.slow_url_at(100_000)}),
          flush=True)
    sys.stdin.read()
"""


def allow_loopback() -> None:
    """Home Assistant's harness forbids every socket before each test; these tests talk to a
    real service, so sockets are allowed again, connecting to 127.0.0.1 only."""
    pytest_socket.enable_socket()
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


@pytest.fixture(autouse=True)
def loopback_sockets() -> None:
    allow_loopback()


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Home Assistant loads custom_components/ only when told to."""


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """URLs on the local media origin (real files made by ffmpeg, served on 127.0.0.1)."""
    allow_loopback()
    if not Path(APPLIANCE_PYTHON).exists():
        pytest.fail(f"no appliance environment at {APPLIANCE_PYTHON}: run ./bootstrap.sh test")
    proc = subprocess.Popen(
        [APPLIANCE_PYTHON, "-c", _ORIGIN, str(REPO / "tests"),
         str(tmp_path_factory.mktemp("origin"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"the media origin did not start (exit {proc.wait()})")
    yield json.loads(line)
    proc.stdin.close()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def release_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A package index answer (PyPI's JSON API form) naming a newer appliance release, served
    on 127.0.0.1 for the service's release check."""
    allow_loopback()
    root = tmp_path_factory.mktemp("index")
    (root / "appliance.json").write_text(json.dumps({"info": {"version": NEWER_RELEASE}}))
    port = free_port_pair()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                             str(port), "--directory", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/appliance.json"
    wait_for(lambda: requests.get(url, timeout=1).ok, message="the release index")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def appliance_cli(server: Server, *args: str) -> str:
    """``appliance …`` on the server's config folder (e.g. ``web gentoken``)."""
    out = subprocess.run([APPLIANCE_PYTHON, "-m", "appliance", *args], env=server.env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory, media: dict[str, str],
              release_index: str) -> Iterator[Server]:
    """One real service for the module, with token authentication on."""
    allow_loopback()
    server = Server(tmp_path_factory.mktemp("appliance"),
                    {"YTP_WORKER_IDLE_TIMEOUT": "30", "YTP_FILE_LOGGING": "false",
                     "YTP_AUTH_USERNAME": "ha", "YTP_AUTH_PASSWORD": "a long enough password",
                     "YTP_CHECK_FOR_UPDATES": "true", "YTP_UPDATE_CHECK_URL": release_index,
                     # A secret in yt-dlp's options, which diagnostics must not show.
                     "YTP_YTDLP_CLI": f"--video-password {CLI_SECRET}"})
    server.token = appliance_cli(server, "web", "gentoken")  # type: ignore[attr-defined]
    server.session.headers["Authorization"] = f"Token {server.token}"  # type: ignore[attr-defined]
    server.start()
    yield server
    if server.proc is not None:
        server.stop()


def entry_data(server: Server, **changes: Any) -> dict[str, Any]:
    return {CONF_HOST: "127.0.0.1", CONF_PORT: server.port,
            CONF_TOKEN: server.token, **changes}  # type: ignore[attr-defined]


def instance_id(server: Server) -> str:
    return str(server.get("/api/health").json()["instance_id"])


async def until(condition: Callable[[], Any], within: float = 30.0,
                message: str = "condition") -> Any:
    """Wait (letting Home Assistant run) until ``condition()`` is truthy (awaited when it
    is a coroutine function)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within:g} s waiting for {message}")


async def load_entry(hass: HomeAssistant, appliance: Server) -> MockConfigEntry:
    """The appliance set up in Home Assistant, loaded."""
    entry = MockConfigEntry(domain=DOMAIN, title="Appliance (127.0.0.1)",
                            unique_id=instance_id(appliance), data=entry_data(appliance))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    return entry


async def unload_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, appliance: Server
                       ) -> AsyncIterator[MockConfigEntry]:
    """The appliance set up in Home Assistant; unloaded after the test (no lingering task)."""
    entry = await load_entry(hass, appliance)
    yield entry
    await unload_entry(hass, entry)


async def in_executor(hass: HomeAssistant, func: Callable[..., Any], *args: Any) -> Any:
    """A blocking call (the server harness, requests) off Home Assistant's loop."""
    return await hass.async_add_executor_job(func, *args)


Waiter = Callable[..., Awaitable[Any]]


@pytest.fixture
async def fake(hass: HomeAssistant) -> AsyncIterator[FakeAppliance]:
    """A hostile or broken appliance (tests/fake_appliance.py); entries unloaded after."""
    server = FakeAppliance()
    await server.start()
    yield server
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await server.stop()
