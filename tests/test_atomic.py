"""Whole-file writes: a disk that refuses the write halfway, a fill that fails, a symlink where
the file goes. Either the old file or the new one, never a mix, and nothing left beside it."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.atomic import replace_with, write_atomic

LIMIT = 4096


@contextlib.contextmanager
def _small_disk() -> Iterator[None]:
    """Files of this process may not grow past LIMIT bytes (RLIMIT_FSIZE): a write past it
    fails with EFBIG after a short write, as a disk that fills up does with ENOSPC. Only
    around the write: pytest's own output (to a file under mutmut) would fail too."""
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, before)
        signal.signal(signal.SIGXFSZ, handler)


def test_a_write_the_disk_refuses_halfway_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old")
    with pytest.raises(OSError) as failed, _small_disk():
        write_atomic(target, b"x" * (4 * LIMIT))
    assert failed.value.errno == errno.EFBIG
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["settings.json"]  # the half-written temp file is gone
    with _small_disk():
        write_atomic(target, "y" * LIMIT)  # what fits is written
    assert target.read_text() == "y" * LIMIT


def test_the_new_file_is_whole_with_its_mode_before_it_takes_the_name(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "auth.json"  # its folders are made
    seen: list[tuple[str, bytes, bool]] = []

    def before_rename(temp: Path) -> None:
        seen.append((temp.name, temp.read_bytes(), target.exists()))
        os.utime(temp, (1_000_000, 1_000_000))

    write_atomic(target, "é\n", mode=0o600, before_rename=before_rename)
    [(temp_name, body, there)] = seen
    assert temp_name.startswith(".auth.json.") and temp_name.endswith(".tmp")
    assert (body, there) == ("é\n".encode(), False)
    assert target.read_bytes() == body
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.stat().st_mtime == 1_000_000
    write_atomic(target, b"")
    assert target.read_bytes() == b""
    assert target.stat().st_mode & 0o777 == 0o644 & ~_umask()
    assert os.listdir(target.parent) == ["auth.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_reader_of_the_old_file_keeps_reading_it(tmp_path: Path) -> None:
    target = tmp_path / "archive.txt"
    write_atomic(target, "one\n")
    with target.open() as reader:
        write_atomic(target, "two\n")
        assert reader.read() == "one\n"
    assert target.read_text() == "two\n"


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_fill_that_fails_changes_nothing(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "db.sqlite"
    target.write_bytes(b"old")

    def fill(temp: Path) -> None:
        temp.write_bytes(b"half")
        raise error

    with pytest.raises(type(error)) as raised:
        replace_with(target, fill)
    assert raised.value is error
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["db.sqlite"]


def test_a_symlink_where_the_file_goes_is_replaced_not_followed(tmp_path: Path) -> None:
    """A link in the download folder (made by hand, or by a file action) where an NFO file
    goes: the file it points to, elsewhere, is not written."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep")
    (tmp_path / "folder").mkdir()
    link = tmp_path / "folder" / "clip.nfo"
    link.symlink_to(elsewhere)
    write_atomic(link, "<movie/>")
    assert not link.is_symlink() and link.read_text() == "<movie/>"
    assert elsewhere.read_text() == "keep"
