"""The file browser's actions say what was wrong and what is expected. A body that was not an
array of objects was answered "Invalid parameters expecting list of dicts." (Python's words,
whatever was wrong), a missing field "path is required for the delete action.", and an action
that could not be done "Destination path is invalid.", "Destination already exists." or
"Path does not exist." without naming the path. The contract's statuses stay: 400 for a
refused request, 200 with each action's result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient

from appliance.api.app import create_app
from appliance.runtime import Runtime

EXAMPLE = '{"action": "delete", "path": "folder/file.mp4"}'


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "action-words",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


@pytest.mark.parametrize(("body", "said"), [
    ("delete x", f"The body must be a JSON array of actions, such as [{EXAMPLE}]; it is a "
                 f"string."),
    ([], f"The array of actions is empty: give at least one, such as {EXAMPLE}."),
    ([None], f"Each action must be a JSON object, such as {EXAMPLE}; this one is null."),
    ([{"path": "x"}], "action is missing: give one of rename, delete, move or directory."),
    ([{"action": "copy", "path": "x"}],
     "action 'copy' is not one the file browser has: give one of rename, delete, move or "
     "directory."),
    ([{"action": ["delete"], "path": "x"}],
     "action must be a string, one of rename, delete, move or directory; it is an array."),
    ([{"action": "delete"}], "path is missing: the delete action needs the path of a file or "
                             "a folder, relative to the download folder."),
    ([{"action": "delete", "path": 5}],
     "path must be a string, relative to the download folder; it is a number."),
    ([{"action": "rename", "path": "x"}],
     "new_name is missing: the rename action needs the new name (one name, without "
     "slashes)."),
    ([{"action": "move", "path": "x", "new_path": 7}],
     "new_path must be a string: the folder to move it into, relative to the download "
     "folder; it is a number."),
    ([{"action": "delete", "path": "/"}],
     "path names the download folder itself, which the file browser does not rename, move "
     "or delete: give a file or a folder in it."),
    ([{"action": "delete", "path": "x"}, {"action": "directory", "path": "x"}],
     "Action 2 of 2: new_dir is missing: the directory action needs the folder to make "
     "inside path (a/b makes both)."),
])
def test_a_refused_action_says_what_was_wrong_and_what_is_expected(
        app: tuple[Runtime, TestClient], body: Any, said: str) -> None:
    _, client = app
    refused = client.simulate_post("/api/file/actions", json=body)
    assert (refused.status_code, refused.json["error"]) == (400, said)


def test_an_action_that_cannot_be_done_names_what_is_in_the_way(
        app: tuple[Runtime, TestClient]) -> None:
    rt, client = app
    root: Path = rt.settings.download_path
    (root / "a.mp4").write_bytes(b"a")
    (root / "b.mp4").write_bytes(b"b")
    done = client.simulate_post("/api/file/actions", json=[
        {"action": "rename", "path": "a.mp4", "new_name": "b.mp4"},
        {"action": "move", "path": "a.mp4", "new_path": "nowhere"},
        {"action": "move", "path": "a.mp4", "new_path": "/"},
        {"action": "delete", "path": "gone.mp4"},
    ])
    assert done.status_code == 200, done.text
    assert [r["error"] for r in done.json] == [
        "'b.mp4' is there already: nothing was renamed. Rename or move that one first, or "
        "choose another name.",
        "There is no folder 'nowhere' to move it into (nothing, or a file, is there): make it "
        "first (the directory action).",
        "It is in that folder already: nothing was moved.",
        "Nothing is at this path any more (it was moved or deleted meanwhile): refresh the "
        "listing.",
    ]
    assert sorted(p.name for p in root.iterdir() if p.suffix == ".mp4") == ["a.mp4", "b.mp4"]
