"""What a hostile or broken package index, and a release that is installed but not what it
says, can make the yt-dlp update do: in this process (so that mutation testing judges it),
against package indexes on raw loopback sockets and a throwaway environment whose "yt-dlp" is
a few files written by the test."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from support.package_index import PackageIndex, make_venv
from support.server import wait_for

from appliance import cli
from appliance.config import url_shown
from appliance.errors import CONFLICT, AppError
from appliance.events import EventBus
from appliance.ytdlp_update import YtdlpUpdates
from appliance.ytdlp_update.index import (
    JSON_PAGE,
    final,
    newer,
    newest_version,
    release_versions,
    version_key,
)
from appliance.ytdlp_update.updater import PipFailed, Updater, _pin
from appliance.ytdlp_update.wheels import installed_files

HUGE = "9" * 5000  # int() refuses a number of more than 4300 digits


def link(version: str, name: str = "yt_dlp") -> str:
    file = f"{name}-{version}-py3-none-any.whl"
    return f'<a href="../../files/{file}#sha256=00">{file}</a>\n'


def page(*versions: str) -> bytes:
    return ("<!DOCTYPE html><html><body>\n" + "".join(map(link, versions))
            + "</body></html>\n").encode()


class RawIndex:
    """A package index on a raw socket: each connection's request is read, then ``answer``
    writes whatever it likes (``stop`` is set at the end of the test)."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self.answer = answer
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/simple"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.requests.append(conn.recv(65536))
                self.answer(conn, self.stop)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture
def raw_index() -> Iterator[Callable[..., RawIndex]]:
    made: list[RawIndex] = []

    def make(answer: Callable[[socket.socket, threading.Event], None]) -> RawIndex:
        made.append(RawIndex(answer))
        return made[-1]

    yield make
    for index in made:
        index.close()


def ok_head(length: int | None = None) -> bytes:
    size = b"" if length is None else b"Content-Length: %d\r\n" % length
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n" + size + b"Connection: close\r\n\r\n"


def test_release_numbers_an_index_offers_are_read_with_bounds() -> None:
    offered = page("2099.1.1", HUGE, f"1.{HUGE}", "2099.1.2.dev0").decode()
    assert release_versions(offered, "yt-dlp") == {"2099.1.1"}
    assert not final(HUGE) and final("2026.01.05") and not final("2026.1.5rc1")
    assert version_key("2026.01.050") == (2026, 1, 50)
    assert version_key("2026.1.5.0.0") == version_key("2026.1.5") == (2026, 1, 5)
    assert version_key("0.0") == (0,)
    assert version_key("2026.1.5.120000.dev0") == (2026, 1, 5, 120000)
    assert version_key("nightly") == () and version_key(HUGE) == (int("9" * 30),)


def test_only_a_release_with_a_pure_python_wheel_counts() -> None:
    """pip installs wheels only (``--only-binary``): a release of source archives alone, or of
    wheels for another Python or machine, would be offered and then fail at every check."""
    files = ["yt-dlp-2099.3.3.zip", "yt_dlp-2099.4.4.tar.gz", "yt_dlp-2099.5.5.whl",
             "yt_dlp-2099.6.6-cp27-cp27m-win32.whl", "yt_dlp-2099.7.7-py2-none-any.whl",
             "yt_dlp-2099.8.8-py3-none-manylinux1_x86_64.whl",
             "yt_dlp-2099.9.9-py3-abi3-any.whl", "yt_dlp-2099.10.10-x-py3-none-any-y.whl",
             "yt_dlp-2099.1.1-1build-py2.py3-none-any.whl", "yt_dlp-2099.2.2-py311-none-any.whl",
             "Yt.Dlp-2099.1.3-py3-none-any.whl", "yt_dlp_ejs-2100.1.1-py3-none-any.whl"]
    html = "".join(f'<a href="f">{file}</a>' for file in files)
    wanted = {"2099.1.1", "2099.2.2", "2099.1.3"}
    assert release_versions(html, "yt-dlp") == wanted
    json_page = json.dumps({"meta": {"api-version": "1.1"}, "name": "yt-dlp", "files": [
        *({"filename": file, "url": "f", "hashes": {}} for file in files),
        {"filename": "yt_dlp-2100.1.1-py3-none-any.whl", "yanked": True},
        {"filename": "yt_dlp-2100.2.2-py3-none-any.whl", "yanked": "broken"},
        {"filename": "yt_dlp-2099.12.12-py3-none-any.whl", "yanked": False},
        {"filename": 7}, "yt_dlp-2100.3.3-py3-none-any.whl"]})
    json_type = "application/vnd.pypi.simple.v1+json; charset=utf-8"
    assert release_versions(json_page, "yt-dlp", json_type) == {*wanted, "2099.12.12"}
    assert release_versions(json_page, "yt-dlp", "text/html") == set()  # read as it says
    for junk in ("[1]", '{"files": {"a": 1}}', "{", "[" * 100000):
        assert release_versions(junk, "yt-dlp", json_type) == set()


