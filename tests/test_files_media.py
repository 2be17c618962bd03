"""ffprobe and file info on media ffmpeg made; remote thumbnails through the SSRF-safe fetcher
(against a real image server on loopback); history thumbnails; the random background."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from conftest import make_settings, started
from falcon.testing import Result, TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import errors
from appliance.api.app import create_app
from appliance.files import fetch
from appliance.files.index import FileIndex
from appliance.files.reading import open_regular
from appliance.runtime import Runtime

# An image that is also a page with a script, as a site may name its thumbnail.
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/api/history")</script></svg>'


class ImageServer:
    """Serves a real JPEG and the ways a thumbnail's server can go wrong; counts requests."""

    def __init__(self, image: bytes) -> None:
        self.image = image
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []  # of each request, in the same order
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append(self.path)
                owner.headers.append(dict(self.headers))
                routes = {
                    "/thumb.jpg": (200, "image/jpeg", owner.image),
                    "/page.html": (200, "text/html", b"<html></html>"),
                    "/script.svg": (200, "image/svg+xml", SVG),
                    "/script.jpg": (200, "image/svg+xml; charset=utf-8", SVG),
                    # any +xml type is read as an XML document: an XHTML script runs
                    "/script.png": (200, "image/x-page+xml", SVG),
                    "/huge.jpg": (200, "image/jpeg", b"x" * (fetch.MAX_BYTES + 1)),
                    "/gone.jpg": (404, "text/plain", b"gone"),
                }
                if self.path.startswith("/redirect"):  # ?to=URL, &status= (302)
                    query = parse_qs(urlsplit(self.path).query)
                    self.send_response(int(query.get("status", ["302"])[0]))
                    self.send_header("Location", query["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/untyped.jpg":  # no Content-Type at all
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(owner.image)))
                    self.end_headers()
                    self.wfile.write(owner.image)
                    return
                if self.path == "/endless.jpg":
                    # no Content-Length: the body ends when the connection does, after more
                    # than the limit (unless the fetcher hangs up first)
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.end_headers()
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        for _ in range(fetch.MAX_BYTES // 65536 + 2):
                            self.wfile.write(bytes(65536))
                    return
                status, kind, body = routes.get(self.path, (404, "text/plain", b""))
                length = len(body)
                if self.path == "/announced-huge.jpg":
                    # says it is over the limit, then sends a few bytes and hangs up
                    status, kind, body = 200, "image/jpeg", owner.image[:10]
                    length = fetch.MAX_BYTES + 1
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                # the fetcher hangs up on /huge.jpg once it has read its limit
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        # every loopback address reaches it (127.0.0.2 too): a refused redirect must be the
        # fetcher's doing, not an unreachable address
        self.httpd = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def redirect(self, to: str, host: str = "127.0.0.1", status: int = 302) -> str:
        return self.url(f"/redirect?to={quote(to, safe='')}&status={status}", host)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageServer]:
    out = tmp_path_factory.mktemp("image") / "thumb.jpg"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48", "-frames:v", "1", str(out)], check=True)
    server = ImageServer(out.read_bytes())
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, images: ImageServer
        ) -> Iterator[tuple[Runtime, TestClient]]:
    """Loopback allowed (the test's image server is on it); refusal has its own runtime."""
    root = tmp_path_factory.mktemp("media")
    runtime = started(make_settings(root, YTP_FETCH_PRIVATE_ADDRESSES="true",
                                    YTP_BACKGROUND_URL=images.url("/thumb.jpg")))
    yield runtime, TestClient(create_app(runtime))
    runtime.stop()


def assert_error(result: Result, status: int) -> None:
    assert result.status_code == status, result.text
    assert result.json["error"] and result.json["code"]


