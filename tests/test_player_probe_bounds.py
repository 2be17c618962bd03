"""What ffprobe says of a file is bounded, read and kept: a crafted file (a thousand streams)
is told plainly and costs no more memory than a real one; the cache of descriptions keeps a
total of bytes, not only a count. Real files, the real ffmpeg and ffprobe, in process."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings, started
from falcon.testing import TestClient

from appliance import errors
from appliance.api.app import create_app
from appliance.files.reading import open_regular
from appliance.player import probe
from appliance.runtime import Runtime

pytestmark = pytest.mark.xdist_group("player")

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
# Matroska's demuxer stops at 1,000 streams; 990 copies of one audio stream make a
# description of ~1.3 MB where a real file's is a few KiB.
STREAMS = 990


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    runtime = started(make_settings(tmp_path_factory.mktemp("probe-bounds")))
    root = runtime.settings.download_path
    for name, frequency in (("a.mp3", 440), ("b.mp3", 660)):
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"sine=frequency={frequency}", "-t", "1",
                        "-c:a", "libmp3lame", str(root / name)], check=True, timeout=120)
    maps = [arg for _ in range(STREAMS) for arg in ("-map", "0:a")]
    subprocess.run([*FFMPEG, "-i", str(root / "a.mp3"), *maps, "-c", "copy",
                    str(root / "many.mkv")], check=True, timeout=120)
    yield runtime, TestClient(create_app(runtime))
    runtime.stop()


def described(path: Path) -> bytes:
    """ffprobe's description of ``path``, as the service asks for it."""
    return subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                           "-show_streams", str(path)],
                          capture_output=True, check=True, timeout=60).stdout


