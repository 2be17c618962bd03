"""A package index on 127.0.0.1: a PEP 503 folder served by ``http.server``, holding yt-dlp
wheels made from the installed one (the same files, another version number; or broken)."""

from __future__ import annotations

import functools
import html
import re
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pip

from appliance.ytdlp_update.updater import SOLVER
from appliance.ytdlp_update.wheels import (
    build_wheel,
    installed_files,
    installed_version,
    site_packages,
)

HERE_SITE = Path(__import__("yt_dlp").__file__).parents[1]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class PackageIndex:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.wheels: dict[str, Path] = {}
        self.current = installed_version(HERE_SITE, "yt-dlp") or ""
        self._sources = installed_files(HERE_SITE, "yt-dlp")
        handler = functools.partial(_Quiet, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/simple"

    def add(self, version: str, *, broken: bool | str = False) -> Path:
        """A yt-dlp wheel of ``version``: the installed one's files, renumbered; a broken one
        fails on import (with the words ``broken`` when it is a text)."""
        files = dict(self._sources)
        files["yt_dlp/version.py"] = re.sub(
            rb"(?m)^__version__ = .*$", f"__version__ = '{version}'".encode(),
            files["yt_dlp/version.py"])
        if broken:
            said = broken if isinstance(broken, str) else "a broken release"
            files["yt_dlp/__init__.py"] = f"raise ImportError({said!r})\n".encode()
        self.wheels[version] = build_wheel(files, "yt-dlp", version, self.files)
        return self.wheels[version]

    def publish(self, *versions: str) -> None:
        """The index offers exactly these versions."""
        self.page("yt-dlp", [self.wheels[v] for v in versions])

    def add_solver(self, version: str, *, publish: bool = True) -> Path:
        """A yt-dlp-ejs wheel of ``version`` (the installed one's files, renumbered), the one
        the index offers when ``publish``."""
        wheel = build_wheel(installed_files(HERE_SITE, SOLVER), SOLVER, version, self.files)
        if publish:
            self.page(SOLVER, [wheel])
        return wheel

    def page(self, project: str, wheels: list[Path]) -> None:
        """The project's page: links to exactly these files."""
        page = self.root / "simple" / project / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../../files/{html.escape(w.name)}">'
                        f"{html.escape(w.name)}</a><br>\n" for w in wheels)
        page.write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_venv(folder: Path, wheel: Path | None) -> Path:
    """A throwaway virtual environment (never the tests' own) with ``wheel`` installed. Its
    pip is the tests' own, put on its path by a .pth file: ensurepip would take half a minute
    on a busy box, and pip installs into whichever environment runs it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=300)
    python = folder / "bin" / "python"
    shelf = folder / "pip-shelf"
    shelf.mkdir()
    (shelf / "pip").symlink_to(Path(pip.__file__).parent)
    (site_packages(python) / "pip-shelf.pth").write_text(f"{shelf}\n")
    if wheel is not None:
        install(python, wheel)
    return python


def install(python: Path, wheel: Path) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-qq", "--no-index", "--no-deps",
                    "--force-reinstall", "--no-compile", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=300)


def version_in(python: Path) -> str:
    return subprocess.run([str(python), "-I", "-c",
                           "from yt_dlp.version import __version__; print(__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()