def test_ffprobe_and_info(app: tuple[Runtime, TestClient], origin: MediaOrigin) -> None:
    runtime, client = app
    folder = runtime.settings.download_path / "show"
    folder.mkdir(exist_ok=True)
    video = folder / "clip.mp4"
    shutil.copyfile(origin.path_for(origin.clip_url), video)
    (folder / "clip.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nHi\n")
    (folder / "clip.jpg").write_bytes(b"jpg")
    wait_for(lambda: len(runtime.files.index.names("show")) == 3, 5,
             message="the files to be indexed")
    probed = client.simulate_get("/api/file/ffprobe/show/clip.mp4")
    assert probed.status_code == 200, probed.text
    assert float(probed.json["format"]["duration"]) == pytest.approx(3, abs=0.2)
    assert {s["codec_name"] for s in probed.json["streams"]} == {"h264", "aac"}
    info = client.simulate_get("/api/file/info/show/clip.mp4").json
    assert info["title"] == "clip" and info["mimetype"] == "video/mp4"
    assert info["ffprobe"] == probed.json
    assert info["sidecar"]["subtitle"] == [{"file": "show/clip.en.srt", "lang": "en",
                                            "name": "SRT (0) - en"}]
    assert info["sidecar"]["subtitles"] == info["sidecar"]["subtitle"]
    assert info["sidecar"]["image"] == [{"file": "show/clip.jpg"}]
    # cached by file, size and mtime: the same answer until the file changes
    def probe() -> dict[str, Any]:
        with open_regular(video, runtime.files.root) as media:
            return runtime.player.prober.probe(media)

    first = probe()
    assert probe() is first
    os.utime(video, (1, 1))
    assert probe() is not first
    assert probed.json["format"]["filename"] == "show/clip.mp4"  # not where it is here
    (folder / "notes.txt").write_text("not media")
    assert_error(client.simulate_get("/api/file/ffprobe/show/notes.txt"), 400)
    assert client.simulate_get("/api/file/info/show/notes.txt").json["ffprobe"] == {}
    assert_error(client.simulate_get("/api/file/ffprobe/show/nope.mp4"), 404)


@pytest.mark.parametrize("path", ["..%2F..%2Fetc%2Fpasswd", "../config/appliance.db",
                                  "show/%2e%2e/%2e%2e/x", "a%00.mp4", "a" * 300 + ".mp4"])
def test_probe_refuses_hostile_paths(app: tuple[Runtime, TestClient], path: str) -> None:
    _, client = app
    for endpoint in ("ffprobe", "info"):
        assert_error(client.simulate_get(f"/api/file/{endpoint}/{path}"), 400)


def test_probe_refuses_symlinks_out(app: tuple[Runtime, TestClient], tmp_path: Path,
                                    origin: MediaOrigin) -> None:
    runtime, client = app
    outside = tmp_path / "outside.mp4"
    shutil.copyfile(origin.path_for(origin.clip_url), outside)
    (runtime.settings.download_path / "leak.mp4").symlink_to(outside)
    for endpoint in ("ffprobe", "info"):
        assert_error(client.simulate_get(f"/api/file/{endpoint}/leak.mp4"), 403)


def test_a_files_sidecars_are_its_own_and_the_folders_art(tmp_path: Path) -> None:
    """What the player and the history show beside a file: its subtitles (with their
    language, "und" when the name gives none; the player's kinds only), its images, NFO and
    info.json, and the folder's artwork that media centers read (poster, cover, ...)."""
    folder = tmp_path / "show"
    folder.mkdir()
    for name in ("e1.mp4", "e1.en.srt", "e1.srt", "e1.lrc", "e1.nfo", "e1.info.json",
                 "e1.jpg", "poster.jpg", "Cover.png", "poster.txt", "e2.mp4", "e2.en.srt"):
        (folder / name).write_bytes(b"x")
    assert FileIndex(tmp_path).sidecars("show/e1.mp4") == {
        "subtitle": [{"file": "show/e1.en.srt", "lang": "en", "name": "SRT (0) - en"},
                     {"file": "show/e1.srt", "lang": "und", "name": "SRT (1) - und"}],
        "metadata": [{"file": "show/e1.info.json"}, {"file": "show/e1.nfo"}],
        "image": [{"file": "show/Cover.png"}, {"file": "show/e1.jpg"},
                  {"file": "show/poster.jpg"}],
    }


def test_another_media_file_named_like_it_is_not_its_sidecar(tmp_path: Path) -> None:
    """``Show.Extended.mp4`` beside ``Show.mp4`` is a video of its own, and its subtitles are
    its own too; a second version in another container (``Show.mkv``) shares the stem's."""
    for name in ("Show.mp4", "Show.en.srt", "Show.Extended.mp4", "Show.Extended.en.srt",
                 "Show.Extended.info.json", "Show.m4a", "Show.mkv"):
        (tmp_path / name).write_bytes(b"x")
    index = FileIndex(tmp_path)
    assert index.sidecars("Show.mp4") == {
        "subtitle": [{"file": "Show.en.srt", "lang": "en", "name": "SRT (0) - en"}]}
    assert index.sidecars("Show.Extended.mp4") == {
        "subtitle": [{"file": "Show.Extended.en.srt", "lang": "en", "name": "SRT (0) - en"}],
        "metadata": [{"file": "Show.Extended.info.json"}]}
    assert index.sidecars("Show.mkv") == index.sidecars("Show.mp4")


