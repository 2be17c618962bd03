"""Authentication on a box that runs for years: the config folder renamed or unmounted behind
the running service (on the real gunicorn) and a clock stepped back after failures."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from support.server import Server, wait_for
from test_auth import PASSWORD, PROTECTED, USER, WEB_PASSWORD, App, basic
from test_guessing import with_password

from appliance.auth import set_password
from appliance.auth.authfile import AuthFile, AuthState
from appliance.auth.budget import GuessBudget
from appliance.auth.throttle import Throttle


@pytest.mark.e2e
def test_a_config_folder_gone_behind_the_service_does_not_open_the_api(
    make_server: Callable[..., Server]
) -> None:
    server = with_password(make_server)  # web passwd only: the folder holds every credential
    assert requests.get(server.url + PROTECTED, timeout=30).status_code == 401
    config = server.root / "config"
    moved = server.root / "config.moved"
    config.rename(moved)  # what an unmounted disk or a careless `mv` leaves: no folder
    try:
        anonymous = requests.get(server.url + PROTECTED, timeout=30)
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["code"] == "UNAUTHORIZED"
        # The password, unreadable now, opens nothing either (fail closed).
        assert requests.get(server.url + PROTECTED, auth=("appliance", WEB_PASSWORD),
                            timeout=30).status_code == 401
        wait_for(lambda: "the config folder is gone" in server.log(),
                 message="the missing folder in the log")
    finally:
        moved.rename(config)
    # Back: the password of the file works again, without a restart.
    assert requests.get(server.url + PROTECTED, auth=("appliance", WEB_PASSWORD),
                        timeout=30).status_code == 200


def test_a_folder_seen_only_through_its_file_counts_as_seen(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "config"
    set_password(folder, WEB_PASSWORD)
    file = AuthFile(folder)
    assert file.current().password is not None
    shutil.rmtree(folder)
    assert file.current().broken
    assert f"{file.path}: the config folder is gone; refusing every credential" in caplog.text


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = App(tmp_path, YTP_AUTH_USERNAME=USER, YTP_AUTH_PASSWORD=PASSWORD)
    yield app
    app.runtime.stop()


def test_only_a_missing_folder_closes_not_a_missing_file(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    file = AuthFile(folder)
    assert file.current() == AuthState()  # before the service made its folder: no password
    folder.mkdir()
    assert file.current() == AuthState()  # the first start's state: no password
    folder.rmdir()
    assert file.current().broken
    folder.mkdir()  # remounted, empty
    assert file.current() == AuthState()


def test_a_clock_stepped_back_holds_no_one_off_for_the_step(app: App) -> None:
    now = [2_000_000_000.0]
    app.auth.clock = lambda: now[0]
    app.auth.budget = GuessBudget(size=1, refill=10.0)
    owner, stranger = "192.168.1.5", "2001:db8:5::1"  # on the LAN, not
    for _ in range(5):
        assert app.get(headers=basic(USER, "typo"), remote_addr=owner).status_code == 401
    assert app.get(headers=basic(USER, "guess"), remote_addr=stranger).status_code == 401
    assert app.get(headers=basic(USER, PASSWORD), remote_addr=stranger).status_code == 429
    now[0] -= 365 * 86400  # NTP corrects a clock that ran a year ahead
    blocked = app.get(headers=basic(USER, PASSWORD), remote_addr=owner)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) <= 10
    assert app.auth.throttle.retry_after(owner, now[0]) == 10.0
    assert app.auth.budget.retry_after(now[0]) <= 10.0
    now[0] += 10.0  # a block's longest, and one guess of the budget, later
    assert app.get(headers=basic(USER, PASSWORD), remote_addr=owner).status_code == 200
    assert app.get(headers=basic(USER, PASSWORD), remote_addr=stranger).status_code == 200
    throttle = Throttle(threshold=1, base=1.0, cap=4.0)
    throttle.failure("a", 100.0)
    assert throttle.retry_after("a", 100.0) == 1.0
    assert throttle.retry_after("a", 50.0) == 4.0
