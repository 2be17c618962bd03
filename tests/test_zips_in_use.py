"""A zip being sent holds all of its files in use, not only the one being read: a task's
retention keeps them until a later run, an item's delete removes them once the zip ends, and
the browser's delete of one says to wait. Real downloads from the local origin, the real
runtime in process; the zip's answer taken from the real app as a server takes it (its body
not yet read: a client that reads slowly)."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from support.aged_tasks import aged_task
from support.browsing import act
from support.origin import MediaOrigin
from support.task_runs import execution_log, run_now

from appliance import in_use
from appliance.runtime import Runtime

Client = falcon.testing.TestClient
AppWith = Callable[..., tuple[Runtime, Client]]


class Sending:
    """A zip's answer started: its status and headers given, its body still to be read."""

    def __init__(self, client: Client, files: list[str], **headers: str) -> None:
        prepared = client.simulate_post("/api/file/download", json=files)
        assert prepared.status_code == 200, prepared.text
        started: list[tuple[str, list[tuple[str, str]]]] = []
        environ = falcon.testing.create_environ(
            path=f"/api/file/download/{prepared.json['token']}", headers=headers)
        self.body: Iterable[bytes] = client.app(
            environ, lambda status, sent, _exc=None: started.append((status, sent)))
        self.status = started[0][0]
        self.headers = {name.lower(): value for name, value in started[0][1]}

    def read_all(self) -> zipfile.ZipFile:
        try:
            data = b"".join(self.body)
        finally:
            self.body.close()  # type: ignore[attr-defined]  # the server's close, PEP 3333
        return zipfile.ZipFile(io.BytesIO(data))


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The record of files in use, ``seconds`` on (no test waits half an hour)."""
    monkeypatch.setattr(in_use.FILES, "_clock", lambda: time.monotonic() + seconds)


def _aged(app_with: AppWith, origin: MediaOrigin, name: str
          ) -> tuple[Runtime, Client, dict[str, Any], Any, Path]:
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true",
                               YTP_BROWSER_CONTROL_ENABLED="true")
    task, (old, recent) = aged_task(runtime, client, origin, name)
    return runtime, client, task, (old, recent), Path(old.download_folder) / old.filename


def test_retention_keeps_the_files_of_a_zip_being_sent_until_a_later_run(
        app_with: AppWith, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the file being read counted: the old episode, second in the zip, was removed by
    the run while the zip was sent, and the zip was cut short at it."""
    runtime, client, task, (old, recent), path = _aged(app_with, origin, "zipped")
    content = path.read_bytes()
    sending = Sending(client, [recent.filename, old.filename])
    assert sending.status == "200 OK"

    lines = execution_log(runtime, run_now(runtime, task))
    assert any(" retention kept 1 file(s) being played or sent" in line for line in lines), lines
    assert path.is_file()
    with sending.read_all() as archive:
        assert archive.read(old.filename) == content

    # sent a moment ago: kept as a file just played is; then the next run removes it
    lines = execution_log(runtime, run_now(runtime, task))
    assert path.is_file(), lines
    _later(monkeypatch, in_use.RECENT + 60)
    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not path.exists()


def test_an_items_file_in_a_zip_being_sent_goes_when_the_zip_ends(
        app_with: AppWith, origin: MediaOrigin) -> None:
    """The delete removed the file at once: the zip, which had not reached it, was cut
    short. The item goes at once and its file as soon as the zip lets go of it."""
    _, client, _, (old, recent), path = _aged(app_with, origin, "deleted")
    content = path.read_bytes()
    sending = Sending(client, [recent.filename, old.filename])
    answer = client.simulate_delete("/api/history", json={
        "type": "done", "ids": [old.id], "remove_file": True})
    assert answer.json == {old.id: "deleted"}, answer.text
    assert client.simulate_get(f"/api/history/{old.id}").status_code == 404
    assert path.is_file()
    with sending.read_all() as archive:
        assert archive.read(old.filename) == content
    assert not path.exists()
    assert (Path(recent.download_folder) / recent.filename).is_file()


def test_the_browser_does_not_delete_or_move_a_file_of_a_zip_being_sent(
        app_with: AppWith, origin: MediaOrigin) -> None:
    """Said, not done, while the zip is sent, for the file or a folder it lies in, and so
    for a rename or a move (the zip reads each file by its name at its turn: gone, the zip
    was cut short); done after. A zip answered 304 (the client has it already) holds
    nothing."""
    _, client, _, (old, _recent), path = _aged(app_with, origin, "browsed")
    sending = Sending(client, [old.filename])
    (path.parent.parent / "elsewhere").mkdir()
    refused = act(client, {"action": "delete", "path": old.filename},
                  {"action": "delete", "path": "browsed"},
                  {"action": "rename", "path": old.filename, "new_name": "renamed.mp4"},
                  {"action": "move", "path": "browsed", "new_path": "elsewhere"})
    assert [r["ok"] for r in refused.json] == [False] * 4, refused.text
    assert [r["error"] for r in refused.json] == [
        f"'{old.filename}' is being sent or played right now (a zip, a download, the player): "
        f"{action} {what} when that ends." for action, what in (
            ("delete", "it"), ("delete", "'browsed'"), ("rename", "it"),
            ("move", "'browsed'"))]
    assert path.is_file()
    sending.read_all().close()
    assert not in_use.FILES.held(path)

    unchanged = Sending(client, [old.filename], **{"If-None-Match": sending.headers["etag"]})
    assert unchanged.status == "304 Not Modified"
    assert not in_use.FILES.held(path)
    done = act(client, {"action": "delete", "path": old.filename})
    assert done.json[0]["ok"] is True, done.text
    assert not path.exists()


def test_what_waits_for_a_file_is_done_by_the_last_reader_to_let_go(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = in_use.FilesInUse()
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x")
    key = in_use.key_of(path.stat())
    done: list[str] = []
    assert not files.when_let_go([path], lambda: done.append("now"))  # no one holds it
    files.opened(key)  # a player's segment
    holding = files.holding([key])  # a zip
    assert files.when_let_go([tmp_path / "gone.mp4", path], lambda: done.append("after"))
    holding.let_go()
    holding.let_go()  # once: the server's close after the body's end
    assert files.held(path) and done == []
    files.closed(key)
    assert not files.held(path) and done == ["after"]
    files.opened(key)
    assert files.when_let_go([path], lambda: done.append(str(1 / 0)))
    files.closed(key)  # the reader's close goes on, the failure is logged
    assert "what waited for a file to be let go failed" in caplog.text