# --- remote thumbnails ------------------------------------------------------------------------

def test_thumbnail_fetched(app: tuple[Runtime, TestClient], images: ImageServer) -> None:
    _, client = app
    result = client.simulate_get("/api/thumbnail", params={"url": images.url("/thumb.jpg")})
    assert result.status_code == 200
    assert result.content == images.image and result.headers["content-type"] == "image/jpeg"
    again = client.simulate_get("/api/thumbnail", params={"url": images.url("/thumb.jpg")},
                                headers={"If-None-Match": result.headers["etag"]})
    assert again.status_code == 304
    redirected = client.simulate_get("/api/thumbnail",
                                     params={"url": images.redirect(images.url("/thumb.jpg"))})
    assert redirected.content == images.image
    assert result.headers["content-security-policy"] == "sandbox"
    assert result.headers["x-content-type-options"] == "nosniff"
    for bad in ("/page.html", "/huge.jpg", "/gone.jpg", "/script.svg", "/script.jpg",
                "/script.png"):
        assert_error(client.simulate_get("/api/thumbnail", params={"url": images.url(bad)}),
                     502)
    untyped = client.simulate_get("/api/thumbnail", params={"url": images.url("/untyped.jpg")})
    assert_error(untyped, 502)
    assert untyped.json["error"] == "Not an image (Content-Type: none)."
    scripted = client.simulate_get("/api/thumbnail", params={"url": images.url("/script.svg")})
    assert scripted.json["error"] == ("An image that can carry scripts is not served "
                                      "(Content-Type: image/svg+xml).")
    assert_error(client.simulate_get("/api/thumbnail"), 400)
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x.jpg", "http:///x.jpg",
                "http://127.0.0.1:99999/x.jpg"):
        assert_error(client.simulate_get("/api/thumbnail", params={"url": url}), 400)
    ftp = client.simulate_get("/api/thumbnail", params={"url": "ftp://127.0.0.1/x.jpg"})
    assert ftp.json["error"] == "Only http(s) URLs with a host can be fetched."


def test_thumbnail_refuses_this_machine_and_private_networks(
        app_with: Any, images: ImageServer) -> None:
    _, client = app_with()  # the default: public addresses only
    before = images.requests.count("/thumb.jpg")
    for host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0", "169.254.169.254",
                 "10.0.0.1", "192.168.1.1", "2130706433", "[::ffff:127.0.0.1]"):
        result = client.simulate_get("/api/thumbnail",
                                     params={"url": images.url("/thumb.jpg", host)})
        assert_error(result, 403)
        assert result.json["error"].endswith(
            "is not allowed (this machine's own or a private address; "
            "YTP_FETCH_PRIVATE_ADDRESSES).")
    assert images.requests.count("/thumb.jpg") == before  # nothing was asked for


def test_every_redirect_is_checked(images: ImageServer) -> None:
    """A redirect to an address the policy refuses is not followed (127.0.0.2 would reach the
    image server: it is the fetcher that stops)."""
    only_first = lambda address: str(address) == "127.0.0.1"  # noqa: E731
    before = len(images.requests)
    first_hop = images.redirect(images.url("/thumb.jpg", "127.0.0.2"))
    with pytest.raises(errors.AppError) as refused:
        fetch.fetch_image(first_hop, only_first)
    assert refused.value.status == 403
    assert len(images.requests) == before + 1  # the first hop only
    assert images.requests[before].startswith("/redirect?to=")
    assert fetch.fetch_image(images.url("/thumb.jpg"), only_first).data == images.image


def test_five_redirects_are_followed_a_sixth_is_not(images: ImageServer) -> None:
    url = images.url("/thumb.jpg")
    for _ in range(fetch.MAX_REDIRECTS):
        url = images.redirect(url)
    assert fetch.fetch_image(url, fetch.any_address).data == images.image
    with pytest.raises(errors.AppError) as refused:
        fetch.fetch_image(images.redirect(url), fetch.any_address)
    assert refused.value.message == f"More than {fetch.MAX_REDIRECTS} redirects."


