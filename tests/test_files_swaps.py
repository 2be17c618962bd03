"""A file of the download folder is judged as it is opened, not as it was checked: whoever can
write in the folder may put a FIFO, a directory or a symlink under a checked name before the
service opens it (a FIFO blocked request threads for good, a symlink leaked a file from
outside, a directory or a vanished file was a 500). Real files, FIFOs and sockets."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from support.server import Server, wait_for

from appliance import errors
from appliance.files import zips
from appliance.files.index import FileIndex
from appliance.files.reading import open_regular


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "downloads"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "clip.mp4").write_bytes(b"inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.mp4").write_bytes(b"SECRET")
    return root


def status_of(path: Path, root: Path) -> int:
    with pytest.raises(errors.AppError) as refused:
        open_regular(path, root)
    return refused.value.status


def test_a_regular_file_inside_is_read(folder: Path) -> None:
    with open_regular(folder / "sub" / "clip.mp4", folder) as handle:
        assert handle.read() == b"inside"
        assert handle.name == str(folder / "sub" / "clip.mp4")


def test_what_is_not_a_regular_file_is_404_at_once(folder: Path, tmp_path: Path) -> None:
    fifo = folder / "sub" / "fifo.mp4"
    os.mkfifo(fifo)  # no writer: a blocking open would never return
    assert status_of(fifo, folder) == 404
    (folder / "sub" / "dir.mp4").mkdir()
    assert status_of(folder / "sub" / "dir.mp4", folder) == 404
    assert status_of(folder / "sub" / "gone.mp4", folder) == 404
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(folder / "sub" / "sock.mp4"))
        assert status_of(folder / "sub" / "sock.mp4", folder) == 404


def test_a_symlink_swapped_in_is_not_followed(folder: Path, tmp_path: Path) -> None:
    checked = folder / "sub" / "clip.mp4"
    checked.unlink()
    checked.symlink_to(tmp_path / "outside" / "secret.mp4")
    assert status_of(checked, folder) == 404


def test_a_folder_swapped_for_a_symlink_leads_outside(folder: Path, tmp_path: Path) -> None:
    (folder / "sub" / "clip.mp4").unlink()
    (folder / "sub").rmdir()
    (folder / "sub").symlink_to(tmp_path / "outside")
    (tmp_path / "outside" / "clip.mp4").write_bytes(b"SECRET")
    assert status_of(folder / "sub" / "clip.mp4", folder) == 403
    with pytest.raises(errors.AppError) as refused:
        open_regular(folder / "sub" / "clip.mp4", folder)
    assert refused.value.message == "The path leads outside the download folder."


# --- a zip reads each file when its turn comes ------------------------------------------------

def test_a_zip_member_swapped_after_the_check_is_not_sent(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zips, "SENT_PIECE", 1)  # each piece sent as it is made
    (folder / "sub" / "b.srt").write_bytes(b"subtitle")
    stream, _ = zips.build(folder, ["sub/clip.mp4", "sub/b.srt"])
    (folder / "sub" / "b.srt").unlink()
    (folder / "sub" / "b.srt").symlink_to(tmp_path / "outside" / "secret.mp4")
    sent = bytearray()
    with pytest.raises(zips.FileChanged, match="not a file"):
        for chunk in stream:
            sent += chunk
    assert b"inside" in sent and b"SECRET" not in sent


def test_a_zip_member_swapped_for_a_fifo_ends_the_zip(folder: Path) -> None:
    stream, _ = zips.build(folder, ["sub/clip.mp4"])
    (folder / "sub" / "clip.mp4").unlink()
    os.mkfifo(folder / "sub" / "clip.mp4")
    with pytest.raises(zips.FileChanged, match="not a file"):
        b"".join(stream)


def test_a_zip_member_replaced_by_another_file_ends_the_zip(folder: Path) -> None:
    stream, _ = zips.build(folder, ["sub/clip.mp4"])
    replacement = folder / "sub" / "new.mp4"
    replacement.write_bytes(b"other!")  # the same size, another file
    replacement.replace(folder / "sub" / "clip.mp4")
    with pytest.raises(zips.FileChanged):
        b"".join(stream)


def test_a_zip_leaves_out_what_is_no_longer_a_file(folder: Path) -> None:
    # Checked when the zip was prepared; by the time it is fetched one went away and one is a
    # folder now: the zip is what is left, not a 500.
    (folder / "sub" / "gone.mp4").write_bytes(b"gone")
    (folder / "sub" / "now a folder.mp4").write_bytes(b"file")
    (folder / "sub" / "gone.mp4").unlink()
    (folder / "sub" / "now a folder.mp4").unlink()
    (folder / "sub" / "now a folder.mp4").mkdir()
    (folder / "sub" / "out.mp4").symlink_to(folder.parent / "outside" / "secret.mp4")
    stream, _ = zips.build(folder, ["sub/gone.mp4", "sub/out.mp4", "sub/now a folder.mp4",
                                    "sub/clip.mp4"])
    with zipfile.ZipFile(io.BytesIO(b"".join(stream))) as archive:
        assert archive.namelist() == ["sub/clip.mp4"]
    with pytest.raises(errors.AppError) as nothing:
        zips.build(folder, ["sub/gone.mp4"])
    assert nothing.value.status == 400


def test_an_unchanged_zip_has_the_files(folder: Path) -> None:
    (folder / "sub" / "b.srt").write_bytes(b"subtitle")
    stream, _ = zips.build(folder, ["sub/clip.mp4", "sub/b.srt"])
    data = b"".join(stream)
    assert len(data) == len(zips.build(folder, ["sub/clip.mp4", "sub/b.srt"])[0])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("sub/clip.mp4") == b"inside"
        assert archive.read("sub/b.srt") == b"subtitle"


def prepared_index(folder: Path, videos: int) -> FileIndex:
    """``videos`` files in ``sub``, each with two sidecars, indexed."""
    for n in range(videos):
        for suffix in (".mp4", ".en.srt", ".nfo"):
            (folder / "sub" / f"v{n}{suffix}").write_bytes(b"x")
    index = FileIndex(folder)
    index.rescan()
    return index


def test_a_zip_counts_its_sidecars_in_its_bound(folder: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten thousand videos asked, each with its subtitles and NFO, made a zip three times the
    bound; the bound is shrunk here to six files."""
    monkeypatch.setattr(zips, "MAX_FILES", 6)
    index = prepared_index(folder, 3)
    tokens = zips.ZipTokens()
    two = tokens.prepare(index, ["sub/v0.mp4", "sub/v1.mp4", "sub/v0.mp4"], "me")
    assert two["files"] == ["sub/v0.mp4", "sub/v0.en.srt", "sub/v0.nfo",
                            "sub/v1.mp4", "sub/v1.en.srt", "sub/v1.nfo"]
    with pytest.raises(errors.AppError) as over:
        tokens.prepare(index, ["sub/v0.mp4", "sub/v1.mp4", "sub/v2.mp4"], "me")
    assert over.value.status == 400
    assert over.value.message == "At most 6 files at once, sidecars included (these are 9)."


