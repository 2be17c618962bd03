"""``/api/download/{filename}`` on the real service (gunicorn, our worker, sendfile) with a
file a real download made, and the same requests to the app in process: ranges, validators,
names, redirects, hostile paths; and a client that stops reading."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import Server, raw_request, wait_for

from appliance.api.app import create_app
from appliance.runtime import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("download")]

SEND_TIMEOUT = 2


class InProcess:
    """The app in this process, asked the same requests (mutmut judges only code that runs in
    the test process: the real service's answers never kill a mutant)."""

    def __init__(self, runtime: Runtime) -> None:
        self.download_path = runtime.settings.download_path
        self.client = TestClient(create_app(runtime))

    def raw(self, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        result = self.client.simulate_request(method, path, headers=headers)
        headers = {k.lower(): v for k, v in result.headers.items()}
        # The answer is the file positioned at the range's start: gunicorn sends Content-Length
        # bytes of it, the test client reads it to its end.
        body = result.content[:int(headers.get("content-length", len(result.content)))]
        return result.status_code, headers, body


Service = Server | InProcess


def raw(service: Service, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    if isinstance(service, InProcess):
        return service.raw(path, headers, method)
    return raw_request(service, path, headers, method)


@pytest.fixture(scope="module")
def real_service(tmp_path_factory: pytest.TempPathFactory, origin: MediaOrigin
                 ) -> Iterator[tuple[Server, Path]]:
    """The service, and a file it downloaded from the origin."""
    server = Server(tmp_path_factory.mktemp("download"),
                    {"YTP_SEND_TIMEOUT": str(SEND_TIMEOUT)}).start()
    try:
        [queued] = server.post("/api/history", {"url": origin.clip_url}).json()
        item = server.wait_status(queued["id"], {"finished"})
        yield server, server.download_path / item["filename"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcess, Path]]:
    """The app in this process, and a file of its download folder."""
    for runtime in runtime_of_module(tmp_path_factory, "download-in-process"):
        clip = runtime.settings.download_path / "clip.mp4"
        clip.write_bytes(os.urandom(4096))
        yield InProcess(runtime), clip


@pytest.fixture(params=["gunicorn", "in-process"])
def served(request: pytest.FixtureRequest) -> tuple[Service, Path]:
    """Each test on the real service and on the app in this process."""
    return request.getfixturevalue("real_service" if request.param == "gunicorn"
                                   else "in_process")


def where(headers: dict[str, str]) -> str:
    """The path a redirect leads to (Falcon makes the Location absolute)."""
    return urlsplit(headers["location"]).path


def test_whole_file_and_headers(served: tuple[Service, Path]) -> None:
    server, path = served
    data = path.read_bytes()
    status, headers, body = raw(server, "/api/download/" + quote(path.name))
    assert status == 200 and body == data
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "video/mp4"
    assert headers["accept-ranges"] == "bytes"
    assert headers["etag"].startswith('"') and headers["last-modified"].endswith("GMT")
    assert headers["content-disposition"].startswith("inline; filename=")
    status, head_headers, body = raw(server, "/api/download/" + quote(path.name), method="HEAD")
    assert status == 200 and body == b""
    assert head_headers["content-length"] == str(len(data))
    assert head_headers["etag"] == headers["etag"]


def test_ranges_are_the_bytes_of_the_file(served: tuple[Service, Path]) -> None:
    server, path = served
    data = path.read_bytes()
    url = "/api/download/" + quote(path.name)
    size = len(data)
    for header, expected, content_range in [
        ("bytes=0-99", data[:100], f"bytes 0-99/{size}"),
        ("bytes=100-", data[100:], f"bytes 100-{size - 1}/{size}"),
        ("bytes=-500", data[-500:], f"bytes {size - 500}-{size - 1}/{size}"),
        (f"bytes=10-{size + 1000}", data[10:], f"bytes 10-{size - 1}/{size}"),
        # numbers past any file (over 4,300 digits was a 500: Python refuses to read them)
        ("bytes=10-" + "9" * 5000, data[10:], f"bytes 10-{size - 1}/{size}"),
        ("bytes=-" + "9" * 5000, data, f"bytes 0-{size - 1}/{size}"),
        ("bytes=" + "0" * 30 + "10-" + "0" * 30 + "99", data[10:100], f"bytes 10-99/{size}"),
    ]:
        status, headers, body = raw(server, url, {"Range": header})
        assert status == 206, header[:40]
        assert body == expected, header[:40]
        assert headers["content-range"] == content_range
        assert headers["content-length"] == str(len(expected))
    for header in (f"bytes={size}-", "bytes=" + "9" * 5000 + "-"):
        status, headers, body = raw(server, url, {"Range": header})
        assert status == 416 and headers["content-range"] == f"bytes */{size}"
    # several ranges are not served piecewise: the whole file
    status, _, body = raw(server, url, {"Range": "bytes=0-1,5-6"})
    assert status == 200 and body == data


def test_conditional_requests(served: tuple[Service, Path]) -> None:
    server, path = served
    url = "/api/download/" + quote(path.name)
    _, headers, _ = raw(server, url)
    etag = headers["etag"]
    status, again, body = raw(server, url, {"If-None-Match": etag})
    assert status == 304 and body == b"" and again["etag"] == etag
    status, _, body = raw(server, url, {"Range": "bytes=0-9", "If-Range": etag})
    assert status == 206 and len(body) == 10
    status, _, body = raw(server, url, {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert status == 200 and body == path.read_bytes()
    # If-Range may be the Last-Modified date (RFC 9110's IMF-fixdate, in GMT)
    modified = headers["last-modified"]
    assert modified.endswith(" GMT")
    status, _, body = raw(server, url, {"Range": "bytes=0-9", "If-Range": modified})
    assert status == 206 and len(body) == 10
    status, _, body = raw(server, url, {"Range": "bytes=0-9",
                                        "If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert status == 200 and body == path.read_bytes()


def test_names_and_redirects(served: tuple[Service, Path]) -> None:
    server, _ = served
    folder = server.download_path / "Ünï 日本"
    folder.mkdir(exist_ok=True)
    named = folder / 'Ñame "quoted" [abcdefghijk].mp4'
    named.write_bytes(b"named")
    url = "/api/download/" + quote(f"{folder.name}/{named.name}")
    status, headers, body = raw(server, url)
    assert status == 200 and body == b"named"
    assert headers["content-disposition"] == (
        "inline; filename=\"_ame _quoted_ [abcdefghijk].mp4\"; "
        "filename*=UTF-8''%C3%91ame%20%22quoted%22%20%5Babcdefghijk%5D.mp4")
    status, headers, _ = raw(server, "/api/download//" + quote(f"{folder.name}//{named.name}"))
    assert status == 302 and where(headers) == url
    # the id in brackets finds the file after a rename (YTPTube's 302)
    old = "/api/download/" + quote(f"{folder.name}/Old title [abcdefghijk].mp4")
    # (found in the index: once its watcher has seen the file)
    status, headers, _ = wait_for(lambda: (r := raw(server, old))[0] == 302 and r,
                                  message="the renamed file found by its id")
    assert where(headers) == url
    status, _, body = raw(server, "/api/download/" + quote(f"{folder.name}/missing.mp4"))
    assert status == 404
    assert json.loads(body) == {"error": f"File '{folder.name}/missing.mp4' does not exist.",
                                "code": "NOT_FOUND"}


@pytest.mark.parametrize("path", [
    "/api/download/../config/appliance.db", "/api/download/%2e%2e/config/appliance.db",
    "/api/download/..%2Fconfig%2Fappliance.db", "/api/download/a%00.mp4",
    "/api/download/x/%2E%2E/%2E%2E/config/appliance.db", "/api/download/" + "a" * 300,
])
def test_hostile_paths_refused(served: tuple[Service, Path], path: str) -> None:
    server, _ = served
    status, _, body = raw(server, path)
    assert status == 400, body
    assert b"SQLite" not in body


def test_absolute_and_symlinked_paths(served: tuple[Service, Path], tmp_path: Path) -> None:
    server, _ = served
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    status, headers, body = raw(server, "/api/download//etc/passwd")
    assert status == 302 and where(headers) == "/api/download/etc/passwd"
    assert raw(server, "/api/download/etc/passwd")[0] == 404
    link = server.download_path / "leak.txt"
    link.symlink_to(secret)
    status, _, body = raw(server, "/api/download/leak.txt")
    assert status == 403 and b"secret" not in body
    (server.download_path / "target.txt").write_bytes(b"inside")
    (server.download_path / "inside.txt").symlink_to(server.download_path / "target.txt")
    assert raw(server, "/api/download/inside.txt")[2] == b"inside"


def test_a_client_that_stops_reading_loses_its_connection(
        real_service: tuple[Server, Path]) -> None:
    """Eight clients (every request thread) that stop reading a big file: each is cut off
    after YTP_SEND_TIMEOUT, and the API answers again."""
    server, _ = real_service
    big = server.download_path / "big.bin"
    size = 1 << 30
    with big.open("wb") as fh:
        fh.truncate(size)  # sparse: costs no disk, reads as zeros
    stalled = []
    for _ in range(8):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /api/download/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled.append(sock)
    wait_for(lambda: server.log().count("was not taken in time") >= 8, timeout=60,
             message="the eight stalled answers to be cut off")
    assert server.get("/api/ping", timeout=10).status_code == 200
    for sock in stalled:
        received = 0
        sock.settimeout(60)
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
        assert received < size  # closed before the end
        sock.close()
    big.unlink()


# --- in process: the file goes to wsgi.file_wrapper -------------------------------------------

class Recorder:
    wrapped: list[Any] = []

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        Recorder.wrapped.append(filelike)
        self.filelike = filelike

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.filelike.read(65536):
            yield chunk

    def close(self) -> None:
        self.filelike.close()


def test_body_is_the_open_file_for_sendfile(client: TestClient, runtime: Runtime) -> None:
    (runtime.settings.download_path / "f.mp4").write_bytes(b"0123456789")
    Recorder.wrapped.clear()  # a second pytest run in this process (mutmut's) sees the first's
    result = client.simulate_get("/api/download/f.mp4", headers={"Range": "bytes=2-5"},
                                 extras={"wsgi.file_wrapper": Recorder})
    # the file, positioned at the range's start (gunicorn sends Content-Length bytes of it)
    assert result.status_code == 206 and result.headers["content-length"] == "4"
    assert result.content.startswith(b"2345")
    [wrapped] = Recorder.wrapped
    assert hasattr(wrapped, "fileno") and os.path.basename(wrapped.name) == "f.mp4"
    assert wrapped.closed


def test_a_page_in_the_download_folder_runs_no_script(client: TestClient,
                                                       runtime: Runtime) -> None:
    """An ``.svg`` thumbnail a site's metadata made yt-dlp write, an ``.html`` file: served
    inline from this service's origin, opened as a page, their scripts ran with the user's
    session (and could drive the whole API). A sandbox without scripts, no type guessed."""
    script = b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/api")</script></svg>'
    media = "default-src 'none'; media-src 'self'"  # a media page plays it, loads nothing else
    for name, kind, policy in (("Show.svg", "image/svg+xml", "sandbox"),
                               ("page.html", "text/html", "sandbox"),
                               ("f.mp4", "video/mp4", media), ("f.m4a", "audio/mp4", media)):
        (runtime.settings.download_path / name).write_bytes(script)
        result = client.simulate_get(f"/api/download/{name}")
        assert result.status_code == 200 and result.headers["content-type"] == kind
        assert result.headers["content-security-policy"] == policy
        assert result.headers["x-content-type-options"] == "nosniff"
