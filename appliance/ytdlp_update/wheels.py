"""Installed distributions as wheels: what a virtual environment holds of a package, and a
wheel built from it. The update keeps the yt-dlp it replaces as such a wheel, so that a roll
back needs no package index (the one that offered a broken release may be all there is)."""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import re
import subprocess
import zipfile
from pathlib import Path

from ..atomic import replace_with

# Written by the installer, not part of the package.
INSTALLER_FILES = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
WHEEL_FILE = "Wheel-Version: 1.0\nGenerator: appliance\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def site_packages(python: Path) -> Path:
    """The purelib folder of the environment ``python`` belongs to."""
    out = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return Path(out.stdout.strip())


def python_version(python: Path) -> str | None:
    """The version of ``python`` ("3.11.2"), or None when it cannot be run."""
    try:
        out = subprocess.run([str(python), "-I", "-c",
                              "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def distribution(site: Path, name: str) -> importlib.metadata.Distribution | None:
    wanted = normalize(name)
    for dist in importlib.metadata.distributions(path=[str(site)]):
        if normalize(dist.metadata["Name"] or "") == wanted:
            return dist
    return None


def installed_version(site: Path, name: str) -> str | None:
    dist = distribution(site, name)
    return dist.version if dist is not None else None


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_files(site: Path, name: str) -> dict[str, bytes]:
    """The package's files as its RECORD lists them, relative to ``site`` (scripts outside
    it, byte code and the installer's own files left out: pip makes those again)."""
    dist = distribution(site, name)
    if dist is None:
        raise FileNotFoundError(f"{name} is not installed in {site}")
    files: dict[str, bytes] = {}
    root = site.resolve()
    for entry in dist.files or ():
        path = entry.as_posix()
        # RECORD is the installed release's own text: a name that leaves the folder (an
        # absolute one, "..", a link out of it) is not read into the kept wheel.
        if entry.is_absolute() or ".." in entry.parts or "__pycache__" in path \
                or path.endswith(".pyc"):
            continue
        if ".dist-info/" in path and path.rsplit("/", 1)[1] in INSTALLER_FILES:
            continue
        if not (site / path).resolve().is_relative_to(root):
            continue
        files[path] = (site / path).read_bytes()
    return files


def build_wheel(files: dict[str, bytes], name: str, version: str, folder: Path) -> Path:
    """A pure-Python wheel of ``files``; its dist-info is renamed to ``version`` and its
    METADATA says that version."""
    project = re.sub(r"[-_.]+", "_", name)
    info = f"{project}-{version}.dist-info"
    contents: dict[str, bytes] = {}
    for path, data in files.items():
        top, _, rest = path.partition("/")
        if top.endswith(".dist-info"):
            path = f"{info}/{rest}"
            if rest == "METADATA":
                data = re.sub(rb"(?m)^Version: .*$", f"Version: {version}".encode(), data,
                              count=1)
            elif rest == "WHEEL":
                data = WHEEL_FILE.encode()
        contents[path] = data
    contents.setdefault(f"{info}/WHEEL", WHEEL_FILE.encode())
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        writer.writerow([path, f"sha256={digest}", len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    wheel = folder / f"{project}-{version}-py3-none-any.whl"

    def fill(temporary: Path) -> None:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, data in contents.items():
                archive.writestr(path, data)
            archive.writestr(f"{info}/RECORD", record.getvalue())

    # Whole or not there, on the disk before the update that relies on it goes on (a power
    # cut must not leave a roll back only an empty file).
    replace_with(wheel, fill)
    return wheel