def test_a_file_describing_itself_in_megabytes_is_refused_plainly(
        app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    # what the service would have read and kept
    assert len(described(runtime.settings.download_path / "many.mkv")) > probe.MAX_DESCRIPTION
    for route in ("/api/file/ffprobe/many.mkv", "/api/player/playlist/many.mkv.m3u8"):
        refused = client.simulate_get(route)
        assert refused.status_code == 400, refused.text[:300]
        assert refused.json["error"] == (
            "'many.mkv' describes itself in more than 1 MiB (thousands of streams or "
            "megabytes of tags): the player does not read it.")
    info = client.simulate_get("/api/file/info/many.mkv")
    assert info.status_code == 200 and info.json["ffprobe"] == {}  # the rest is still told
    assert info.json["title"] == "many"
    assert client.simulate_get("/api/file/ffprobe/a.mp3").status_code == 200


def test_the_cache_keeps_a_total_of_bytes(app: tuple[Runtime, TestClient], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two descriptions over CACHED_BYTES: the older one is dropped (ffprobe runs for it
    again), though the count of entries is far below CACHED."""
    runtime, client = app
    root = runtime.settings.download_path
    names = [f"{tmp_path.name}-{n}.mp3" for n in ("a", "b")]
    for name, source in zip(names, ("a.mp3", "b.mp3"), strict=True):
        shutil.copyfile(root / source, root / name)
    runs = tmp_path / "runs"
    counting = tmp_path / "ffprobe"
    counting.write_text(f'#!/bin/sh\necho run >> "{runs}"\nexec ffprobe "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setattr(probe, "FFPROBE", str(counting))

    def probed(name: str) -> int:
        answer = client.simulate_get(f"/api/file/ffprobe/{name}")
        assert answer.status_code == 200, answer.text
        return len(runs.read_text().splitlines())

    assert probed(names[0]) == 1
    assert probed(names[0]) == 1  # kept
    size = len(described(root / names[0]))  # give or take the file's name in it
    monkeypatch.setattr(probe, "CACHED_BYTES", size + size // 2)
    assert probed(names[1]) == 2
    assert probed(names[1]) == 2  # kept
    assert probed(names[0]) == 3  # dropped for the newer one: both were over the bytes


def test_an_ffprobe_that_never_ends_is_stopped_and_not_remembered(
        app: tuple[Runtime, TestClient], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An ffprobe that floods its errors and never ends (a file that stalls it): stopped at
    PROBE_TIMEOUT, told plainly; the next request, ffprobe well again, reads the file."""
    runtime, client = app
    name = f"{tmp_path.name}.mp3"
    shutil.copyfile(runtime.settings.download_path / "a.mp3",
                    runtime.settings.download_path / name)
    stalled = tmp_path / "ffprobe"
    stalled.write_text("#!/bin/sh\nexec yes 'error: stalled' >&2\n")
    stalled.chmod(0o755)
    monkeypatch.setattr(probe, "FFPROBE", str(stalled))
    monkeypatch.setattr(probe, "PROBE_TIMEOUT", 0.5)
    late = client.simulate_get(f"/api/file/ffprobe/{name}")
    assert late.status_code == 400
    assert late.json["error"] == f"ffprobe took longer than 0.5 s on '{name}'."
    monkeypatch.undo()
    assert client.simulate_get(f"/api/file/ffprobe/{name}").status_code == 200


def test_a_prober_with_every_slot_taken_says_so(tmp_path: Path) -> None:
    """A probe over PROBE_SLOTS waits, then is told what is busy (a Prober of its own: the
    runtime's is made by the module's fixture, before any test)."""
    prober = probe.Prober()
    prober.slots.wait = 0.01  # the wait is not under test
    file = tmp_path / "a.mp3"
    file.write_bytes(b"not read: no slot")
    for _ in range(probe.PROBE_SLOTS):
        prober.slots.take()
    with open_regular(file, tmp_path) as media, pytest.raises(errors.AppError) as busy:
        prober.probe(media)
    assert busy.value.message == "The player is busy (3 ffprobe processes); try again."
    assert busy.value.headers == {"Retry-After": "2"}


@pytest.mark.parametrize(("script", "said", "kept"), [
    # killed (the out-of-memory killer on a small box): no verdict on the file, asked again
    ("kill -9 $$", "ffprobe was stopped (signal 9) on '{}'; try again.", False),
    # ended saying nothing: a verdict, kept until the file changes
    ("exit 1", "ffprobe cannot read '{}' as media: no output", True),
])
def test_an_ffprobe_that_ends_badly_is_told_and_kept_only_if_it_judged(
        app: tuple[Runtime, TestClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        script: str, said: str, kept: bool) -> None:
    """Before, an ffprobe killed by a signal was a verdict like any other: the file stayed
    unplayable until it changed."""
    runtime, client = app
    name = f"{tmp_path.name}.mp3"
    shutil.copyfile(runtime.settings.download_path / "a.mp3",
                    runtime.settings.download_path / name)
    ending = tmp_path / "ffprobe"
    ending.write_text(f"#!/bin/sh\n{script}\n")
    ending.chmod(0o755)
    monkeypatch.setattr(probe, "FFPROBE", str(ending))
    for route in ("file/ffprobe", "player/playlist"):
        bad = client.simulate_get(f"/api/{route}/{name}"
                                  + (".m3u8" if route.startswith("player") else ""))
        assert bad.status_code == 400, bad.text
        assert bad.json["error"] == said.format(name)
    monkeypatch.undo()
    again = client.simulate_get(f"/api/file/ffprobe/{name}")
    assert again.status_code == (400 if kept else 200), again.text


def test_the_cache_keeps_its_count_of_answers(app: tuple[Runtime, TestClient], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """CACHED answers are kept, all of them; one more drops the one asked longest ago (a
    Prober of its own, with CACHED at 2)."""
    runtime, _ = app
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("a.mp3", "b.mp3", "c.mp3"):  # three files (three inodes), one content
        shutil.copyfile(runtime.settings.download_path / "a.mp3", folder / name)
    runs = tmp_path / "runs"
    counting = tmp_path / "ffprobe"
    counting.write_text(f'#!/bin/sh\necho run >> "{runs}"\nexec ffprobe "$@"\n')
    counting.chmod(0o755)
    monkeypatch.setattr(probe, "FFPROBE", str(counting))
    monkeypatch.setattr(probe, "CACHED", 2)
    prober = probe.Prober()

    def probed(name: str) -> int:
        with open_regular(folder / name, folder) as media:
            assert float(prober.probe(media)["format"]["duration"]) > 0
        return len(runs.read_text().splitlines())

    assert probed("a.mp3") == 1
    assert probed("b.mp3") == 2
    assert probed("a.mp3") == 2  # both kept: CACHED of them
    assert probed("c.mp3") == 3  # one more: b, asked longest ago, dropped
    assert probed("a.mp3") == 3
    assert probed("b.mp3") == 4
