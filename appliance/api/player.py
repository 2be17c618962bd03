"""``/api/player/…``: HLS for any media file of the download folder (YTPTube's contract)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import falcon

from .. import errors, kinds
from ..files.reading import open_regular
from ..player import playlists
from ..player.segments import SegmentStream, segment_command
from ..player.subtitles import to_webvtt
from ..runtime import Runtime
from .conditional import file_etag, validate
from .downloads import inert
from .local_files import FOLDER_GONE, as_sent, local_file
from .schemas import error, path_param, query

M3U8 = "application/x-mpegURL"
# A segment named by the version of its file (``playlists.video``'s ``v``) never changes: kept
# for good. One named otherwise (no version, a playlist read before the file was replaced)
# is asked again each time, with its ETag. ``private``: with credentials on, a shared cache
# (a reverse proxy's) must not hand a user's segment to whoever asks next.
KEPT = "private, max-age=31536000, immutable"
ASKED_AGAIN = "private, no-cache"


def _named(file: str, suffix: str) -> str:
    """The file's path from a route that ends in ``suffix``; 404 without it (not a route)."""
    if not file.endswith(suffix) or len(file) == len(suffix):
        raise errors.not_found(f"No such endpoint (the path must end in {suffix}).")
    return file[: -len(suffix)]


def _ticket(req: falcon.Request) -> str | None:
    """The file ticket the request was let in with, for the playlist's own URLs."""
    identity = getattr(req.context, "identity", None)
    if identity is None or identity.method != "ticket":
        return None
    return req.get_param("ticket")


def _version(info: os.stat_result) -> str:
    """The file as it is now (its identity, size and time), for the segments' URLs: a file
    downloaded again under its name, a better format replacing it, gives them new URLs, so
    a browser never plays the segments it kept of the file that was there before."""
    return file_etag(info).strip('"')


def _send_text(resp: falcon.Response, text: str, content_type: str) -> None:
    resp.content_type = content_type
    resp.cache_control = ["no-cache"]
    resp.data = text.encode()  # the ETag middleware tags it (its URLs are percent-encoded)


class Player:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def file(self, req: falcon.Request, file: str, route: str, suffix: str
             ) -> tuple[Path, str]:
        prefix = f"/api/player/{route}/"
        return local_file(req, self.runtime, _named(as_sent(req, file, prefix), suffix),
                          prefix, suffix)

    def open(self, path: Path) -> io.FileIO:
        """The file ffmpeg will read, as it is now (``files.reading.open_regular``)."""
        return open_regular(path, self.runtime.files.root)

    def plan(self, media: io.FileIO, convert_video: bool = False) -> playlists.Plan:
        return playlists.plan(self.runtime.player.prober.probe(media), convert_video)


class Playlist(Player):
    def on_get(self, req: falcon.Request, resp: falcon.Response, file: str) -> None:
        path, rel = self.file(req, file, "playlist", ".m3u8")
        with self.open(path) as media:
            data = self.runtime.player.prober.probe(media)
            self.plan(media)  # a file that cannot be played is refused here, not per segment
        # named as on the disk: their URLs name them by their bytes, as the video's
        subtitles = self.runtime.files.index.sidecars(rel).get(kinds.SUBTITLE, [])
        _send_text(resp, playlists.master(req.root_path, rel, data, subtitles, _ticket(req)),
                   M3U8)


class MediaPlaylist(Player):
    def on_get(self, req: falcon.Request, resp: falcon.Response, mode: str, file: str) -> None:
        if mode not in ("video", "subtitle"):
            raise errors.invalid("Only video and subtitle modes are supported.")
        path, rel = self.file(req, file, f"m3u8/{mode}", ".m3u8")
        if mode == "video":
            with self.open(path) as media:
                made, version = self.plan(media), _version(os.fstat(media.fileno()))
            text = playlists.video(req.root_path, rel, made, version, _ticket(req))
        else:
            duration = req.get_param_as_float("duration", min_value=0.001,
                                               max_value=playlists.MAX_DURATION)
            if duration is None:
                raise errors.invalid("duration is required.")
            if not math.isfinite(duration):  # "nan" passes falcon's bounds
                raise errors.invalid("duration must be a number of seconds (it is nan).")
            text = playlists.subtitle(req.root_path, rel, duration)
        _send_text(resp, text, M3U8)


class Segment(Player):
    def on_get(self, req: falcon.Request, resp: falcon.Response, segment: int,
               file: str) -> None:
        path, _ = self.file(req, file, f"segments/{segment}", ".ts")
        convert = req.get_param_as_int("vc", min_value=0, max_value=1) == 1
        with self.open(path) as media:
            self.segment(req, resp, media, segment, convert)

    def segment(self, req: falcon.Request, resp: falcon.Response, media: io.FileIO,
                segment: int, convert: bool) -> None:
        made = self.plan(media, convert)
        if not 0 <= segment < len(made.spans):
            raise errors.not_found(f"The file has {len(made.spans)} segments.")
        player = self.runtime.player
        info = os.fstat(media.fileno())
        # what the bytes are made of: a segment whose audio was encoded before it is copied
        # (an upgrade) is another segment, never a 304 of the one a browser kept
        tag = file_etag(info, segment, made.copy_video, made.copy_audio, player.encoder)
        resp.cache_control = [KEPT if req.get_param("v") == _version(info) else ASKED_AGAIN]
        if validate(req, resp, tag, info.st_mtime):
            return
        resp.content_type = "video/MP2T"
        resp.set_header("X-Accel-Buffering", "no")
        command = segment_command(media, made, segment, player.encoder,
                                  lambda time: player.prober.keyframe(media, time))
        if command is None:
            resp.data = b""
            return
        # one Slots for the taking and the giving back: the setting may replace it between
        slots = player.slots
        slots.take()
        # ffmpeg inherits the descriptor: ours is closed when the answer starts
        try:
            resp.stream = SegmentStream(command, slots, media)
        except errors.AppError:
            # the 400 of an ffmpeg that failed is no segment: nothing for a cache to keep
            resp.delete_header("ETag")
            resp.delete_header("Last-Modified")
            resp.cache_control = ["no-store"]
            raise


