"""The download process's job runner, driven in this process over a real pipe."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import wait_for
from yt_dlp.downloader.common import FileDownloader
from yt_dlp.utils import DownloadError

from appliance.engine import child, move_check, ytdlp_tuning
from appliance.engine.filter_bound import FilterTooSlow
from appliance.engine.folder_disk import MARKER


class Messages:
    """The child's message channel: a pipe, read on a thread into a list."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.channel = child.Channel(write_fd)
        self.received: list[dict[str, Any]] = []
        self._reader = os.fdopen(read_fd, "rb")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._reader:
            self.received.append(json.loads(line))

    def close(self) -> list[dict[str, Any]]:
        self.channel._out.close()
        self._thread.join(timeout=10)
        self._reader.close()
        return self.received


@pytest.fixture
def messages() -> Iterator[Messages]:
    pipe = Messages()
    yield pipe
    if not pipe._reader.closed:
        pipe.close()


def test_a_jobs_javascript_runtimes_are_the_services_choice(tmp_path: Path) -> None:
    channel = child.Channel(os.open(os.devnull, os.O_WRONLY))
    job = download_job(tmp_path, "https://x.invalid/v")
    runtimes = {"deno": {"path": "/usr/bin/deno"}}
    assert child._params(job, channel, None)["js_runtimes"] != runtimes  # yt-dlp's default
    assert child._params({**job, "js_runtimes": runtimes}, channel, None)["js_runtimes"] == \
        runtimes


def test_a_message_is_on_the_pipe_as_soon_as_it_is_sent() -> None:
    """Not held in a buffer: the engine waits on it (a progress, a job's end)."""
    read_fd, write_fd = os.pipe()
    channel = child.Channel(write_fd)
    try:
        channel.send({"type": "ready", "pid": 1})
        os.set_blocking(read_fd, False)
        assert os.read(read_fd, 1024) == b'{"type": "ready", "pid": 1}\n'
    finally:
        channel._out.close()
        os.close(read_fd)


def test_a_message_is_one_line_of_valid_text(tmp_path: Path) -> None:
    """A site's lone surrogate is mended (U+FFFD) before it leaves: the service stores what it
    reads. A line break is escaped, a character past the BMP kept as it is."""
    path = tmp_path / "messages"
    channel = child.Channel(os.open(path, os.O_WRONLY | os.O_CREAT))
    channel.send({"title": "caf\udce9\ud800 😀", "msg": "a\nb", "when": Path("/x")})
    channel._out.close()
    line = path.read_bytes()
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line.decode("utf-8")) == {"title": "caf\ufffd\ufffd 😀", "msg": "a\nb",
                                                "when": "/x"}


def download_job(tmp_path: Path, url: str) -> dict[str, Any]:
    return {"op": "download", "job": "j1", "url": url, "args": [],
            "home": str(tmp_path / "home"), "temp": str(tmp_path / "temp"),
            "template": "out.%(ext)s", "default_template": "%(title)s.%(ext)s"}


