"""An inotify queue overflow (events lost) makes the file watcher rescan soon, once per burst:
driven through watchdog's own overflow path (the kernel's IN_Q_OVERFLOW record handed to its
inotify reader), on a real folder and a real observer; the lost events are the watcher's notes
thrown away, so only a rescan can find the files made meanwhile."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from falcon.testing import TestClient
from support.browsing import deep_tree
from support.server import wait_for
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent

from appliance.files import trees
from appliance.files import watcher as watcher_module
from appliance.files.index import FileIndex
from appliance.files.watcher import POLLING, WATCHING, FolderWatcher
from appliance.runtime import Runtime

DEADLINE = 10.0
# Deep trees (1,100 and 5,000 folders) indexed and watched one by one: seconds on a quiet box,
# more than 10 (1,100) and 30 (5,000) at a load of 10.
DEEP_DEADLINE = 60.0


class Rescans:
    """Counts the index's rescans; the first one after ``hold()`` waits for ``release()``."""

    def __init__(self, index: FileIndex) -> None:
        self.rescan = index.rescan
        self.lock = threading.Lock()
        self.started = self.finished = 0
        self.held = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        index.rescan = self  # type: ignore[method-assign]

    def __call__(self) -> None:
        with self.lock:
            self.started += 1
        if not self.gate.is_set():
            self.held.set()
            self.gate.wait(DEADLINE)
        self.rescan()
        with self.lock:
            self.finished += 1

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()


@pytest.fixture
def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[FileIndex, FolderWatcher]]:
    monkeypatch.setattr(watcher_module, "OVERFLOW_DELAY", 0.0)
    index = FileIndex(tmp_path)
    # a periodic rescan would find the files too: far away, only an overflow's can
    watcher = FolderWatcher(index, watch=True, rescan_interval=3600)
    watcher.start()
    assert watcher.mode == WATCHING, watcher.reason
    wait_for(index.ready.is_set, DEADLINE, message="the first index")
    yield index, watcher
    watcher.stop()


def overflow(watcher: FolderWatcher) -> None:
    """What watchdog's inotify reader does with the kernel's IN_Q_OVERFLOW record (wd -1)."""
    reader = watcher._observer._inotify_fd
    reader.handle_event(InotifyEvent(-1, InotifyConstants.IN_Q_OVERFLOW, 0, b""))


def test_an_overflow_rescans_once_per_burst_and_finds_what_was_lost(
        watched: tuple[FileIndex, FolderWatcher], tmp_path: Path) -> None:
    index, watcher = watched
    rescans = Rescans(index)
    watcher.note = lambda *paths: None  # type: ignore[method-assign]  # the kernel drops them
    made = {f"lost{i}.mp4" for i in range(20)}
    for name in made:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "deep.mp4").write_bytes(b"x")
    assert index.names("") == []

    rescans.hold()
    overflow(watcher)
    wait_for(rescans.held.is_set, DEADLINE, message="the overflow's rescan to start")
    for _ in range(49):  # the rest of the burst, while its rescan runs: one more, not 49
        overflow(watcher)
    rescans.release()
    wait_for(lambda: rescans.finished == 2, DEADLINE, message="the two rescans to end")
    assert set(index.names("")) == made | {"inner"}
    assert index.names("inner") == ["deep.mp4"]
    assert rescans.started == 2

    # a later overflow is a new burst: rescanned again
    (tmp_path / "later.mp4").write_bytes(b"x")
    overflow(watcher)
    wait_for(lambda: "later.mp4" in index.names(""), DEADLINE,
             message="the later overflow's rescan")
    assert rescans.started == 3


def test_a_rescan_announces_the_folders_it_found_changed(tmp_path: Path) -> None:
    told: list[list[str]] = []
    index = FileIndex(tmp_path, on_change=told.append)
    (tmp_path / "kept").mkdir()
    index.rescan()
    assert told == []  # the first index is no change
    (tmp_path / "kept" / "new.mp4").write_bytes(b"x")
    (tmp_path / "made").mkdir()
    index.rescan()
    assert told == [["", "kept", "made"]]
    index.rescan()
    assert len(told) == 1  # nothing differs: nothing announced


def test_a_rescan_reads_past_what_it_leaves_out(tmp_path: Path) -> None:
    """Hidden names and partial downloads are left out of the index: the walk goes on to the
    rest of the folder (the disk's order puts them anywhere among the others)."""
    visible = {f"clip{i:02d}.mp4" for i in range(40)} | {f"show{i:02d}" for i in range(10)}
    for name in visible:
        if name.startswith("show"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "e1.mp4").write_bytes(b"x")
        else:
            (tmp_path / name).write_bytes(b"x")
    for name in (".hidden", ".cache", "a.mp4.part", "b.ytdl", "c.temp"):
        (tmp_path / name).write_bytes(b"x")
    index = FileIndex(tmp_path)
    index.rescan()
    assert set(index.names("")) == visible
    assert all(index.names(f"show{i:02d}") == ["e1.mp4"] for i in range(10))