def test_a_release_for_another_python_does_not_count(
        raw_index: Callable[..., RawIndex], tmp_path: Path) -> None:
    """pip installs no file whose requires-python excludes the environment's Python: such a
    release would be offered, then fail to install, at every check, for ever."""
    html = ("yt_dlp-2099.8.8-py3-none-any.whl</a>"  # an end with no start: no link
            + link("2099.1.1").replace("<a ", '<a data-requires-python="&gt;=3.8" ')
            + "<p>yt_dlp-2099.7.7-py3-none-any.whl</a>"  # text, not a link
            + link("2099.9.9").replace("<a ", '<a data-requires-python="&gt;=3.99" ')
            + link("2099.3.3").replace("<a ", '<a data-requires-python="not a specifier" ')
            + link("2099.6.6").replace("<a ", '<a data-yanked="" ')
            + '<a href="f">yt_dlp-2099.5.5<!-- a comment -->-py3-none-any.whl</a>')
    here = {"2099.1.1", "2099.3.3", "2099.5.5"}
    assert release_versions(html, "yt-dlp", python="3.11.2") == here
    assert release_versions(html, "yt-dlp", python="3.14.0b1") == here  # a Python's beta
    assert release_versions(html, "yt-dlp", python="3.99.0") == {*here, "2099.9.9"}
    assert release_versions(html, "yt-dlp") == {*here, "2099.9.9"}
    json_page = json.dumps({"files": [
        {"filename": "yt_dlp-2099.4.4-py3-none-any.whl", "requires-python": "<3.10"},
        {"filename": "yt_dlp-2099.1.1-py3-none-any.whl", "requires-python": None}]})
    assert release_versions(json_page, "yt-dlp", JSON_PAGE, "3.11.2") == {"2099.1.1"}
    body = (link("2099.1.1") + link("2099.2.2").replace("<a ", '<a data-requires-python='
                                                        '"&gt;=3.8" ')
            + link("2099.9.9").replace("<a ", '<a data-requires-python="&gt;=3.99" ')
            ).encode() + b"<p>not UTF-8: \xff</p>"
    index = raw_index(lambda conn, _stop: conn.sendall(ok_head(len(body)) + body))
    assert Updater(Path(sys.executable), index.url, tmp_path).latest() == "2099.2.2"
    index = raw_index(lambda conn, _stop: conn.sendall(ok_head(len(body)) + body))
    gone = Updater(tmp_path / "no-python", index.url, tmp_path)  # no Python known: pip's say
    assert gone.latest() == "2099.9.9"


def test_the_index_is_asked_for_its_json_page_first(raw_index: Callable[..., RawIndex]
                                                    ) -> None:
    body = json.dumps({"files": [{"filename": "yt_dlp-2099.1.1-py3-none-any.whl"}]}).encode()
    index = raw_index(lambda conn, _stop: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)))
    assert newest_version(index.url, "yt-dlp", timeout=10) == "2099.1.1"
    [request] = index.requests
    assert (b"\r\nAccept: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple"
            b".v1+html;q=0.2, text/html;q=0.1\r\n") in request


