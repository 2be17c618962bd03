"""A red team's try at where the download processes connect: yt-dlp goes wherever a site's
page, redirect or playlist leads, and a hostile site led it to addresses no request of the
service may reach (the cloud's metadata service at 169.254.169.254, the unspecified address
that reaches this machine): a task's channel listing went there while the task's own feed
requests were refused, and so did a download. Each connection of a download process is now
held to the service's address policy (``outbound.why_refused``), in every thread of it. The
tests lead to 0.0.0.0, refused as 169.254.169.254 is, which stays on this machine: the
redirect leads to the media origin through it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.hostile import HostileService, Redirect, hostile_service
from support.origin import MediaOrigin
from support.server import Server

pytestmark = pytest.mark.e2e

REFUSED = "0.0.0.0 is the unspecified address: downloads may not go there."


@pytest.fixture
def site() -> Iterator[HostileService]:
    yield from hostile_service()


def test_a_sites_redirect_to_a_refused_address_is_not_followed(
        make_server: Callable[..., Server], origin: MediaOrigin, site: HostileService) -> None:
    through = origin.base_url.replace("127.0.0.1", "0.0.0.0")
    site.answers["/video.mp4"] = Redirect(f"{through}/media/clip.mp4")
    site.answers["/channel"] = Redirect(f"{through}/playlist.html")
    asked = len(origin.requests_for("/media/clip.mp4")) + len(
        origin.requests_for("/playlist.html"))
    server = make_server()

    [added] = server.post("/api/history", {"url": f"{site.url}/video.mp4"}).json()
    item = server.wait_status(added["id"], {"finished", "error", "skip"}, timeout=90)
    assert item["status"] == "error", item
    assert REFUSED in item["error"], item["error"]
    inspect = server.post("/api/tasks/inspect", {"url": f"{site.url}/channel"})
    assert inspect.status_code == 400, inspect.text
    assert inspect.json()["handler"] == "GenericTaskHandler"
    assert REFUSED in inspect.json()["error"], inspect.text

    assert [p for p in server.download_path.rglob("*") if p.is_file()
            and not p.name.startswith(".")] == []
    assert len(origin.requests_for("/media/clip.mp4")) + len(
        origin.requests_for("/playlist.html")) == asked
