"""What the ``appliance`` command says when the service refuses part of what it was given:
``appliance add`` with one bad URL among good ones queues the good ones and names the bad one
with its reason (the service stores a request all or none: one typo queued nothing, and its
reason did not say which URL)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from support.origin import MediaOrigin
from support.server import Server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("plain-commands")).start()
    yield server
    server.stop()


def appliance(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in server.env.items() if not k.startswith("APPLIANCE_")}
    environment.update(HOME=str(server.root), XDG_CONFIG_HOME=str(server.root / "xdg"))
    return subprocess.run([sys.executable, "-m", "appliance", *args], env=environment,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_add_queues_the_good_urls_and_names_each_refused_one(
        service: Server, origin: MediaOrigin) -> None:
    added = appliance(service, "add", origin.short_url, "not a url", "ftp://example.invalid/x",
                      origin.clip2_url)
    assert added.returncode == 1
    queued = added.stdout.splitlines()
    assert [line.split()[0::2] for line in queued] == [["queued", origin.short_url],
                                                       ["queued", origin.clip2_url]]
    for line in queued:
        assert service.item(line.split()[1])["url"] in (origin.short_url, origin.clip2_url)
    assert added.stderr.splitlines() == [
        "appliance: not a url: url must not contain spaces or control characters.",
        "appliance: url 'ftp://example.invalid/x' must be an http(s) URL.",
    ]


def test_ytdlp_status_says_why_the_newest_is_unknown(service: Server) -> None:
    shown = appliance(service, "ytdlp", "status")
    assert shown.returncode == 0, shown.stderr
    index = service.env["YTP_YTDLP_INDEX_URL"]  # a closed port
    assert shown.stdout.endswith(
        f" installed, newest unknown (the package index {index} did not say: it cannot be "
        f"reached, or has no yt-dlp; YTP_YTDLP_INDEX_URL)\n"), shown.stdout