def test_a_folder_replaced_by_a_link_or_a_file_takes_what_was_indexed_under_it(
        tmp_path: Path) -> None:
    """Only the folder's own change is seen (the events of what it held were lost): what was
    indexed below it goes, or history answers would list the old folder's subtitles."""
    for folder in ("d", "f"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "x.mp4").write_bytes(b"x")
        (tmp_path / folder / "sub" / "x.en.srt").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    index = FileIndex(tmp_path)
    index.rescan()
    assert index.sidecars("d/sub/x.mp4") != {}
    shutil.rmtree(tmp_path / "d")
    (tmp_path / "d").symlink_to(tmp_path / "elsewhere")
    shutil.rmtree(tmp_path / "f")
    (tmp_path / "f").write_bytes(b"now a file")
    index.refresh([str(tmp_path / "d"), str(tmp_path / "f")])
    for gone in ("d/sub", "f", "f/sub"):
        assert not index.has_folder(gone), gone
    assert index.sidecars("d/sub/x.mp4") == {} and index.sidecars("f/sub/x.mp4") == {}


@pytest.fixture
def deep(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where a test makes a tree too deep for watchdog, outside the folder it watches (made
    there level by level, the tree could be followed as it grew; moved in, it is one event);
    such trees are removed here, as pytest's own clean-up recurses."""
    place = tmp_path_factory.mktemp("trees")
    yield place
    for top in (place, tmp_path / "downloads", tmp_path / "tree", tmp_path / "renamed"):
        if top.exists():
            fd = os.open(top.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                trees.remove_tree(fd, top.name)
            finally:
                os.close(fd)


def _made_at(folder: Path, name: str) -> None:
    """A file made in ``folder`` through the open folders down to it (its path may be over
    the system's limit)."""
    top = os.open(folder.anchor, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in folder.parts[1:]:
            below = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=top)
            os.close(top)
            top = below
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=top))
    finally:
        os.close(top)


def _still_watching(watcher: FolderWatcher) -> None:
    assert watcher.mode == WATCHING, watcher.reason
    observer = watcher._observer
    threads = [observer, *observer.emitters, observer._inotify_fd]
    assert all(thread.is_alive() for thread in threads), threads


def test_a_deep_tree_at_start_is_watched(start_runtime: Callable[..., Runtime],
                                         tmp_path: Path, deep: Path) -> None:
    """watchdog walked a tree by recursion: a download folder holding one 1,100 folders deep
    (a copied backup, a ``mkdir -p`` loop) raised RecursionError out of the service's start
    (then: polling). Watched now, to its deepest folder: a file made there is told by its
    event (the rescans are an hour apart)."""
    deepest = deep_tree(tmp_path / "downloads", 1100)
    runtime = start_runtime(YTP_FILE_RESCAN_INTERVAL="360")
    watcher = runtime.files.watcher
    _still_watching(watcher)
    index = runtime.files.index
    below = "/".join(["d"] * 1100)
    wait_for(lambda: index.names(below) == ["x.mp4"], DEADLINE, message="the first index")
    _made_at(deepest, "new.mp4")
    wait_for(lambda: sorted(index.names(below)) == ["new.mp4", "x.mp4"], DEADLINE,
             message="the deepest folder's watch to tell of the new file")
    _still_watching(watcher)


def test_a_deep_tree_moved_in_is_indexed_and_watched(
        watched: tuple[FileIndex, FolderWatcher], deep: Path) -> None:
    """Moved in whole (one event), a tree 1,100 folders deep ended watchdog's reader thread
    on its RecursionError: no event came any more. It is indexed to its deepest folder like
    any other, and its folders are watched like any other."""
    index, watcher = watched
    deepest = deep_tree(deep / "tree", 1100)
    os.rename(deep / "tree", index.root / "tree")
    below = "/".join(["tree", *["d"] * 1100])
    wait_for(lambda: index.names(below) == ["x.mp4"], DEEP_DEADLINE,
             message="the moved tree to be indexed")
    _made_at(index.root / "tree" / deepest.relative_to(deep / "tree"), "new.mp4")
    (index.root / "beside.mp4").write_bytes(b"x")
    wait_for(lambda: sorted(index.names(below)) == ["new.mp4", "x.mp4"]
             and "beside.mp4" in index.names(""), DEEP_DEADLINE,
             message="the watches to tell of the new files")
    _still_watching(watcher)
    # what watchdog tells of a folder just made that holds a tree already: every entry
    [group] = [emitter._inotify for emitter in watcher._observer.emitters]
    told = group._recursive_simulate(os.fsencode(index.root / "tree"))
    assert sorted(event.name for event in told) == [b"d"] * 1100 + [b"new.mp4", b"x.mp4"]
    assert sum(event.is_directory for event in told) == 1100
    # renamed where it is: one move, the whole tree under its new name
    os.rename(index.root / "tree", index.root / "renamed")
    moved = "/".join(["renamed", *["d"] * 1100])
    wait_for(lambda: sorted(index.names(moved)) == ["new.mp4", "x.mp4"]
             and "tree" not in index.names("") and not index.has_folder(below), DEEP_DEADLINE,
             message="the renamed tree to be indexed under its new name")
    _still_watching(watcher)


