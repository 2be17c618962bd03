"""Fixtures: the local media origin, an in-process runtime for API tests, the real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import falcon.testing
import hypothesis
import pytest
from support.option_tables import keep_option_table
from support.origin import MediaOrigin
from support.server import Server

from appliance.api.app import create_app
from appliance.config import Settings, load_settings
from appliance.runtime import Runtime

# No test holds code to a time: Hypothesis's deadline (200 ms an example) failed property
# tests of the filters on a busy box, with nothing wrong but the box's load.
hypothesis.settings.register_profile("appliance", deadline=None)
hypothesis.settings.load_profile("appliance")


@pytest.fixture(scope="session")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaOrigin]:
    # Shared by every xdist worker: generation is locked across processes and cached.
    root = tmp_path_factory.getbasetemp().parent / "media-origin"
    with MediaOrigin(root) as media:
        yield media


CLOSED_INDEX = "http://127.0.0.1:9/simple"
# The name falcon's test client sends as Host: with auth off the service answers only to names
# a stranger's DNS cannot serve (tests/test_host_names.py), and this is not one.
TEST_CLIENT_HOST = {"YTP_ALLOWED_HOSTS": "falconframework.org"}


def make_settings(root: Path, **env: str) -> Settings:
    return load_settings({
        "YTP_CONFIG_PATH": str(root / "config"),
        "YTP_DOWNLOAD_PATH": str(root / "downloads"),
        "YTP_TEMP_PATH": str(root / "tmp"),
        "YTP_WORKER_IDLE_TIMEOUT": "30",
        # Tests download the same clips again and again; archive tests turn it on.
        "YTP_KEEP_ARCHIVE": "false",
        # A closed loopback port: no test asks the internet, and a yt-dlp update that a test
        # (or the API fuzzing) starts can never change the tests' own virtual environment.
        "YTP_YTDLP_INDEX_URL": CLOSED_INDEX,
        **TEST_CLIENT_HOST,
        **env,
    })


def started(settings: Settings) -> Runtime:
    """A started runtime on ``settings``, whose config folder holds yt-dlp's option table
    already (``support.option_tables``)."""
    keep_option_table(settings.config_path)
    rt = Runtime(settings, websocket=False)
    rt.start()
    return rt


def ready_to_download(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of a test's runtime as to yt-dlp's processes: kept ready (the zygote,
    YTP_WARM_WORKERS=1, the default) only for a test that has the media origin to download
    from. The zygote imports yt-dlp and its extractors as the runtime starts, a second of CPU
    that a test with nothing to download spent for nothing (0.2 s of each such test's time on
    a busy box); a download such a test starts anyway gets a process of its own, as with
    YTP_WARM_WORKERS=0."""
    return {} if "origin" in request.fixturenames else {"YTP_WARM_WORKERS": "0"}


def runtime_of_module(factory: pytest.TempPathFactory, name: str, **extra: str
                      ) -> Iterator[Runtime]:
    """For a module-scoped fixture (``yield from``): a started runtime on a folder of its own,
    stopped after the module's tests."""
    runtime = started(make_settings(factory.mktemp(name), **extra))
    yield runtime
    runtime.stop()


def client_of_module(factory: pytest.TempPathFactory, name: str, **extra: str
                     ) -> Iterator[falcon.testing.TestClient]:
    """For a module-scoped fixture (``yield from``) of the module's refused requests: a
    refusal changes nothing, so one started runtime answers them all (a start each was most
    of each such test's time); nothing is downloaded, so no yt-dlp process is kept ready."""
    for runtime in runtime_of_module(factory, name, **{"YTP_WARM_WORKERS": "0", **extra}):
        yield falcon.testing.TestClient(create_app(runtime))


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return make_settings(tmp_path, **ready_to_download(request))


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = started(settings)
    yield rt
    rt.stop()


@pytest.fixture
def client(runtime: Runtime) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(runtime))


@pytest.fixture
def start_runtime(tmp_path: Path, request: pytest.FixtureRequest
                  ) -> Iterator[Callable[..., Runtime]]:
    """Started runtimes on the test's folder (a restart is a second call after ``stop``);
    ``env`` replaces the whole environment (but for the test client's host name), keywords
    add settings to the test defaults."""
    runtimes: list[Runtime] = []

    def start(env: dict[str, str] | None = None, **extra: str) -> Runtime:
        rt = started(load_settings({**TEST_CLIENT_HOST, **env}) if env is not None
                     else make_settings(tmp_path, **{**ready_to_download(request), **extra}))
        runtimes.append(rt)
        return rt

    yield start
    for rt in runtimes:
        rt.stop()


@pytest.fixture
def app_with(start_runtime: Callable[..., Runtime]
             ) -> Callable[..., tuple[Runtime, falcon.testing.TestClient]]:
    """A started runtime and a test client on its app."""

    def start(env: dict[str, str] | None = None, **extra: str
              ) -> tuple[Runtime, falcon.testing.TestClient]:
        rt = start_runtime(env, **extra)
        return rt, falcon.testing.TestClient(create_app(rt))

    return start


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(name: str = "server", **env: str) -> Server:
        server = Server(tmp_path / name, env).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc is not None:
            server.stop()
