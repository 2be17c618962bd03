"""yt-dlp kept current: a package index on 127.0.0.1 offering the installed yt-dlp renumbered
higher (and a broken release), a throwaway virtual environment that gets updated (never the
tests' own), a real runtime whose warm download processes are retired while a real download
runs on, and the command without a service."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from conftest import make_settings
from support.origin import MediaOrigin
from support.package_index import HERE_SITE, PackageIndex, install, make_venv, version_in
from support.server import Server, free_port_pair, wait_for

from appliance.events import EventBus
from appliance.runtime import Runtime
from appliance.ytdlp_update import YtdlpUpdates
from appliance.ytdlp_update.index import newest_version, release_versions
from appliance.ytdlp_update.updater import CHECK, SOLVER
from appliance.ytdlp_update.wheels import installed_version, site_packages

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("ytdlp_update")]

NEWER, BROKEN = "2099.1.1", "2099.2.2"
AppWith = Callable[..., tuple[Runtime, falcon.testing.TestClient]]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path_factory.mktemp("index"))
    index.add(index.current)
    index.add(NEWER)
    index.add(BROKEN, broken=True)
    yield index
    index.close()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, index: PackageIndex) -> Path:
    return make_venv(tmp_path_factory.mktemp("venv") / "venv", index.wheels[index.current])


@pytest.fixture
def updates(app_with: AppWith, index: PackageIndex, venv: Path, origin: MediaOrigin
            ) -> Iterator[tuple[Runtime, falcon.testing.TestClient]]:
    install(venv, index.wheels[index.current])
    # The runtime's own updater (of this test process's environment) keeps the closed index:
    # a mutant that ran it (a schedule started at interval 0) once updated the tests' yt-dlp.
    rt, client = app_with()
    settings = rt.settings.replace(ytdlp_index_url=index.url, ytdlp_check_url=origin.clip_url)
    rt.ytdlp = YtdlpUpdates(settings, rt.engine.pool.renew, rt.bus, python=venv)
    yield rt, client
    assert installed_version(HERE_SITE, "yt-dlp") == index.current, "the tests' own yt-dlp"


def finished(client: falcon.testing.TestClient) -> dict[str, Any]:
    return wait_for(lambda: (s := client.simulate_get("/api/system/ytdlp").json)["update"]
                    ["state"] not in {"running", "idle"} and s, timeout=300,
                    message="the update to end")


def process_table() -> dict[int, tuple[int, bytes]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = (parent(int(entry.name)),
                                          (entry / "cmdline").read_bytes())
            except OSError:
                continue
    return table


def zygote_pids(table: dict[int, tuple[int, bytes]] | None = None) -> set[int]:
    """This test process's zygotes (the runtime runs in it)."""
    table = process_table() if table is None else table
    return {pid for pid, (ppid, cmdline) in table.items()
            if ppid == os.getpid() and b"--zygote" in cmdline}


def download_processes() -> set[int]:
    """This test process's download processes: forked by its zygotes (which keep the command
    line, ``--zygote`` too), or spawned by it."""
    table = process_table()
    ours = {pid for pid, (ppid, cmdline) in table.items()
            if ppid == os.getpid() and b"appliance.engine.download_process" in cmdline}
    zygotes = zygote_pids(table)
    return (ours - zygotes) | {pid for pid, (ppid, _) in table.items() if ppid in zygotes}


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_index_page_is_read_as_pip_reads_it(index: PackageIndex) -> None:
    index.publish(index.current, NEWER)
    assert newest_version(index.url, "yt-dlp", 5) == NEWER
    assert newest_version(index.url, "yt_dlp", 5) == NEWER
    assert newest_version("http://127.0.0.1:9/simple", "yt-dlp", 5) is None
    page = ('<a href="a">yt_dlp-2026.1.5-py3-none-any.whl</a>'
            '<a href="b" data-yanked="">yt_dlp-2099.9.9-py3-none-any.whl</a>'
            '<a href="c">yt_dlp-2099.9.10.dev0-py3-none-any.whl</a>'
            '<a href="d">yt-dlp-2026.2.1.tar.gz</a><a href="e">other-2100.1.1-py3-none-any.whl</a>')
    assert release_versions(page, "yt-dlp") == {"2026.1.5"}  # a source archive is no release


def test_an_unreachable_index_is_unknown_not_an_error(app_with: AppWith) -> None:
    _, client = app_with(YTP_YTDLP_INDEX_URL="http://127.0.0.1:9/simple")
    response = client.simulate_get("/api/system/ytdlp")
    assert response.status_code == 200
    assert response.json["latest"] == "unknown"
    assert response.json["update_available"] is None
    assert response.json["installed"] not in {"", "unknown"}