def test_the_zips_prepared_at_once_hold_a_bounded_number_of_paths(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each token holds its paths for ten minutes: all of them together are bounded (429),
    and what expired no longer counts, nor can be fetched."""
    monkeypatch.setattr(zips, "MAX_HELD", 6)
    index = prepared_index(folder, 3)
    tokens = zips.ZipTokens()
    first = tokens.prepare(index, ["sub/v0.mp4"], "me")
    tokens.prepare(index, ["sub/v1.mp4"], "me")
    with pytest.raises(errors.AppError) as full:
        tokens.prepare(index, ["sub/v2.mp4"], "me")
    assert full.value.status == 429
    assert tokens.files(first["token"], "me") == first["files"]
    with pytest.raises(errors.AppError) as other:
        tokens.files(first["token"], "someone else")
    assert other.value.status == 400
    monkeypatch.setattr(zips, "TOKEN_TTL", 0.0)  # a token expires as it is made
    brief = zips.ZipTokens()
    for _ in range(3):  # each would fill the bound with the one before, were it counted
        made = brief.prepare(index, ["sub/v2.mp4", "sub/v1.mp4"], "me")
    with pytest.raises(errors.AppError) as expired:
        brief.files(made["token"], "me")
    assert expired.value.message == "Invalid or expired download token."


def test_the_number_of_zips_prepared_at_once_is_bounded(folder: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zips, "MAX_TOKENS", 2)
    index = prepared_index(folder, 1)
    tokens = zips.ZipTokens()
    for _ in range(2):
        tokens.prepare(index, ["sub/clip.mp4"], "me")
    with pytest.raises(errors.AppError) as full:
        tokens.prepare(index, ["sub/clip.mp4"], "me")
    assert full.value.status == 429
    assert full.value.message == ("Too many zip downloads prepared; try again in a few "
                                  "minutes.")


@pytest.mark.e2e
def test_a_zip_that_breaks_off_closes_its_connection_in_one_line(
        make_server: Callable[..., Server], tmp_path: Path) -> None:
    """Through the real worker: the client gets less than announced and the connection ends;
    the log says why in one warning (it had two tracebacks, one from the worker's own
    clean-up on the closed socket); the service goes on."""
    server = make_server()
    folder = server.download_path / "zipt"
    folder.mkdir(parents=True)
    with open(folder / "a_big.mp4", "wb") as big:
        big.truncate(64 << 20)  # more than the socket buffers hold: b.txt is read later
    (folder / "b.txt").write_bytes(b"small")
    (tmp_path / "secret.txt").write_bytes(b"SECRET" * 100)
    token = server.post("/api/file/download", ["zipt/a_big.mp4", "zipt/b.txt"]).json()["token"]
    received = bytearray()
    with requests.get(f"{server.url}/api/file/download/{token}", stream=True,
                      timeout=30) as answer:
        announced = int(answer.headers["Content-Length"])
        chunks = answer.iter_content(1 << 16)
        received += next(chunks)
        (folder / "b.txt").unlink()
        (folder / "b.txt").symlink_to(tmp_path / "secret.txt")
        with contextlib.suppress(requests.exceptions.ChunkedEncodingError):
            for chunk in chunks:
                received += chunk
    assert len(received) < announced and b"SECRET" not in received
    wait_for(lambda: "broke off" in server.log(), 10, message="the warning")
    assert "Traceback" not in server.log()
    assert server.get("/api/ping").status_code == 200
