"""A read-only disk and a folder the service may not write, end to end: a real download from
the local origin fails on the real error, and the item says so in words, naming the folders.

The download's temp folder is made unwritable before it starts: as root (here and in CI) a
read-only tmpfs is mounted on it, or it is made immutable (root ignores permission bits);
as another user, its permission bits are enough for the second case.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime
from appliance.store import Item

ROOT = os.geteuid() == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    if not ROOT:
        pytest.skip("a read-only mount needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                              str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def not_writable(folder: Path) -> Iterator[None]:
    if not ROOT:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if immutable.returncode != 0:
        pytest.skip(f"cannot make a folder immutable here: {immutable.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def fail_in_unwritable_temp(rt: Runtime, origin: MediaOrigin,
                            unwritable: Callable[[Path], contextlib.AbstractContextManager]
                            ) -> Item:
    [added] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
    wait_for(lambda: rt.engine.get(added.id).extractor,  # type: ignore[union-attr]
             timeout=30, message="the item's info")
    temp = rt.settings.temp_path / added.id
    temp.mkdir(parents=True, exist_ok=True)
    with unwritable(temp):
        rt.engine.start_items([added.id])
        failed = wait_for(lambda: (i := rt.engine.get(added.id)) and i.kind == "done" and i,
                          timeout=60, message="the download to fail")
    assert failed.status == "error"
    assert not list(rt.settings.download_path.rglob("*.mp4"))
    return failed


def folders(rt: Runtime) -> str:
    return re.escape(f"{rt.settings.temp_path} (partial files) and {rt.settings.download_path}")


def test_a_read_only_disk_is_said_plainly(start_runtime: Callable[..., Runtime],
                                          origin: MediaOrigin) -> None:
    rt = start_runtime()
    failed = fail_in_unwritable_temp(rt, origin, read_only)
    assert re.fullmatch(
        rf"The disk is read-only: {folders(rt)} must be on a writable disk\. "
        r"\(.*\[Errno 30\] Read-only file system.*\)", failed.error), failed.error


def test_a_folder_the_service_may_not_write_is_said_plainly(
        start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    rt = start_runtime()
    failed = fail_in_unwritable_temp(rt, origin, not_writable)
    errno = r"\[Errno 1\] Operation not permitted" if ROOT else r"\[Errno 13\] Permission denied"
    assert re.fullmatch(
        rf"The service may not write there: check that the user it runs as owns {folders(rt)}"
        rf"\. \(.*{errno}.*\)", failed.error), failed.error
