"""A red team's try at making a download copy a file of this box: a site's HLS playlist that
names a local file (``file:///…``) as a segment, as its init section (``#EXT-X-MAP``) or as
its key (``#EXT-X-KEY``). yt-dlp's own downloader and ffmpeg (``--hls-prefer-ffmpeg``) each
fetch what the playlist names, and the playlist is the site's: a file copied into the download
folder is read by whoever reads that folder (a share, the file browser). yt-dlp refuses
``file:`` URLs (``--enable-file-urls`` is refused by the option policy) and ffmpeg refuses a
local file named by a playlist it fetched over HTTP; the service updates yt-dlp by itself, so
this pins both on the versions installed. The victim is a real MPEG-TS segment: read, it would
have made a whole video."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.origin import MediaOrigin
from support.server import Server
from support.site import pages_handler, serving

ENDED = {"error", "finished"}
PLAIN = ("The site names a file of this box (a file:// address)",
         "ffmpeg could not download or convert the stream: it is broken, was refused part way, "
         "or names a source a download may not read")
HEAD = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"


def _playlists(segment: str, local: str) -> dict[str, str]:
    return {
        "segment": f"{HEAD}#EXTINF:1.0,\n{local}\n#EXT-X-ENDLIST\n",
        "map": f'{HEAD}#EXT-X-MAP:URI="{local}"\n#EXTINF:1.0,\n{segment}\n#EXT-X-ENDLIST\n',
        "key": (f'{HEAD}#EXT-X-KEY:METHOD=AES-128,URI="{local}"\n#EXTINF:1.0,\n{segment}\n'
                "#EXT-X-ENDLIST\n"),
    }


@pytest.fixture
def site(origin: MediaOrigin, tmp_path: Path) -> Iterator[str]:
    """A site serving the hostile playlists (``/NAME.m3u8``)."""
    segment = f"{origin.base_url}/hls/seg000.ts"
    victim = tmp_path / "outside" / "victim.ts"
    victim.parent.mkdir()
    victim.write_bytes(origin.path_for(f"{origin.base_url}/hls/seg001.ts").read_bytes())
    pages = {f"/{name}.m3u8": text.encode()
             for name, text in _playlists(segment, f"file://{victim}").items()}
    # the same playlists with the victim served by the site: they download (the control)
    pages |= {f"/served-{name}.m3u8": text.encode()
              for name, text in _playlists(segment, f"{origin.base_url}/hls/seg001.ts").items()}

    with serving(pages_handler(pages, "application/vnd.apple.mpegurl")) as url:
        yield url


def test_a_playlist_naming_a_local_file_copies_nothing_of_it(
        make_server: Callable[..., Server], site: str) -> None:
    server = make_server()
    ids = {}
    for cli, by in (("", "native"), ("--hls-prefer-ffmpeg", "ffmpeg")):
        for name in ("segment", "map", "key", "served-segment", "served-map"):
            answer = server.post("/api/history", {"url": f"{site}/{name}.m3u8", "cli": cli,
                                                  "template": f"{by}-%(id)s.%(ext)s"})
            assert answer.status_code == 200, answer.text
            ids[(name, cli)] = answer.json()[0]["id"]
    for (name, cli), item_id in ids.items():
        item = server.wait_status(item_id, ENDED)
        served = name.startswith("served-")
        assert item["status"] == ("finished" if served else "error"), (name, cli, item)
        if not served:  # said plainly: yt-dlp's refusal, or ffmpeg's
            assert item["error"].startswith(PLAIN), (name, cli, item["error"])
            assert "--enable-file-urls" not in item["error"], item["error"]
            if item["error"].startswith(PLAIN[1]):  # and ffmpeg's own reason, which it was not
                words = item["error"].partition("ffmpeg exited with code 1: ")[2]
                assert "file" in words.split(";")[0], item["error"]  # its first: the refusal
    # the download folder holds the controls' videos only, each downloaded by its own way
    assert sorted(p.name for p in (server.root / "downloads").rglob("*.mp4")) == [
        "ffmpeg-served-map.mp4", "ffmpeg-served-segment.mp4", "native-served-map.mp4",
        "native-served-segment.mp4"]