def test_a_hostile_depth_moved_in_stops_neither_the_watch_nor_the_service(
        app_with: Callable[..., tuple[Runtime, TestClient]], tmp_path: Path,
        deep: Path) -> None:
    """5,000 folders deep, past what a path can name (PATH_MAX): what a path can reach is
    indexed and watched, what lies deeper is left out, and the service answers on."""
    runtime, client = app_with(YTP_FILE_RESCAN_INTERVAL="360")
    index, watcher = runtime.files.index, runtime.files.watcher
    wait_for(index.ready.is_set, DEADLINE, message="the first index")
    deep_tree(deep / "tree", 5000)
    os.rename(deep / "tree", index.root / "tree")
    wait_for(lambda: index.has_folder("tree/d/d"), DEEP_DEADLINE,
             message="the tree to be indexed")
    reachable = max(depth for depth in range(5001)
                    if len(str(index.root.joinpath("tree", *["d"] * depth, "x.mp4")))
                    < os.pathconf("/", "PC_PATH_MAX"))
    deepest_named = "/".join(["tree", *["d"] * reachable])
    wait_for(lambda: index.has_folder(deepest_named), DEEP_DEADLINE,
             message="every folder a path can name to be indexed")
    assert not index.has_folder("/".join(["tree", *["d"] * 4999]))
    (index.root / "after.mp4").write_bytes(b"x")
    wait_for(lambda: "after.mp4" in index.names(""), DEADLINE,
             message="the watch to tell of a file made after the tree")
    _still_watching(watcher)
    listed = client.simulate_get("/api/file/browser/tree/d")
    assert listed.status_code == 200, listed.text
    assert [e["name"] for e in listed.json["contents"]] == ["d"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_watch_that_stops_running_is_replaced_by_rescans(
        watched: tuple[FileIndex, FolderWatcher],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """watchdog's inotify reader ends (an error of its own): no event comes any more, while
    the watcher said ``watching`` and rescanned ten times less often. It notices, says so,
    and rescans as for a folder never watched."""
    index, watcher = watched
    monkeypatch.setattr(watcher, "rescan_interval", 0.2)
    monkeypatch.setattr(watcher_module, "WATCH_CHECK", 0.05)
    watcher.note()  # the loop's next turn waits no longer than the new check interval
    watcher._observer._inotify_fd.stop()
    wait_for(lambda: watcher.mode == POLLING, DEADLINE, message="the watcher to notice")
    assert watcher.reason == "the watch stopped: a thread of the watcher ended on an error"
    assert watcher.status()["rescan_interval"] == 0.2
    # (said just after the mode changes, in the watcher's thread)
    wait_for(lambda: "is no longer watched" in caplog.text, DEADLINE, message="it said so")
    (index.root / "new.mp4").write_bytes(b"x")
    wait_for(lambda: "new.mp4" in index.names(""), DEADLINE,
             message="a rescan to index the new file")


def test_a_path_deep_below_unindexed_folders_is_indexed_in_one_go(tmp_path: Path,
                                                                   deep: Path) -> None:
    """An event for a file 1,100 unindexed folders down: the refresh read each folder up
    by calling itself once per level (RecursionError, the batch lost)."""
    index = FileIndex(tmp_path / "downloads")
    (tmp_path / "downloads").mkdir()
    index.rescan()
    deepest = deep_tree(tmp_path / "downloads" / "top", 1100)
    changed = index.refresh([str(deepest / "x.mp4")])
    assert "top" in index.names("") and "top" in changed
    assert index.names("/".join(["top", *["d"] * 1100])) == ["x.mp4"]


@pytest.mark.parametrize(("error", "said"), [
    (OSError(28, "inotify watch limit reached"), "[Errno 28] inotify watch limit reached"),
    (OSError(), "OSError"),  # an error without words is named by its kind
])
def test_why_a_folder_cannot_be_watched_is_said(error: BaseException, said: str) -> None:
    assert watcher_module._said(error) == said
