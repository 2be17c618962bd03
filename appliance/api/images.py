"""Images for the UI: ``/api/thumbnail?url=`` (a remote thumbnail fetched here, SSRF-safe),
``/api/history/{id}/thumbnail`` (an item's thumbnail file, else its remote one) and
``/api/random/background`` (from ``YTP_BACKGROUND_URL``, when set)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import falcon

from .. import errors, kinds
from ..files import paths
from ..files.fetch import Image, fetch_image, policy
from ..files.index import nameable
from ..runtime import Runtime
from .conditional import validate
from .downloads import inert, send_file
from .requests import query_bool
from .schemas import error, path_param, query

# Remote images change rarely; clients may keep them a day.
IMAGE_MAX_AGE = 86400
BACKGROUND_TTL = 3600.0


def fetch(runtime: Runtime, url: str) -> Image:
    allow = policy(runtime.settings.fetch_private_addresses)
    with runtime.image_fetches:
        return fetch_image(url, allow)


def send_image(req: falcon.Request, resp: falcon.Response, image: Image) -> None:
    tag = '"' + hashlib.blake2b(image.data, digest_size=12).hexdigest() + '"'
    resp.cache_control = [f"public, max-age={IMAGE_MAX_AGE}"]
    if validate(req, resp, tag):
        return
    resp.content_type = image.content_type
    inert(resp)
    resp.data = image.data


class Thumbnail:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        url = req.get_param("url")
        if not url:
            raise errors.invalid("url is required.")
        send_image(req, resp, fetch(self.runtime, url))


class HistoryThumbnail:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: str) -> None:
        item = self.runtime.engine.get(item_id)
        if item is None:
            raise errors.not_found()
        root = Path(item.download_folder) if item.download_folder else self.runtime.files.root
        local = self._local(root, item.filename)
        if local is not None:
            send_file(req, resp, local, root, self.runtime.transfers)
            resp.cache_control = [f"public, max-age={IMAGE_MAX_AGE}"]
            return
        remote = (item.info or {}).get("thumbnail") or (item.extras or {}).get("thumbnail")
        if not isinstance(remote, str) or not remote:
            raise errors.not_found("The item has no thumbnail.")
        send_image(req, resp, fetch(self.runtime, remote))

    @staticmethod
    def _local(root: Path, filename: str) -> Path | None:
        """The thumbnail file beside the item's file (``name.jpg``, ``name.webp``…): a
        regular file inside ``root`` once its symlinks are followed (send_file checks it
        again as it opens it)."""
        if not filename:
            return None
        try:
            media = paths.resolve(root, filename)
        except errors.AppError:
            return None
        prefix = kinds.stem(media.name) + "."
        try:
            names = sorted(os.listdir(media.parent))
        except OSError:
            return None
        for name in names:
            if name.startswith(prefix) and nameable(name) \
                    and kinds.content_type(name) == kinds.IMAGE:
                try:
                    image = paths.resolve(root, paths.relative(root, media.parent / name))
                except errors.AppError:
                    continue  # leads outside
                if image.is_file():
                    return image
        return None


class RandomBackground:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._cached: tuple[float, Image] | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        url = self.runtime.settings.background_url
        if not url:
            raise errors.not_found("No background image backend is configured.")
        force = query_bool(req, "force")
        with self._lock:
            cached = self._cached
        if force or cached is None or cached[0] < time.monotonic():
            image = fetch(self.runtime, url)
            with self._lock:
                self._cached = cached = (time.monotonic() + BACKGROUND_TTL, image)
        send_image(req, resp, cached[1])


def add_routes(app: falcon.App, runtime: Runtime) -> None:
    app.add_route("/api/thumbnail", Thumbnail(runtime))
    app.add_route("/api/history/{item_id}/thumbnail", HistoryThumbnail(runtime))
    app.add_route("/api/random/background", RandomBackground(runtime))


_image = {"description": "The image.", "content": {"image/*": {
    "schema": {"type": "string", "format": "binary"}}}}
_fetch_errors = {
    "403": error("The URL's host is this machine or a private address "
                 "(YTP_FETCH_PRIVATE_ADDRESSES)."),
    "502": error("The image's server failed, timed out (10 s), sent more than 10 MiB, or sent "
                 "something else than an image."),
    "503": error("Three remote images are being fetched already (for over a second)."),
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/thumbnail": {"get": {
        "tags": ["files"], "operationId": "thumbnail",
        "summary": "A remote thumbnail, fetched by the service (SSRF-safe)",
        "parameters": [query("url", {"type": "string"}, "An http(s) image URL.",
                             required=True)],
        "responses": {"200": _image, "400": error("No url, or not an http(s) URL."),
                      **_fetch_errors},
    }},
    "/api/history/{item_id}/thumbnail": {"get": {
        "tags": ["history"], "operationId": "historyThumbnail",
        "summary": "The item's thumbnail file beside its media, else its remote thumbnail",
        "parameters": [path_param("item_id", "The item's id.")],
        "responses": {"200": _image, "404": error("No such item, or it has no thumbnail."),
                      **_fetch_errors},
    }},
    "/api/random/background": {"get": {
        "tags": ["files"], "operationId": "randomBackground",
        "summary": "An image from YTP_BACKGROUND_URL (kept an hour unless force=true)",
        "parameters": [query("force", {"type": "boolean"}, "Fetch a new image now.")],
        "responses": {"200": _image, "400": error("force is not true or false."),
                      "404": error("No background source is configured."), **_fetch_errors},
    }},
}
