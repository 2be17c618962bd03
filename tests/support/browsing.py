"""The file browser's tests' shared steps: a folder of their own in the download folder,
listings, files made, actions asked."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from falcon.testing import Result, TestClient

from appliance.runtime import Runtime

from .server import wait_for

# Changes from outside must be listed within 2 s (the goal); the deadline leaves room for a
# busy test machine, bench/files_scale.py measures the real delay.
LISTED_DEADLINE = 5.0


def new_folder(runtime: Runtime, client: TestClient) -> Iterator[Path]:
    """An empty folder of the download folder for one test, indexed (a fixture's body)."""
    path = runtime.settings.download_path / f"t{os.urandom(4).hex()}"
    path.mkdir()
    wait_for(lambda: listing(client, path.name).status_code == 200, LISTED_DEADLINE,
             message="the new folder to be listed")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def listing(client: TestClient, path: str, **params: Any) -> Result:
    return client.simulate_get(f"/api/file/browser/{path}", params=params)


def names(client: TestClient, path: str, **params: Any) -> list[str]:
    result = listing(client, path, **params)
    assert result.status_code == 200, result.text
    return [e["name"] for e in result.json["contents"]]


def listed(client: TestClient, path: str, expected: set[str]) -> None:
    wait_for(lambda: set(names(client, path)) == expected, LISTED_DEADLINE,
             message=f"listing of {path} to be {sorted(expected)}")


def make(path: Path, size: int = 1, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def act(client: TestClient, *actions: dict[str, Any]) -> Result:
    return client.simulate_post("/api/file/actions", json=list(actions))


def assert_error(result: Result, status: int) -> None:
    assert result.status_code == status, result.text
    assert result.json["error"] and result.json["code"]


def deep_tree(top: Path, depth: int) -> Path:
    """``top``/d/d/…/d, ``depth`` folders below ``top``, made one level at a time through open
    folders (a path that deep is over the system's limit, and ``os.makedirs`` recurses); the
    deepest folder's path (too long to be used as it is)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        os.close(os.open("x.mp4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    return top.joinpath(*["d"] * depth)