def test_update_installs_checks_and_retires_warm_processes_only(
        updates: tuple[Runtime, falcon.testing.TestClient], index: PackageIndex, venv: Path,
        origin: MediaOrigin) -> None:
    rt, client = updates
    index.publish(index.current, NEWER)
    status = client.simulate_get("/api/system/ytdlp").json
    assert (status["installed"], status["latest"], status["update_available"]) == (
        index.current, NEWER, True)
    [slow] = client.simulate_post("/api/history", json={"url": origin.slow_url}).json
    item = lambda: client.simulate_get(f"/api/history/{slow['id']}").json  # noqa: E731
    wait_for(lambda: (item().get("downloaded_bytes") or 0) > 0, timeout=60,
             message="the slow download to run")
    idle = set(rt.engine.pool.pids())  # the used process kept idle, if any
    [running] = download_processes() - idle
    old = parent(running)

    earlier = zygote_pids()  # ``old``, and any of an earlier test's runtime not gone yet
    started = client.simulate_post("/api/system/ytdlp/update")
    assert started.status_code == 202
    assert client.simulate_post("/api/system/ytdlp/update").status_code == 409
    status = finished(client)

    assert status["update"]["state"] == "updated", status
    assert (status["installed"], status["update"]["previous"]) == (NEWER, index.current)
    assert (status["update"]["installed"], status["update"]["target"]) == (NEWER, NEWER)
    assert version_in(venv) == NEWER
    wait_for(lambda: not any(alive(pid) for pid in idle), message="idle processes retired")
    assert alive(running) and item()["status"] == "downloading"
    # The next process comes from a new zygote (warmed at once), which imported the new
    # yt-dlp; the old one stays for the download it forked.
    [new] = wait_for(lambda: zygote_pids() - earlier, timeout=60, message="a new zygote")
    fresh = rt.engine.pool.acquire()
    try:
        assert parent(fresh.pid) == new
    finally:
        rt.engine.pool.discard(fresh)
    before = item()["downloaded_bytes"]
    wait_for(lambda: item()["downloaded_bytes"] > before, message="the download to go on")
    client.simulate_post("/api/history/cancel", json={"ids": [slow["id"]]})
    wait_for(lambda: item()["status"] == "cancelled", message="the cancel")
    assert running not in rt.engine.pool.pids()
    wait_for(lambda: not alive(old), message="the old zygote to go after its download")


def test_a_release_that_fails_its_check_is_rolled_back(
        updates: tuple[Runtime, falcon.testing.TestClient], index: PackageIndex,
        venv: Path) -> None:
    _, client = updates
    index.publish(index.current, BROKEN)
    # One: the zygote of an earlier test's runtime, stopped at its end, may not be gone yet
    [warm] = wait_for(lambda: len(found := zygote_pids()) == 1 and found, timeout=60,
                      message="the zygote made at start (and no other)")
    assert client.simulate_post("/api/system/ytdlp/update").status_code == 202
    status = finished(client)
    assert status["update"]["state"] == "rolled_back", status
    assert "a broken release" in status["update"]["message"]
    assert status["installed"] == index.current
    assert version_in(venv) == index.current
    wait_for(lambda: not alive(warm), message="the zygote retired")


def test_the_solver_yt_dlp_pins_is_installed_with_it(
        updates: tuple[Runtime, falcon.testing.TestClient], index: PackageIndex,
        venv: Path) -> None:
    """yt-dlp pins the release of its challenge solver (yt-dlp-ejs): an older one installed is
    replaced from the index and kept for a roll back, beside the yt-dlp it replaces."""
    rt, client = updates
    site = site_packages(venv)
    pinned = installed_version(site_packages(Path(sys.executable)), SOLVER)
    assert pinned is not None
    install(venv, index.add_solver("0.0.1", publish=False))
    index.add_solver(pinned)
    index.publish(index.current, NEWER)
    try:
        assert client.simulate_post("/api/system/ytdlp/update").status_code == 202
        status = finished(client)
        assert status["update"]["state"] == "updated", status
        assert installed_version(site, SOLVER) == pinned
        kept = rt.settings.config_path / "ytdlp-releases"
        assert {p.name for p in kept.iterdir()} == {
            f"yt_dlp-{index.current}-py3-none-any.whl", "yt_dlp_ejs-0.0.1-py3-none-any.whl"}
    finally:
        subprocess.run([str(venv), "-m", "pip", "uninstall", "-qqy", SOLVER], check=False,
                       timeout=300)


def test_the_offline_check_holds_in_an_optimized_interpreter(tmp_path: Path) -> None:
    """Without a check URL the check asks the YouTube extractor to know a video address; the
    service's interpreters run -OO, which would drop that test if it were an assert."""
    fake = tmp_path / "yt_dlp"
    (fake / "extractor").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "version.py").write_text("__version__ = '2099.1.1'\n")
    (fake / "extractor" / "__init__.py").write_text(
        "def gen_extractor_classes():\n    return iter(range(1000))\n")
    youtube = fake / "extractor" / "youtube.py"
    for suitable, refused in (("False", True), ("True", False)):
        youtube.write_text("class YoutubeIE:\n    @staticmethod\n"
                           f"    def suitable(url):\n        return {suitable}\n")
        done = subprocess.run([sys.executable, "-OO", "-c", CHECK], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode != 0) is refused, done
        assert ("YouTube extractor" in done.stderr) is refused


