"""A start whose files cannot be written, as the person who runs the service for years meets
it: a disk that filled up (downloads, a log) before a first start or a restart, a file in the
config folder that is not what the service left there. Each is said in one line that names
the disk or file and what to do, as a failed load (gunicorn's ``AppImportError``, exit 4),
never a traceback and "Worker failed to boot". Real tmpfs mounts (as root, here and in CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_settings
from gunicorn.errors import AppImportError
from support.mounts import fill, tmpfs
from test_startup import worker_of

from appliance.server import ApplianceServer, post_worker_init

FREE_IT = "free some space there, then start the service again"


def test_a_first_start_on_a_full_disk_is_said_in_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with tmpfs(settings.config_path, "size=1m"):
        fill(settings.config_path)
        with pytest.raises(AppImportError) as refused:
            ApplianceServer(settings).load()
    # (the first file a first start writes, the service's id: os.write names no file)
    assert str(refused.value) == (
        f"appliance: the service cannot start: No space left on device: the disk of "
        f"{settings.config_path} (YTP_CONFIG_PATH) is full: {FREE_IT}")


def test_a_full_disk_is_named_by_every_folder_of_the_service_on_it(tmp_path: Path) -> None:
    """The config, temp and download folders on one disk (a Pi's one SD card): a first start
    on it full names each, by its setting, so the person knows which disk to look at."""
    disk = tmp_path / "disk"
    settings = make_settings(tmp_path, YTP_CONFIG_PATH=str(disk / "config"),
                             YTP_TEMP_PATH=str(disk / "tmp"),
                             YTP_DOWNLOAD_PATH=str(disk / "downloads"))
    disk.mkdir()
    with tmpfs(disk, "size=1m"):
        for folder in ("config", "tmp", "downloads"):
            (disk / folder).mkdir()
        fill(disk)
        with pytest.raises(AppImportError) as refused:
            ApplianceServer(settings).load()
    assert str(refused.value) == (
        "appliance: the service cannot start: No space left on device: the disk of "
        f"{disk / 'config'} (YTP_CONFIG_PATH), {disk / 'tmp'} (YTP_TEMP_PATH), "
        f"{disk / 'downloads'} (YTP_DOWNLOAD_PATH) is full: {FREE_IT}")


def test_a_restart_on_a_full_disk_says_the_disk_not_a_broken_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with tmpfs(settings.config_path, "size=4m"):
        first = ApplianceServer(settings)  # a service that ran before, and stopped
        first.load()
        assert first.runtime is not None
        first.runtime.stop()
        fill(settings.config_path)
        with pytest.raises(AppImportError) as refused:
            ApplianceServer(settings).load()
    # SQLite says "disk I/O error" when its shared memory file cannot grow: not a bad disk
    assert str(refused.value).startswith(
        f"appliance: the database {settings.database_file} cannot be opened (")
    assert str(refused.value).endswith(f"): its disk is full: {FREE_IT}")


def test_a_log_file_that_cannot_be_opened_is_said_in_one_line(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, YTP_FILE_LOGGING="true")
    log = settings.config_path / "logs" / "appliance.log"
    log.mkdir(parents=True)  # not a file (as one written by another user cannot be opened)
    server = ApplianceServer(settings)
    server.load()
    try:
        with pytest.raises(AppImportError) as refused:
            post_worker_init(worker_of(server))
    finally:
        server.runtime.stop()  # as gunicorn's worker_exit stops it
    assert str(refused.value) == (
        f"appliance: the service cannot start: Is a directory ({log}): check the disk under "
        "it, and that the service's user may read and write it")