class Subtitle(Player):
    def on_get(self, req: falcon.Request, resp: falcon.Response, file: str) -> None:
        path, _ = self.file(req, file, "subtitle", ".vtt")
        if path.suffix.lower() not in kinds.PLAYABLE_SUBTITLES:
            raise errors.invalid("Only srt, ass and vtt subtitles can be played.")
        with self.open(path) as media:
            info = os.fstat(media.fileno())
            # its URL names no version: a file changed is the next answer, not a stale one
            resp.cache_control = [ASKED_AGAIN]
            if validate(req, resp, file_etag(info, "vtt"), info.st_mtime):
                return
            resp.content_type = "text/vtt; charset=UTF-8"
            inert(resp)  # a site's text, as every file of the folder served
            player = self.runtime.player
            resp.data = to_webvtt(media, info, player.slots, player.subtitle_refusals)


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/player/playlist/{file:path}", Playlist(runtime))
    app.add_route("/api/player/m3u8/{mode}/{file:path}", MediaPlaylist(runtime))
    app.add_route("/api/player/segments/{segment:int}/{file:path}", Segment(runtime))
    app.add_route("/api/player/subtitle/{file:path}", Subtitle(runtime))


_FILE = ("Relative path of the file in the download folder, then the route's suffix "
         "(.m3u8, .ts, .vtt).")
_path_errors = {
    "302": {"description": "The path's normal form, or the file that has its id now.",
            "headers": {"Location": {"schema": {"type": "string"}}}},
    "400": error("A refused path, or a file that cannot be played (no duration)."),
    "403": error("The path leads outside the download folder."),
    "404": error("No such file (or the path lacks the route's suffix)."),
    "503": error(FOLDER_GONE),
}


def _text(description: str, kind: str) -> dict[str, Any]:
    return {"description": description, "content": {kind: {"schema": {"type": "string"}}}}


PATHS: dict[str, dict[str, Any]] = {
    "/api/player/playlist/{file}": {"get": {
        "tags": ["player"], "operationId": "playerPlaylist",
        "summary": "The master HLS playlist: the video and a track per subtitle sidecar",
        "parameters": [path_param("file", _FILE)],
        "responses": {"200": _text("The playlist.", M3U8), **_path_errors},
    }},
    "/api/player/m3u8/{mode}/{file}": {"get": {
        "tags": ["player"], "operationId": "playerMediaPlaylist",
        "summary": "The video's segments, or a subtitle's one-entry playlist",
        "parameters": [path_param("mode", "video or subtitle", {"enum": ["video", "subtitle"]}),
                       path_param("file", _FILE),
                       query("duration", {"type": "number", "exclusiveMinimum": 0},
                             "subtitle: the video's duration in seconds (required).")],
        "responses": {"200": _text("The playlist.", M3U8), **_path_errors},
    }},
    "/api/player/segments/{segment}/{file}": {"get": {
        "tags": ["player"], "operationId": "playerSegment",
        "summary": "One MPEG-TS segment, made by ffmpeg as it is sent",
        "parameters": [
            path_param("segment", "Segment number, from 0.", {"type": "integer", "minimum": 0}),
            path_param("file", _FILE),
            query("sd", {"type": "number"}, "Segment duration (the playlist's; informative)."),
            query("v", {"type": "string"}, "The file's version the playlist was made of: "
                                           "with the file's current one, the segment is "
                                           "cached for good, else asked again each time."),
            query("vc", {"enum": [0, 1]}, "1: transcode the video (YTP_PLAYER_ENCODER)."),
            query("ac", {"enum": [0, 1]}, "1: the audio is encoded to AAC (it is whenever it "
                                          "is not AAC already)."),
        ],
        "responses": {
            "200": {"description": "The segment.", "content": {"video/MP2T": {
                "schema": {"type": "string", "format": "binary"}}}},
            **_path_errors,
            "503": error("Every ffmpeg slot is busy (YTP_PLAYER_MAX_FFMPEG) for 3 s."),
        },
    }},
    "/api/player/subtitle/{file}": {"get": {
        "tags": ["player"], "operationId": "playerSubtitle",
        "summary": "A subtitle file (srt, ass, vtt) as WebVTT",
        "parameters": [path_param("file", _FILE)],
        "responses": {"200": _text("WebVTT.", "text/vtt"), **_path_errors,
                      "503": error("Every ffmpeg slot is busy for 3 s.")},
    }},
}