def test_the_command_updates_a_venv_without_a_service(
        index: PackageIndex, venv: Path, tmp_path: Path, origin: MediaOrigin) -> None:
    install(venv, index.wheels[index.current])
    index.publish(index.current, NEWER)
    cache = venv.parents[1] / "bytecode"  # as the service makes it on its first start
    cache.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "YTP_PORT": str(free_port_pair()),
           "YTP_CONFIG_PATH": str(tmp_path / "config"),
           "YTP_DOWNLOAD_PATH": str(tmp_path / "downloads"),
           "YTP_YTDLP_INDEX_URL": index.url, "YTP_YTDLP_CHECK_URL": origin.clip_url}
    done = subprocess.run([sys.executable, "-m", "appliance", "ytdlp", "update", "--venv",
                           str(venv.parents[1])], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"installing yt-dlp {NEWER}" in done.stdout
    assert f"yt-dlp {NEWER} installed (was {index.current})" in done.stdout
    assert version_in(venv) == NEWER
    # What a download job will import of the new release is compiled for the service.
    assert list(cache.rglob(f"yt_dlp/extractor/vimeo.{sys.implementation.cache_tag}.opt-2.pyc"))
    again = subprocess.run([sys.executable, "-m", "appliance", "ytdlp", "update", "--venv",
                            str(venv.parents[1])], capture_output=True, text=True, env=env,
                           timeout=600, check=False)
    assert again.returncode == 0 and "is the newest release" in again.stdout


def test_the_scheduled_update_runs_by_itself(
        index: PackageIndex, venv: Path, tmp_path: Path) -> None:
    install(venv, index.wheels[index.current])
    index.publish(index.current, NEWER)
    settings = make_settings(tmp_path, YTP_YTDLP_INDEX_URL=index.url,
                             YTP_YTDLP_UPDATE_INTERVAL=str(1 / 3600))  # every second
    renewed = threading.Event()
    updates = YtdlpUpdates(settings, renewed.set, EventBus(), python=venv)
    updates.start()
    try:
        # Processes are renewed only after an install that changed something (an update or a
        # roll back); the version says which.
        wait_for(renewed.is_set, timeout=300, message="the scheduled update")
        assert updates.updater.installed() == version_in(venv) == NEWER
    finally:
        updates.stop()


def test_an_update_with_the_newest_installed_is_up_to_date_and_told_as_news(
        index: PackageIndex, venv: Path, tmp_path: Path) -> None:
    install(venv, index.wheels[index.current])
    index.publish(index.current)
    bus = EventBus()
    told: list[Any] = []
    bus.subscribe(told.append)
    settings = make_settings(tmp_path, YTP_YTDLP_INDEX_URL=index.url)
    renewed = threading.Event()
    outcome = YtdlpUpdates(settings, renewed.set, bus, python=venv).update()
    assert (outcome.state, outcome.installed, outcome.previous, outcome.target) == (
        "up_to_date", index.current, index.current, index.current)
    assert outcome.message == f"yt-dlp {index.current} is the newest release"
    [news] = [e for e in told if e.data.get("title") == "yt-dlp update"]
    assert (news.name, news.data["state"]) == ("log_info", "up_to_date")
    assert not renewed.is_set()  # nothing changed: the warm processes stay


def test_an_index_that_never_answers_is_given_up_at_the_timeout(
        venv: Path, tmp_path: Path) -> None:
    """The index's host takes the connection and says nothing (a proxy that hangs): the
    newest release is unknown once the read's timeout is up, not waited for for good."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        settings = make_settings(tmp_path, YTP_YTDLP_INDEX_URL=f"http://127.0.0.1:{port}/simple")
        updater = YtdlpUpdates(settings, lambda: None, EventBus(), python=venv).updater
        found: list[str | None] = []
        asking = threading.Thread(target=lambda: found.append(updater.latest(timeout=0.5)),
                                  daemon=True)
        asking.start()
        asking.join(timeout=60)
        assert found == [None]


def test_the_command_asks_the_running_service(make_server: Callable[..., Server]) -> None:
    """With the service up, the command goes through its API (the service updates its own
    environment and retires its processes); here its index is a closed port: nothing can be
    installed, which the command reports with a failing exit status."""
    server = make_server()
    command = [sys.executable, "-m", "appliance", "ytdlp"]
    done = subprocess.run([*command, "update"], env=server.env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the service is updating yt-dlp" in done.stdout
    assert "newest unknown: the package index http://127.0.0.1:9/simple cannot be reached" \
        in done.stdout
    status = server.get("/api/system/ytdlp").json()
    assert status["update"]["state"] == "failed"
    shown = subprocess.run([*command, "status"], env=server.env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert shown.returncode == 0 and "newest unknown" in shown.stdout