def test_a_malformed_image_url_is_a_400_from_a_client_a_server_or_an_item(
        app: tuple[Runtime, TestClient], images: ImageServer) -> None:
    """An unclosed IPv6 bracket, a bracketed host that is no address, a port that is not one:
    asked for, kept as an item's thumbnail (site metadata, or extras a client set) or sent as a
    redirect's Location (a 502: the other server's fault) — each was a 500."""
    _, client = app
    for url in ("http://[::1", "https://[zz]/x.jpg", "http://host:port/x.jpg"):
        result = client.simulate_get("/api/thumbnail", params={"url": url})
        assert_error(result, 400)
        assert "is not a valid URL" in result.json["error"]
        result = client.simulate_get("/api/thumbnail", params={"url": images.redirect(url)})
        assert_error(result, 502)  # the image's server is at fault
        assert "not valid" in result.json["error"]
        [queued] = client.simulate_post("/api/history", json={
            "url": "http://127.0.0.1:9/v", "auto_start": False,
            "extras": {"thumbnail": url}}).json
        result = client.simulate_get(f"/api/history/{queued['id']}/thumbnail")
        assert_error(result, 400)
        assert "is not a valid URL" in result.json["error"]


@pytest.mark.parametrize(("address", "allowed"), [
    ("93.184.216.34", True),
    ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("::ffff:93.184.216.34", True),  # a public IPv4 address written as IPv6
    ("127.0.0.1", False), ("::1", False), ("0.0.0.0", False), ("::", False),
    ("10.0.0.1", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("100.64.0.1", False),  # carrier-grade NAT
    ("169.254.169.254", False), ("fe80::1", False), ("fd00::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    # multicast is "global" to the ipaddress module: refused all the same
    ("224.0.0.1", False), ("239.255.255.250", False), ("ff0e::1", False),
    ("::ffff:224.0.0.1", False),
    # NAT64 (a gateway on the LAN reaches the IPv4 address in its last 32 bits) and 6to4
    ("64:ff9b::808:808", True), ("2002:808:808::1", True),
    ("64:ff9b::c0a8:101", False), ("64:ff9b::7f00:1", False), ("64:ff9b:1::808:808", False),
    ("2002:c0a8:101::1", False), ("2002:7f00:1::", False),
])
def test_the_default_policy_lets_through_public_addresses_only(address: str,
                                                                allowed: bool) -> None:
    assert fetch.public_only(ipaddress.ip_address(address)) is allowed


@pytest.mark.parametrize("address", ["169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0",
                                     "fe80::1", "224.0.0.1", "100.100.100.200"])
def test_private_addresses_allowed_are_never_the_metadata_service_or_link_local(
        address: str) -> None:
    assert fetch.any_address(ipaddress.ip_address("192.168.1.20"))
    assert fetch.any_address(ipaddress.ip_address("127.0.0.1"))
    assert not fetch.any_address(ipaddress.ip_address(address))


def test_a_fetch_says_who_asks_and_for_what(images: ImageServer) -> None:
    # Image hosts refuse (or answer with a web page) a request that looks like nobody's.
    before = len(images.requests)
    assert fetch.fetch_image(images.url("/thumb.jpg"), fetch.any_address).data == images.image
    [asked] = images.headers[before:]
    assert asked["User-Agent"] == fetch.USER_AGENT
    assert asked["Accept"] == "image/*"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_every_kind_of_redirect_is_followed(images: ImageServer, status: int) -> None:
    for to in (images.url("/thumb.jpg"), "/thumb.jpg"):  # a Location may be relative
        redirect = images.redirect(to, status=status)
        assert fetch.fetch_image(redirect, fetch.any_address).data == images.image


@pytest.mark.parametrize("path", ["/announced-huge.jpg", "/endless.jpg"])
def test_an_image_over_the_limit_is_refused(images: ImageServer, path: str) -> None:
    """Whether its Content-Length says so (refused before the body is read; the body that
    follows is shorter) or it only shows as the bytes come."""
    with pytest.raises(errors.AppError) as refused:
        fetch.fetch_image(images.url(path), fetch.any_address)
    assert refused.value.status == 502
    assert f"over {fetch.MAX_BYTES // (1024 * 1024)} MiB" in refused.value.message


def test_a_server_that_never_answers_costs_the_fetch_its_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It takes the connection (the kernel's backlog) and never says a word: the fetch gives
    up at its deadline rather than hold a request thread for good."""
    monkeypatch.setattr(fetch, "TIMEOUT", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/thumb.jpg"
        outcome: list[BaseException | fetch.Image] = []

        def attempt() -> None:
            try:
                outcome.append(fetch.fetch_image(url, fetch.any_address))
            except BaseException as exc:  # the test reads what it was
                outcome.append(exc)

        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(timeout=10)
    assert outcome, "the fetch was still waiting after 10 s"
    [error] = outcome
    assert isinstance(error, errors.AppError) and error.status == 502


# --- history thumbnails and the background ----------------------------------------------------

def test_history_thumbnail(app: tuple[Runtime, TestClient], origin: MediaOrigin) -> None:
    runtime, client = app
    [queued] = client.simulate_post("/api/history", json={"url": origin.clip_url}).json
    item = wait_for(lambda: (i := runtime.engine.get(queued["id"])) and i.status == "finished"
                    and i, 60, message="the download to finish")
    url = f"/api/history/{item.id}/thumbnail"
    assert_error(client.simulate_get(url), 404)
    media = runtime.settings.download_path / item.filename
    # Beside it, images that are not files of the folder: a FIFO (it blocked the thread for
    # good), a symlink to a file outside (served), a directory (a 500). Passed over.
    secret = runtime.settings.config_path / "secret.jpg"
    secret.write_bytes(b"SECRET")
    os.mkfifo(media.with_suffix(".gif"))
    media.with_suffix(".jpg").symlink_to(secret)
    media.with_suffix(".png").mkdir()
    # and one whose name is not UTF-8 (no URL or JSON can name it: a 500 once chosen)
    undecodable = os.fsencode(media.with_suffix("")) + b".0\xff.jpg"
    with open(undecodable, "wb") as image:
        image.write(b"jpeg")
    assert_error(client.simulate_get(url), 404)
    media.with_suffix(".webp").write_bytes(b"webp")
    result = client.simulate_get(url)
    assert result.status_code == 200 and result.content == b"webp"
    assert result.headers["content-type"] == "image/webp"
    assert_error(client.simulate_get("/api/history/nope/thumbnail"), 404)


def test_random_background(app: tuple[Runtime, TestClient], images: ImageServer,
                           app_with: Any) -> None:
    _, client = app
    first = client.simulate_get("/api/random/background")
    assert first.status_code == 200 and first.content == images.image
    fetched = images.requests.count("/thumb.jpg")
    assert client.simulate_get("/api/random/background").content == images.image
    assert images.requests.count("/thumb.jpg") == fetched  # kept
    assert client.simulate_get("/api/random/background", params={"force": "true"}).content
    assert images.requests.count("/thumb.jpg") == fetched + 1
    _, unconfigured = app_with()
    assert_error(unconfigured.simulate_get("/api/random/background"), 404)


class TLSImages:
    """An HTTPS image server on the address ``localhost`` resolves to first, presenting a
    self-signed certificate for ``name``."""

    def __init__(self, folder: Path, name: str, image: bytes) -> None:
        self.cert = folder / f"{name}.pem"
        key = folder / f"{name}.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-keyout", str(key), "-out", str(self.cert), "-subj", f"/CN={name}",
                        "-addext", f"subjectAltName=DNS:{name}"], check=True,
                       capture_output=True)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)

        family, _, _, _, address = socket.getaddrinfo("localhost", 0,
                                                      type=socket.SOCK_STREAM)[0]

        class Server(ThreadingHTTPServer):
            address_family = family

        self.httpd = Server(address[:2], Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        # the handshake in each request's own thread: a client that connects and never
        # speaks TLS must not hold the accepting loop (and the fixture's shutdown) for good
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"https://localhost:{self.httpd.server_address[1]}/thumb.jpg"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, images: ImageServer
        ) -> Iterator[dict[str, TLSImages]]:
    folder = tmp_path_factory.mktemp("tls")
    servers = {name: TLSImages(folder, name, images.image) for name in ("localhost", "other")}
    yield servers
    for server in servers.values():
        server.httpd.shutdown()


def test_https_goes_to_the_checked_address_with_the_urls_name(
        tls: dict[str, TLSImages], images: ImageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection is made to the address that was checked, and TLS is spoken with the
    URL's host name: its certificate is verified for that name (the test's own CA trusted,
    SSL_CERT_FILE), and one for another name, or one nobody vouches for, is refused."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls["localhost"].cert))
    assert fetch.fetch_image(tls["localhost"].url, fetch.any_address).data == images.image
    for trusted, server in (("other", "other"), ("localhost", "other")):
        monkeypatch.setenv("SSL_CERT_FILE", str(tls[trusted].cert))
        with pytest.raises(errors.AppError) as refused:
            fetch.fetch_image(tls[server].url, fetch.any_address)
        assert refused.value.code == errors.UPSTREAM_ERROR
        assert "CERTIFICATE_VERIFY_FAILED" in refused.value.message