def test_progress_reaches_the_engine_throttled_with_every_state(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    url = origin.slow_url
    size = origin.path_for(url).stat().st_size
    # About two seconds of trickle: yt-dlp's hook fires on every small read meanwhile.
    started = time.monotonic()
    result = child.run_download(download_job(tmp_path, origin.slow_url_at(size // 2)),
                                messages.channel)
    elapsed = time.monotonic() - started
    progress = [m for m in messages.close() if m["type"] == "progress"]

    assert Path(result["filepath"]) == tmp_path / "home" / "out.mp4"
    assert Path(result["filepath"]).stat().st_size == size
    assert progress[0]["status"] == "downloading"
    [finished] = [m for m in progress if m["status"] == "finished"]
    assert finished["downloaded_bytes"] == size
    assert finished["filename"] == str(tmp_path / "temp" / "out.mp4")
    assert progress[-1]["status"] == "postprocessing"  # the move from temp to home
    assert progress[-1]["postprocessor"] == "MoveFiles" and progress[-1]["job"] == "j1"
    # at most one update per PROGRESS_INTERVAL while downloading (however long that took on
    # this box), plus one message per state change
    downloading = [m for m in progress if m["status"] == "downloading"]
    assert 1 <= len(downloading) <= elapsed / child.PROGRESS_INTERVAL + 1, progress
    # a trickle of two seconds: yt-dlp has a speed and a time left to say meanwhile
    assert any(isinstance(m["eta"], int | float) and m["speed"] for m in downloading), progress
    assert all(m["total_bytes"] == size for m in downloading), progress
    assert len(progress) == len(downloading) + 2, progress


def test_the_bytes_before_a_stall_are_told_without_waiting_for_more(
        tmp_path: Path, origin: MediaOrigin, messages: Messages,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """300 KB in a burst (under PROGRESS_INTERVAL), then nothing: the newest count yt-dlp
    gave is sent once its interval is up. Only the burst's first was, the item saying a few
    KB at the burst's speed until yt-dlp's socket timeout (20 s) gave up on the server."""
    seen: list[int] = []
    relay_hook = child.ProgressRelay.download_hook

    def seeing(self: child.ProgressRelay, d: dict[str, Any]) -> None:
        if d.get("status") == "downloading":
            seen.append(d.get("downloaded_bytes") or 0)
        relay_hook(self, d)

    monkeypatch.setattr(child.ProgressRelay, "download_hook", seeing)
    job = {**download_job(tmp_path, origin.stall_url(300_000)),
           "args": ["--socket-timeout", "5", "--retries", "0"]}
    ended = threading.Event()

    def download() -> None:
        with contextlib.suppress(DownloadError):
            child.run_download(job, messages.channel)
        ended.set()

    threading.Thread(target=download, daemon=True).start()
    wait_for(ended.is_set, timeout=120, message="the stalled download to give up")
    downloading = [m for m in messages.close()
                   if m["type"] == "progress" and m["status"] == "downloading"]
    assert len(seen) > 2 and seen[-1] > 100_000  # a burst of reads, then the stall
    assert downloading[-1]["downloaded_bytes"] == seen[-1], (seen, downloading)


def test_a_job_without_a_template_names_its_file_by_the_default_one(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    job = {**download_job(tmp_path, origin.clip_url), "template": "",
           "default_template": "default %(id)s.%(ext)s"}
    result = child.run_download(job, messages.channel)
    assert Path(result["filepath"]) == tmp_path / "home" / "default clip.mp4"


def test_a_jobs_template_wins_over_an_output_option(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    """A request's template is its own field; an ``-o`` among its options names the file
    only without one."""
    job = {**download_job(tmp_path, origin.clip_url), "args": ["-o", "opt %(id)s.%(ext)s"]}
    result = child.run_download(job, messages.channel)
    assert Path(result["filepath"]) == tmp_path / "home" / "out.mp4"
    assert result["summary"]["id"] == "clip" and result["summary"]["ext"] == "mp4"
    result = child.run_download({**job, "template": ""}, messages.channel)
    assert Path(result["filepath"]) == tmp_path / "home" / "opt clip.mp4"


@pytest.mark.parametrize(("args", "why"), [
    (["--reject-title", "clip"], 'Not downloaded: "clip" title matched reject pattern "clip".'),
    (["--match-filters", "duration>1000"], "Not downloaded: clip does not pass filter "
                                           "(duration>1000), skipping."),
    (["--skip-download"], "Not downloaded: its options tell yt-dlp not to (--skip-download, "
                          "--simulate, or one that only prints or lists: --print, -j, --get-url, "
                          "-F, ...)."),
    (["-j"], "Not downloaded: its options tell yt-dlp not to "),
    (["-F"], "Not downloaded: its options tell yt-dlp not to "),
    (["--max-filesize", "10"], "Not downloaded: yt-dlp wrote no file and gave no error "),
])
def test_a_download_that_leaves_no_file_says_why(
        tmp_path: Path, origin: MediaOrigin, messages: Messages, args: list[str],
        why: str) -> None:
    """It ended without an error and without a file: the item was finished, its file named
    (--skip-download: one that was never written) or not, and nobody said why."""
    job = {**download_job(tmp_path, origin.clip_url), "args": args}
    result = child.run_download(job, messages.channel)
    assert result["filepath"] == "" and result["skipped"].startswith(why), result["skipped"]
    assert result["summary"]["id"] == "clip"
    assert not (tmp_path / "home" / "out.mp4").exists()


def test_files_stay_in_the_temp_folder_when_the_download_folder_lost_its_mark(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    """The disk of the download folder went since the service last looked: the bare mount
    point has no mark, and nothing is moved onto it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / MARKER).write_text("another\n")
    job = {**download_job(tmp_path, origin.clip_url),
           "folder_mark": {"folder": str(home), "token": "the-one"}}
    with pytest.raises(move_check.FolderGone, match="lost its disk"):
        child.run_download(job, messages.channel)
    assert [p.name for p in home.iterdir()] == [MARKER]
    assert [p.name for p in (tmp_path / "temp").iterdir()] == ["out.mp4"]
    (home / MARKER).write_text("the-one\n")  # the disk is back
    result = child.run_download(job, messages.channel)
    assert Path(result["filepath"]) == home / "out.mp4"


def test_a_download_given_its_info_does_not_ask_the_site_again(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    url = origin.watch_url("short")
    extract = {**download_job(tmp_path, url), "op": "extract", "full": True}
    info = child.run_extract(extract, messages.channel)["info"]
    origin.clear_requests()
    result = child.run_download({**download_job(tmp_path, url), "info": info},
                                messages.channel)
    assert Path(result["filepath"]).stat().st_size > 0
    assert origin.requests_for(url) == []


def test_a_jobs_cookies_are_yt_dlps(tmp_path: Path, origin: MediaOrigin,
                                    messages: Messages) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n")
    job = {**download_job(tmp_path, origin.clip_url), "cookiefile": str(cookies)}
    child.run_download(job, messages.channel)
    saved = cookies.read_text()  # yt-dlp writes its jar back as the job ends
    assert "generated by yt-dlp" in saved and "session\tabc" in saved


def test_a_summary_keeps_scalars_and_short_lists_of_them() -> None:
    many = list(range(child.MAX_LIST + 1))
    summary = child.summarize({
        "title": "t" * (child.MAX_TEXT + 1), "duration": 5, "tags": ["a", "b"], "ok": True,
        "many": many, "mixed": ["a", {"b": 1}], "formats": {"a": "b"}, "_private": "x",
        "none": None, "categories": many[:child.MAX_LIST]})
    assert summary == {"title": "t" * child.MAX_TEXT, "duration": 5, "tags": ["a", "b"],
                       "ok": True, "categories": many[:child.MAX_LIST]}


def test_a_playlists_entries_without_a_url_are_left_out_of_its_summary() -> None:
    summary = child.summarize({"_type": "multi_video", "title": "p", "entries": [
        None, {"title": "no url"}, {"webpage_url": "https://example.com/1", "id": "1"}]})
    assert summary["entries"] == [{"url": "https://example.com/1", "title": "", "id": "1",
                                   "ie_key": ""}]


def test_a_playlist_is_summarised_with_its_entries(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    job = {**download_job(tmp_path, origin.playlist_url), "op": "extract"}
    summary = child.run_extract(job, messages.channel)["summary"]
    assert summary["_type"] == "playlist"
    assert [e["url"] for e in summary["entries"]] == origin.playlist_entry_urls
    assert all(e["id"] and e["ie_key"] for e in summary["entries"])


def test_console_progress_line_is_not_formatted_per_block(
        tmp_path: Path, origin: MediaOrigin, messages: Messages,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """yt-dlp formats its (unseen) console line on every block unless told otherwise."""
    formatted: list[str] = []
    report = FileDownloader._report_progress_status

    def counting(self: FileDownloader, s: dict[str, Any], template: str) -> None:
        formatted.append(s["status"])
        report(self, s, template)

    monkeypatch.setattr(FileDownloader, "_report_progress_status", counting)
    blocks: list[int] = []
    relay_hook = child.ProgressRelay.download_hook

    def count_blocks(self: child.ProgressRelay, d: dict[str, Any]) -> None:
        blocks.append(d.get("downloaded_bytes") or 0)
        relay_hook(self, d)

    monkeypatch.setattr(child.ProgressRelay, "download_hook", count_blocks)
    size = 40_000_000
    result = child.run_download(download_job(tmp_path, origin.big_file(size)), messages.channel)

    assert Path(result["filepath"]).stat().st_size == size
    assert len(blocks) > 10  # the hook saw many blocks...
    assert formatted.count("downloading") <= 1  # ...and the console line was built once


def test_tables_are_rendered_only_for_something_to_print(
        tmp_path: Path, origin: MediaOrigin, messages: Messages,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """yt-dlp renders the formats table at every stage of a download to fill --print
    templates; without one nothing is rendered, with one the template is still printed."""
    rendered: list[str] = []
    render = ytdlp_tuning.YoutubeDL.render_formats_table

    def counting(self: ytdlp_tuning.YoutubeDL, info: dict[str, Any]) -> Any:
        rendered.append(info.get("id") or "")
        return render(self, info)

    monkeypatch.setattr(ytdlp_tuning.YoutubeDL, "render_formats_table", counting)
    plain = child.run_download(download_job(tmp_path / "a", origin.clip_url), messages.channel)
    assert Path(plain["filepath"]).is_file()
    assert rendered == []

    job = {**download_job(tmp_path / "b", origin.clip_url),
           "args": ["--print", "after_move:printed %(filepath)s"]}
    printed = child.run_download(job, messages.channel)
    assert Path(printed["filepath"]).is_file()
    assert rendered  # the --print stage had its tables
    assert f"printed {printed['filepath']}" in capsys.readouterr().out


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: memoryview) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("size", [0, 1, ytdlp_tuning.WRITE_SLICE, 4 * 2**20 + 3])
def test_streaming_writer_passes_every_byte_in_bounded_pieces(size: int) -> None:
    data = os.urandom(size)
    recorder = Recorder()
    writer = ytdlp_tuning.StreamingWriter(recorder)

    assert writer.write(data) == size
    assert b"".join(recorder.writes) == data
    assert all(0 < len(w) <= ytdlp_tuning.WRITE_SLICE for w in recorder.writes)
    writer.close()  # everything else reaches the file itself
    assert recorder.closed


def test_streaming_writer_hands_each_written_range_to_the_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    handed: list[tuple[int, int]] = []
    fadvise = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        handed.append((offset, length))
        fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    block = os.urandom(4 * 2**20)
    target = tmp_path / "file.part"
    with target.open("wb") as stream:
        writer = ytdlp_tuning.StreamingWriter(stream)
        for _ in range(10):
            writer.write(block)

    assert target.read_bytes() == block * 10
    # contiguous from the start, each at least WRITEBACK_EVERY, the tail left to the close
    assert [offset for offset, _ in handed] == [0, *itertools.accumulate(n for _, n in handed)][:-1]
    assert all(n >= ytdlp_tuning.WRITEBACK_EVERY for _, n in handed)
    assert 40 * 2**20 - sum(n for _, n in handed) < ytdlp_tuning.WRITEBACK_EVERY

    handed.clear()  # a resumed download: the ranges follow what was there
    with target.open("ab") as stream:
        writer = ytdlp_tuning.StreamingWriter(stream)
        for _ in range(5):
            writer.write(block)
    assert target.stat().st_size == 60 * 2**20
    assert handed[0][0] == 40 * 2**20


def test_http_downloads_write_through_the_streaming_writer(
        tmp_path: Path, origin: MediaOrigin, messages: Messages,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ytdlp_tuning.stream_http_downloads_to_disk()
    ytdlp_tuning.stream_http_downloads_to_disk()  # a second call changes nothing
    written: list[int] = []
    write = ytdlp_tuning.StreamingWriter.write

    def counting(self: ytdlp_tuning.StreamingWriter, data: bytes) -> int:
        written.append(len(data))
        return write(self, data)

    monkeypatch.setattr(ytdlp_tuning.StreamingWriter, "write", counting)
    size = 20_000_000
    result = child.run_download(download_job(tmp_path, origin.big_file(size)), messages.channel)

    assert Path(result["filepath"]).stat().st_size == size
    assert sum(written) == size
    assert max(written) > ytdlp_tuning.WRITE_SLICE  # yt-dlp's own blocks were bigger


@pytest.mark.parametrize("target", ["os:system", "appliance.engine.child", "appliance.x:a b",
                                    "appliancex.y:z", "", None])
def test_a_call_runs_only_a_function_of_the_service(target: Any) -> None:
    # (the refusal names what was asked for)
    with pytest.raises(ValueError, match=re.escape(f"not a function of the service: {target!r}")):
        child.run_call({"op": "call", "job": "c", "target": target, "kwargs": {}},
                       child.Channel(os.open(os.devnull, os.O_WRONLY)))


def test_a_call_returns_what_the_function_returns() -> None:
    job = {"op": "call", "job": "c", "target": "appliance.engine.child:generic_id",
           "kwargs": {"url": "https://example.com/a/clip%20one.mp4"}}
    assert child.run_call(job, child.Channel(os.open(os.devnull, os.O_WRONLY))) == {
        "value": "clip one"}


def test_a_new_youtubedl_has_yt_dlps_own_extractors_in_its_order() -> None:
    ytdlp_tuning.warm_up()
    containment = ytdlp_tuning.Containment("/tmp", "/tmp")
    with ytdlp_tuning.YoutubeDL({"quiet": True}) as own, \
            ytdlp_tuning.new_ydl({"quiet": True}, containment) as first, \
            ytdlp_tuning.new_ydl({"quiet": True}, containment) as second:
        assert list(first._ies) == list(own._ies)  # the catch-all one last, as yt-dlp has it
        assert all(first._ies[key] is value for key, value in own._ies.items()
                   if isinstance(value, type))
        # Extractors yt-dlp holds as instances (a catch-all one, in some versions) are
        # instances of their own, each bound to its YoutubeDL.
        catch_all = [key for key, value in first._ies.items() if not isinstance(value, type)]
        assert catch_all == [
            key for key, value in own._ies.items() if not isinstance(value, type)]
        for key in catch_all:
            assert first._ies[key] is not second._ies[key]
            assert first._ies[key]._downloader is first
            assert first._ies_instances[key] is first._ies[key]
        # The table is shared, what a job puts in it is its own: an instance of Vimeo's
        # extractor made by the first is in the first's table only.
        vimeo = first.get_info_extractor("Vimeo")
        assert first._ies["Vimeo"] is vimeo and vimeo._downloader is first
        assert second._ies["Vimeo"] is own._ies["Vimeo"] and isinstance(own._ies["Vimeo"], type)
        assert len(first._ies) == len(second._ies) == len(own._ies)
        assert list(first._ies) == list(own._ies)
        # Taken out of one, it is still in the others; put back, there again.
        taken = first._ies.pop("Vimeo")
        assert taken is vimeo and "Vimeo" not in first._ies and "Vimeo" in second._ies
        assert len(first._ies) == len(own._ies) - 1 == len(list(first._ies))
        with pytest.raises(KeyError):
            first._ies["Vimeo"]
        first._ies.update(Vimeo=own._ies["Vimeo"])
        assert list(first._ies) == list(own._ies) and len(first._ies) == len(own._ies)


@pytest.mark.parametrize("args", [
    ["--match-filters", "title~=(a+)+$"], ["--reject-title", "(a+)+$"],
    ["--match-title", "(a|a)+$"]])
def test_a_filter_that_backtracks_without_end_is_stopped_saying_why(
        tmp_path: Path, origin: MediaOrigin, messages: Messages, args: list[str]) -> None:
    """Saved, such an expression passes every check of its text; on a title of forty "a" and
    a "!" yt-dlp's re.search ran for minutes, the download process's CPU and the item's slot
    held until the job's time bound."""
    url = origin.watch_url("short", title="a" * 40 + "!")
    job = {**download_job(tmp_path, url), "args": args}
    with pytest.raises(FilterTooSlow, match=r"ran longer than 2 s of CPU on this item's"):
        child.run_download(job, messages.channel)
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())
    # A filter that does its work in time is no error: the same item, let through.
    passed = child.run_download({**job, "args": ["--match-filters", "title~=^a+!$"]},
                                messages.channel)
    assert Path(passed["filepath"]).stat().st_size > 0
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)  # no bound left running


@pytest.mark.parametrize(("compat", "refused"), [
    ("allow-unsafe-ext", "allow-unsafe-ext"),
    ("all", "allow-unsafe-exec-expansion, allow-unsafe-ext"),
    ("2024,allow-unsafe-exec-expansion", "allow-unsafe-exec-expansion"),
    ("all,-allow-unsafe-ext,-allow-unsafe-exec-expansion", None), ("youtube-dl", None)])
def test_compatibility_options_that_turn_off_yt_dlps_name_checks_are_refused(
        tmp_path: Path, origin: MediaOrigin, messages: Messages, compat: str,
        refused: str | None) -> None:
    job = {**download_job(tmp_path, origin.clip_url), "args": ["--compat-options", compat]}
    if refused is None:
        assert Path(child.run_download(job, messages.channel)["filepath"]).is_file()
        return
    with pytest.raises(DownloadError, match=rf"^--compat-options {refused} is refused here: "):
        child.run_download(job, messages.channel)



def test_lines_sent_from_threads_at_once_stay_whole() -> None:
    """yt-dlp calls the hooks and the logger from its fragment threads (``-N``): lines over
    the pipe's atomic size (PIPE_BUF, 4 KiB) written at once were interleaved, and the service
    read a line that is no JSON and stopped the download."""
    read_fd, write_fd = os.pipe()
    channel = child.Channel(write_fd)
    lines: list[bytes] = []

    def read() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            lines.extend(pipe)

    def send(n: int) -> None:
        for k in range(40):
            channel.send({"type": "log", "msg": str(n) * 200_000, "k": k})

    threads = [threading.Thread(target=read, daemon=True)]
    threads += [threading.Thread(target=send, args=(n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    for sender in threads[1:]:
        sender.join(timeout=60)
    channel._out.close()
    threads[0].join(timeout=60)
    assert len(lines) == 120
    for line in lines:
        message = json.loads(line)
        assert set(message["msg"]) == {message["msg"][0]}


def test_a_wait_yt_dlp_chose_is_told_to_the_engine(
        tmp_path: Path, origin: MediaOrigin, messages: Messages) -> None:
    """A wait is silent otherwise; the engine would take it for a stall (test_stalls.py)."""
    job = {**download_job(tmp_path, origin.clip_url), "args": ["--sleep-interval", "1"]}
    child.run_download(job, messages.channel)
    child._Logger(messages.channel, "j2").debug("[download] Destination: Sleeping 9 seconds ...")
    said = messages.close()
    assert {"type": "waiting", "job": "j1", "seconds": 1.0} in said
    assert [m for m in said if m["type"] == "waiting"] == [
        {"type": "waiting", "job": "j1", "seconds": 1.0}]