def test_pip_never_builds_a_source_archive_from_the_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source archive's build backend is code from the index, run on the box: here one that
    leaves a mark when pip runs it. pip is told to take wheels only, and from the configured
    index only (the box's pip settings, here another index that has a wheel, are not read)."""
    mark = tmp_path / "ran"
    project = tmp_path / "sdist" / "yt_dlp-2099.5.5"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n')
    (project / "backend.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
    (project / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: yt-dlp\nVersion: 2099.5.5\n")
    index, elsewhere = PackageIndex(tmp_path / "index"), PackageIndex(tmp_path / "elsewhere")
    try:
        elsewhere.add("2099.5.5")
        elsewhere.publish("2099.5.5")
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", elsewhere.url)
        archive = index.files / "yt_dlp-2099.5.5.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(project, arcname=project.name)
        index.page("yt-dlp", [archive])
        updater = Updater(make_venv(tmp_path / "venv", None), index.url, tmp_path / "kept")
        with pytest.raises(PipFailed) as failed:
            updater._pip("--no-deps", "yt-dlp==2099.5.5")
    finally:
        index.close()
        elsewhere.close()
    assert not mark.exists()
    assert str(failed.value) == "ERROR: No matching distribution found for yt-dlp==2099.5.5"


def test_an_installed_nightly_is_not_replaced_by_an_older_final_release() -> None:
    assert newer("2099.1.1", None)
    assert newer("2099.1.1", "a version the metadata made up")
    assert newer("2099.1.2", "2099.1.1") and not newer("2099.1.1", "2099.1.1")
    assert not newer("2099.1.1", "2099.01.01.0")
    assert not newer("2099.1.1", "2099.3.3.120000.dev0")  # a later day's build
    assert not newer("2099.1.1.dev0", "2025.1.1") and not newer(HUGE, "2025.1.1")


def test_an_index_page_is_read_up_to_its_end(raw_index: Callable[..., RawIndex]) -> None:
    body = page("2099.1.1", "2099.10.1", "2099.2.1")
    index = raw_index(lambda conn, _stop: conn.sendall(ok_head(len(body)) + body))
    assert newest_version(index.url, "yt-dlp", timeout=10) == "2099.10.1"
    assert newest_version(index.url + "/", "YT_DLP", timeout=10) == "2099.10.1"
    assert [r.split(b"\r\n", 1)[0] for r in index.requests] == [
        b"GET /simple/yt-dlp/ HTTP/1.1"] * 2  # PEP 503's normalized name, one slash


@pytest.mark.parametrize("where", ["headers", "page", "close-delimited page"])
def test_an_index_that_trickles_is_given_up_on(
        raw_index: Callable[..., RawIndex], where: str) -> None:
    """Each byte comes well within the socket's timeout; the whole answer would take seconds
    more than the time given: the update must not wait on such an index without end."""
    body = page("2099.1.1") + b" " * 400
    head = ok_head(None if where == "close-delimited page" else len(body))
    # headers: one header line as long as http.client takes (64 KiB), 20 minutes' worth
    opening, trickled = (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a" * 65000) if where == "headers" \
        else (head, body)

    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(opening)
        for byte in trickled:
            if stop.wait(0.02):
                return
            conn.sendall(bytes([byte]))

    index = raw_index(trickle)
    assert newest_version(index.url, "yt-dlp", timeout=1) is None


@pytest.mark.parametrize("answer", [
    b"HELLO THERE\r\n\r\n",  # not HTTP at all
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbroken\r\n",  # bad chunks
    ok_head(5000) + page("2099.1.1"),  # shorter than it said
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    b"",  # closes without a word
], ids=["not-http", "bad-chunks", "cut-short", "404", "closed"])
def test_an_index_that_breaks_http_is_unknown_not_an_error(
        raw_index: Callable[..., RawIndex], answer: bytes) -> None:
    index = raw_index(lambda conn, _stop: conn.sendall(answer))
    assert newest_version(index.url, "yt-dlp", timeout=10) is None


def test_a_page_past_the_size_limit_is_ignored(raw_index: Callable[..., RawIndex],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("appliance.ytdlp_update.index.MAX_PAGE", 4096)
    body = page("2099.1.1")

    def endless(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body)
        while not stop.is_set():
            conn.sendall(b" " * 1024)

    assert newest_version(raw_index(endless).url, "yt-dlp", timeout=10) is None
    exact = body + b" " * (4096 - len(body))
    at_limit = raw_index(lambda conn, _stop: conn.sendall(ok_head(len(exact)) + exact))
    assert newest_version(at_limit.url, "yt-dlp", timeout=10) == "2099.1.1"


# --- an environment whose yt-dlp is what the test says ------------------------------------

@pytest.fixture
def fake_env(tmp_path: Path) -> tuple[Path, Path]:
    """A real virtual environment (no pip) and its site-packages, where the test writes a
    "yt-dlp" of its own."""
    folder = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=120)
    site = folder / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / \
        "site-packages"
    assert site.is_dir()
    return folder / "bin" / "python", site


def fake_ytdlp(site: Path, version: str | None, extractors: int = 200,
               record: tuple[str, ...] = ()) -> None:
    """A yt_dlp package the check imports, with this ``__version__`` and number of
    extractors, and its dist-info with METADATA's Version and RECORD's names."""
    package = site / "yt_dlp"
    (package / "extractor").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("class YoutubeDL:\n    pass\n")
    (package / "version.py").write_text(f"__version__ = {version!r}\n")
    (package / "extractor" / "__init__.py").write_text(
        f"def gen_extractor_classes():\n    return range({extractors})\n")
    (package / "extractor" / "youtube.py").write_text(
        "class YoutubeIE:\n    @staticmethod\n    def suitable(url):\n        return True\n")
    info = site / "yt_dlp-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: yt-dlp\nVersion: {version}\n")
    names = ["yt_dlp/__init__.py", "yt_dlp/version.py", "yt_dlp-1.0.dist-info/METADATA",
             *record]
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in names))


def test_the_command_shows_what_a_release_says_never_obeys_it(
        fake_env: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without the service, ``appliance ytdlp`` prints the installed release's version and
    what the check of a new one says: a terminal sequence in them is shown, not obeyed."""
    python, site = fake_env
    fake_ytdlp(site, "2099.1.1\x1b]2;x\x07")
    index = PackageIndex(tmp_path / "index")
    for name, value in (("YTP_PORT", "9"), ("YTP_YTDLP_INDEX_URL", index.url),
                        ("YTP_CONFIG_PATH", str(tmp_path / "config")),
                        ("YTP_DOWNLOAD_PATH", str(tmp_path / "downloads"))):
        monkeypatch.setenv(name, value)
    try:
        index.add("2099.2.2", broken="\x1b[2Jbroken\x9b")
        index.publish("2099.2.2")
        assert cli.main(["ytdlp", "status", "--venv", str(python.parents[1])]) == 0
        said = capsys.readouterr().out
        assert said == ("yt-dlp 2099.1.1␛]2;x␇ installed, newest 2099.2.2 (the service is "
                        "not running)\n")
        venv = make_venv(tmp_path / "fresh", None)
        assert cli.main(["ytdlp", "update", "--venv", str(venv.parents[1])]) == 1
    finally:
        index.close()
    said = capsys.readouterr().out
    assert "ImportError: ␛[2Jbroken�" in said and not any(c in said for c in "\x1b\x07\x9b")


@pytest.mark.parametrize(("version", "extractors", "problem"), [
    ("2099.1.1", 200, None),
    ("2099.01.01", 200, None),
    ("2099.1.1", 99, "only 99 extractors"),
    ("2099.1.1", 100, None),
    ("2099.1.2", 200, "yt-dlp 2099.1.2 answered, not 2099.1.1"),
    ("nightly", 200, "yt-dlp nightly answered, not 2099.1.1"),
    (None, 200, "yt-dlp None answered, not 2099.1.1"),
], ids=["good", "zeros", "few-extractors", "just-enough", "other-version", "words", "none"])
def test_the_check_judges_what_a_release_answers_and_never_raises(
        fake_env: tuple[Path, Path], version: str | None, extractors: int,
        problem: str | None) -> None:
    """A check that raised would leave a broken release installed: the roll back comes after
    the check's verdict."""
    python, site = fake_env
    fake_ytdlp(site, version, extractors)
    assert Updater(python, "http://127.0.0.1:9/simple", site / "kept").check("2099.1.1") \
        == problem


@pytest.mark.parametrize(("module", "problem"), [
    ("raise SystemExit('no way')", "no way"),
    ("import os\nos._exit(3)", "the check exited with 3"),
    ("import os\nprint('hello')\nos._exit(0)", "the check said nothing readable"),
    # what the release prints after the check's own answer is the last line read
    ("import atexit\natexit.register(print, '{\"version\": \"2099.1.1\"}')",
     "the check said nothing readable"),
    ("import atexit\natexit.register(print, '[1]')", "the check said nothing readable"),
    ("import atexit\natexit.register(print, '{\"version\": \"2099.1.1\", "
     "\"extractors\": \"many\"}')", "the check said nothing readable"),
], ids=["exits", "dies", "no-json", "no-count", "a-list", "words-for-count"])
def test_a_check_that_dies_or_babbles_says_why(fake_env: tuple[Path, Path], module: str,
                                               problem: str) -> None:
    python, site = fake_env
    fake_ytdlp(site, "2099.1.1")
    (site / "yt_dlp" / "__init__.py").write_text(module + "\nclass YoutubeDL:\n    pass\n")
    updater = Updater(python, "http://127.0.0.1:9/simple", site / "kept")
    assert updater.check("2099.1.1") == problem


def test_the_kept_wheel_holds_only_the_packages_own_files(
        fake_env: tuple[Path, Path], tmp_path: Path) -> None:
    """RECORD is the installed release's text: names outside its folder (absolute, "..",
    a link out of it) are not read into the wheel kept for a roll back."""
    python, site = fake_env
    secret = tmp_path / "secret.txt"
    secret.write_text("not yt-dlp's")
    (site / "yt_dlp" / "leak").mkdir(parents=True)
    (site / "yt_dlp" / "leak" / "link.txt").symlink_to(secret)
    fake_ytdlp(site, "2099.1.1", record=(
        str(secret), f"yt_dlp/../../../../../../../..{secret}", "yt_dlp/leak/link.txt",
        "../../../bin/yt-dlp", "yt_dlp/__pycache__/version.cpython-311.pyc",
        "yt_dlp/legacy.pyc",  # byte code, and not there: pip makes it again
        "yt_dlp-1.0.dist-info/RECORD", "yt_dlp-1.0.dist-info/INSTALLER"))  # the installer's
    files = installed_files(site, "yt-dlp")
    assert sorted(files) == ["yt_dlp-1.0.dist-info/METADATA", "yt_dlp/__init__.py",
                             "yt_dlp/version.py"]
    kept = Updater(python, "http://127.0.0.1:9/simple", tmp_path / "kept")._keep("yt-dlp")
    assert kept == tmp_path / "kept" / "yt_dlp-2099.1.1-py3-none-any.whl"


@pytest.mark.parametrize("version", ["../../../../tmp/x", "1.0-evil", "1/2", ""])
def test_a_version_that_cannot_name_a_wheel_keeps_nothing(
        fake_env: tuple[Path, Path], tmp_path: Path, version: str) -> None:
    python, site = fake_env
    fake_ytdlp(site, version)
    with pytest.raises(OSError, match="cannot name a wheel"):
        Updater(python, "http://127.0.0.1:9/simple", tmp_path / "kept")._keep("yt-dlp")
    assert not (tmp_path / "kept").exists()


def test_the_index_is_asked_once_for_many_status_requests(
        raw_index: Callable[..., RawIndex], tmp_path: Path, fake_env: tuple[Path, Path]
) -> None:
    """GET /api/system/ytdlp runs on a request thread: the index's answer (or its silence)
    is kept for minutes, not asked for again by every client that polls."""
    asked: list[int] = []
    body = page("2099.1.1")

    def answer(conn: socket.socket, _stop: threading.Event) -> None:
        asked.append(1)
        conn.sendall(ok_head(len(body)) + body)

    index = raw_index(answer)
    settings = make_settings(tmp_path, YTP_YTDLP_INDEX_URL=index.url)
    # of a throwaway environment: a mutant that updated would not change the tests' own
    updates = YtdlpUpdates(settings, lambda: None, EventBus(), python=fake_env[0])
    for _ in range(3):
        status = updates.status()
        assert (status["latest"], status["index_url"]) == ("2099.1.1", index.url)
    assert len(asked) == 1
    closed = YtdlpUpdates(make_settings(tmp_path / "closed"), lambda: None, EventBus())
    assert [closed.status()["latest"] for _ in range(2)] == ["unknown", "unknown"]
    assert closed.status()["update_available"] is None


def test_a_private_index_credentials_stay_out_of_messages(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The outcome's message goes to the event bus, and from there to chat apps."""
    url = "http://user:s3cret-token@127.0.0.1:9/simple"
    with caplog.at_level(logging.INFO, "appliance.ytdlp_update"):
        outcome = Updater(Path(sys.executable), url, tmp_path / "kept").update()
    assert outcome.state == "failed"
    assert outcome.message == "the package index http://***@127.0.0.1:9/simple cannot be reached"
    assert "127.0.0.1:9/simple/yt-dlp/ not reachable" in caplog.text
    assert "s3cret" not in caplog.text
    assert url_shown("https://pypi.org/simple") == "https://pypi.org/simple"
    assert url_shown("https://token@mirror.lan:8443/a@b") == "https://***@mirror.lan:8443/a@b"


def test_a_private_index_credentials_stay_out_of_what_clients_read(tmp_path: Path) -> None:
    """/api/system/configuration (its settings) and the update's status: a client, and with
    auth off anyone on the LAN, reads them."""
    private = "https://user:s3cret-token@mirror.lan/simple"
    settings = make_settings(tmp_path, YTP_YTDLP_INDEX_URL=private,
                             YTP_UPDATE_CHECK_URL="http://me:pw@updates.lan/x.json")
    public = settings.public()
    assert public["ytdlp_index_url"] == "https://***@mirror.lan/simple"
    assert public["update_check_url"] == "http://***@updates.lan/x.json"
    assert "s3cret" not in str(public) and "pw@" not in str(public)
    assert settings.ytdlp_index_url == private  # the updater still uses them
    status = YtdlpUpdates(settings, lambda: None, EventBus()).status()
    assert status["index_url"] == "https://***@mirror.lan/simple"


def test_a_scheduled_update_holds_the_update_as_a_requested_one_does(
        raw_index: Callable[..., RawIndex], tmp_path: Path, fake_env: tuple[Path, Path]
) -> None:
    """The schedule claims the update the way a request does (one check-and-set): while its
    run waits on the index, a request gets 409 and the status says since when it runs."""
    release, first = threading.Event(), threading.Event()
    body = page()

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        if not first.is_set():  # the scheduled run's question: held until released
            first.set()
            while not (release.wait(0.05) or stop.is_set()):
                pass
        conn.sendall(ok_head(len(body)) + body)

    index = raw_index(answer)
    settings = make_settings(tmp_path, YTP_YTDLP_INDEX_URL=index.url,
                             YTP_YTDLP_UPDATE_INTERVAL="0.0001")  # a third of a second
    updates = YtdlpUpdates(settings, lambda: None, EventBus(), python=fake_env[0])
    updates.start()
    try:
        assert first.wait(30)
        update = updates.status()["update"]
        assert update["state"] == "running" and update["started_at"] > 0
        with pytest.raises(AppError) as refused:
            updates.start_update()
        assert refused.value.code == CONFLICT
        release.set()
        done = wait_for(lambda: (u := updates.status()["update"])["state"] != "running" and u,
                        message="the scheduled update to end")
        assert done["state"] == "failed" and done["started_at"] == update["started_at"]
        assert done["finished_at"] >= done["started_at"]
    finally:
        release.set()
        updates.stop()


def test_a_failed_update_is_told_as_a_warning(tmp_path: Path) -> None:
    bus = EventBus()
    told: list[tuple[str, dict[str, object]]] = []
    bus.subscribe(lambda event: told.append((event.name, event.data)))
    updates = YtdlpUpdates(make_settings(tmp_path), lambda: None, bus)
    outcome = updates.update()
    assert outcome.state == "failed"
    [(name, data)] = told
    assert name == "log_warning"
    assert (data["title"], data["state"]) == ("yt-dlp update", "failed")
    assert str(data["message"]).endswith("cannot be reached")


def test_the_solver_release_yt_dlp_pins_is_read_from_its_metadata(
        fake_env: tuple[Path, Path]) -> None:
    _, site = fake_env
    assert _pin(site, "yt-dlp", "yt-dlp-ejs") is None  # not installed
    fake_ytdlp(site, "2099.1.1")
    metadata = site / "yt_dlp-1.0.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text() + "Requires-Dist: websockets>=13\n"
                        "Requires-Dist: yt-dlp-ejs == 0.3.1; extra == 'default'\n")
    assert _pin(site, "yt-dlp", "yt-dlp-ejs") == "0.3.1"
    assert _pin(site, "yt-dlp", "websockets") is None  # not an exact release


def test_a_first_install_that_fails_its_check_is_a_failure_with_nothing_to_roll_back_to(
        tmp_path: Path) -> None:
    index = PackageIndex(tmp_path / "index")
    try:
        index.add("2099.2.2", broken=True)
        index.publish("2099.2.2")
        python = make_venv(tmp_path / "venv", None)
        updater = Updater(python, index.url, tmp_path / "kept")
        assert updater.installed() is None
        outcome = updater.update()
    finally:
        index.close()
    assert (outcome.state, outcome.previous, outcome.target) == ("failed", None, "2099.2.2")
    assert outcome.installed == "2099.2.2"  # what is there now, said as it is
    assert "a broken release" in outcome.message
    assert not (tmp_path / "kept").exists()


@pytest.mark.parametrize("url", ["pypi.org/simple", "", "http://[::1/simple",
                                 "gopher://127.0.0.1:9/simple"])
def test_an_index_setting_that_is_no_url_is_unknown_not_an_error(url: str,
                                                                tmp_path: Path) -> None:
    assert newest_version(url, "yt-dlp", timeout=5) is None
    outcome = Updater(Path(sys.executable), url, tmp_path / "kept").update()
    assert (outcome.state, outcome.message) == (
        "failed", f"the package index {url} cannot be reached")
    assert outcome.previous == outcome.installed is not None  # nothing changed


def test_an_update_that_breaks_is_failed_and_can_be_started_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An exception in the update's thread (here: no Python where the environment should
    be) is a failed update the status shows, not one that runs for ever."""
    updates = YtdlpUpdates(make_settings(tmp_path), lambda: None, EventBus(),
                           python=tmp_path / "gone" / "bin" / "python")
    for _ in range(2):
        assert updates.start_update() == {"state": "running"}
        done = wait_for(lambda: (u := dict(updates._last or {}))["state"] != "running" and u,
                        message="the update to end")
        assert (done["state"], done["message"]) == ("failed", "internal error (see the log)")
        assert done["finished_at"] >= done["started_at"]
    assert "the yt-dlp update failed" in caplog.text
    updates.stop()


def test_an_index_that_does_not_speak_tls_is_unknown(raw_index: Callable[..., RawIndex]
                                                     ) -> None:
    index = raw_index(lambda conn, _stop: conn.sendall(ok_head(0)))
    assert newest_version(index.url.replace("http:", "https:"), "yt-dlp", timeout=10) is None
