"""Installing a newer yt-dlp into a virtual environment: pip from the configured index, a
check that the new one imports and extracts, and a roll back to the wheel kept of the old one
when it does not. The environment is named by its Python (the service's own by default)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from .. import bytecode
from ..atomic import write_atomic
from ..config import url_shown
from .index import newer, newest_version, version_key
from .wheels import (
    build_wheel,
    distribution,
    installed_files,
    installed_version,
    normalize,
    python_version,
    site_packages,
)

log = logging.getLogger(__name__)

PACKAGE = "yt-dlp"
SOLVER = "yt-dlp-ejs"  # YouTube's challenge solver scripts: yt-dlp pins the release it runs
PIP_TIMEOUT = 900.0
CHECK_TIMEOUT = 180.0
INDEX_TIMEOUT = 5.0

# Run by the environment's own Python: yt-dlp imports, has its extractors and reads a URL
# (the check URL when one is set; without one, no network: the YouTube extractor must know a
# video address).
CHECK = """
import json, sys
import yt_dlp
from yt_dlp.extractor import gen_extractor_classes
from yt_dlp.version import __version__
found = {"version": __version__, "extractors": sum(1 for _ in gen_extractor_classes())}
if len(sys.argv) > 1:
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "skip_download": True}) as ydl:
        found["title"] = ydl.extract_info(sys.argv[1], download=False).get("title")
else:
    from yt_dlp.extractor.youtube import YoutubeIE
    # not an assert: the service's interpreters run optimized (-OO), which drops asserts
    if not YoutubeIE.suitable("https://www.youtube.com/watch?v=BaW_jenozKc"):
        sys.exit("its YouTube extractor does not take a YouTube video address")
print(json.dumps(found))
"""
MIN_EXTRACTORS = 100
WHEEL_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!]{0,63}")  # PEP 440's characters
# In the kept wheels' folder while pip replaces yt-dlp: a kill or power cut then leaves it
# half replaced, and the next start (or update) puts the release it replaced back.
UNDER_WAY = "update-under-way.json"


# pip's stash of an uninstalled folder: its name with the first characters replaced by "~" and
# these (pip's AdjacentTempDirectory), or these put before it
_STASH_FILLER = frozenset("-~.=%0123456789")
_OUR_MODULES = ("yt_dlp", "yt_dlp_ejs")


def pips_stash_of_ours(name: str) -> bool:
    """Whether ``name`` is pip's stash of yt-dlp's or its solver's folders: another
    package's stash (pip running for it in this venv at the same moment) is not ours."""
    if not name.startswith("~"):
        return False
    for cut in range(1, len(name)):
        if cut > 1 and name[cut - 1] not in _STASH_FILLER:
            break
        rest = name[cut:]
        head = rest.split("-")[0] if rest.endswith(".dist-info") else rest
        if head and any(head in (module[cut:], module) for module in _OUR_MODULES):
            return True
    return False


class PipFailed(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Outcome:
    """``state``: updated | up_to_date | rolled_back | failed."""

    state: str
    installed: str | None
    previous: str | None = None
    target: str | None = None
    message: str = ""


def _pin(site: Path, package: str, dependency: str) -> str | None:
    """The exact release of ``dependency`` that ``package``'s metadata asks for, if any."""
    dist = distribution(site, package)
    for requirement in (dist.requires or []) if dist is not None else []:
        match = re.match(rf"{re.escape(dependency)}\s*==\s*([\w.]+)", requirement, re.I)
        if match:
            return match.group(1)
    return None


class Updater:
    def __init__(self, python: Path, index_url: str, keep: Path, *, check_url: str = "",
                 say: Callable[[str], None] = log.info) -> None:
        self.python = python
        self.index_url = index_url
        self.keep = keep  # where the replaced releases are kept as wheels
        self.check_url = check_url
        self.say = say
        self._site: Path | None = None
        self._python_version: str | None = None

    @property
    def site(self) -> Path:
        if self._site is None:
            self._site = site_packages(self.python)
        return self._site

    def installed(self) -> str | None:
        return installed_version(self.site, PACKAGE)

    def latest(self, timeout: float = INDEX_TIMEOUT) -> str | None:
        """The newest release pip would install into the environment (for its Python)."""
        if self._python_version is None:
            self._python_version = python_version(self.python)
        return newest_version(self.index_url, PACKAGE, timeout, self._python_version)

    def update(self) -> Outcome:
        if self.interrupted():
            return self.resume()
        previous = self.installed()
        target = self.latest()
        if target is None:
            return Outcome("failed", previous, previous, None,
                           f"the package index {url_shown(self.index_url)} cannot be reached")
        if not newer(target, previous):
            return Outcome("up_to_date", previous, previous, target,
                           f"yt-dlp {previous} is the newest release")
        kept: list[Path] = []
        try:
            if previous is not None:
                kept.append(self._keep(PACKAGE))
                self._under_way(previous, target, kept)
            self.say(f"installing yt-dlp {target} (replacing {previous}) ...")
            self._pip("--no-deps", f"{PACKAGE}=={target}")
            solver = _pin(self.site, PACKAGE, SOLVER)
            current_solver = installed_version(self.site, SOLVER)
            if solver and current_solver and version_key(solver) != version_key(current_solver):
                kept.append(self._keep(SOLVER))
                self._under_way(previous, target, kept)
                self.say(f"installing {SOLVER} {solver}, which yt-dlp {target} runs ...")
                self._pip("--no-deps", f"{SOLVER}=={solver}")
            problem = self.check(target)
        except (PipFailed, OSError, subprocess.SubprocessError) as exc:
            problem = f"the install failed: {exc}"
        if problem is None:
            bytecode.compile_ytdlp(self.python)
            self._done()
            return Outcome("updated", target, previous, target,
                           f"yt-dlp {target} installed (was {previous})")
        self.say(f"yt-dlp {target} failed its check ({problem}); rolling back to {previous}")
        if not kept:
            return Outcome("failed", self.installed(), previous, target, problem)
        return self._roll_back(kept, previous, target,
                               f"yt-dlp {target} failed its check: {problem}")

    def interrupted(self) -> bool:
        """Whether an update was stopped part way (the service killed, the power cut)."""
        return (self.keep / UNDER_WAY).exists()

    def resume(self) -> Outcome:
        """The end of an update that was stopped part way: pip may have left yt-dlp half
        replaced (some of the new release's files, the old one's in pip's stash), so the
        releases it was replacing go back from their kept wheels."""
        record = self.keep / UNDER_WAY
        try:
            said = json.loads(record.read_text())
            previous, target = str(said["previous"]), str(said["target"])
            # names only: the record is read back from disk
            kept = [self.keep / Path(str(name)).name for name in said["kept"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._done()
            return Outcome("failed", self.installed(), None, None,
                           f"an interrupted update's record {record} cannot be read ({exc}); "
                           f"yt-dlp is left as it is")
        packages = {normalize(PACKAGE), normalize(SOLVER)}
        for folder in self.site.iterdir():
            # pip's stash of what it uninstalled ("~t_dlp", "~t_dlp-….dist-info"), whose
            # metadata would be read as an installed yt-dlp; and the metadata of a release
            # whose install was cut short (no RECORD yet), which pip cannot uninstall
            cut_short = folder.name.endswith(".dist-info") and not (folder / "RECORD").exists() \
                and normalize(folder.name.split("-")[0]) in packages
            if (pips_stash_of_ours(folder.name) or cut_short) and folder.is_dir() \
                    and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
        self.say(f"the update to yt-dlp {target} was interrupted; putting {previous} back ...")
        return self._roll_back(kept, previous, target, f"the update to yt-dlp {target} was "
                               f"interrupted (the service stopped during it)")

    def _roll_back(self, kept: list[Path], previous: str | None, target: str,
                   why: str) -> Outcome:
        try:
            self._pip("--no-deps", "--force-reinstall", *map(str, kept), index=False)
        except PipFailed as exc:  # the record stays: the next start tries again
            return Outcome("failed", self.installed(), previous, target,
                           f"{why}; the roll back failed too: {exc}")
        self._done()
        again = self.check(previous or "")
        bytecode.compile_ytdlp(self.python)
        return Outcome("rolled_back", self.installed(), previous, target,
                       f"{why}" + (f"; and {previous} after the roll back: {again}"
                                   if again else f"; {previous} is back"))

    def _under_way(self, previous: str, target: str, kept: list[Path]) -> None:
        write_atomic(self.keep / UNDER_WAY, json.dumps(
            {"previous": previous, "target": target, "kept": [path.name for path in kept]}))

    def _done(self) -> None:
        (self.keep / UNDER_WAY).unlink(missing_ok=True)

    def check(self, version: str) -> str | None:
        """None when the environment's yt-dlp is ``version``, imports and extracts."""
        command = [str(self.python), "-I", *bytecode.inherited(), "-c", CHECK,
                   *([self.check_url] if self.check_url else [])]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=CHECK_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return f"the check took longer than {CHECK_TIMEOUT:g} s"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            return lines[-1] if lines else f"the check exited with {done.returncode}"
        # What a release under test prints is its own: anything but the expected answer is
        # a failed check (and a roll back), never an exception that would skip the roll back.
        try:
            found = json.loads(done.stdout.strip().splitlines()[-1])
            answered, extractors = str(found["version"]), int(found["extractors"])
        except (ValueError, IndexError, KeyError, TypeError):
            return "the check said nothing readable"
        if not version_key(answered) or version_key(answered) != version_key(version):
            return f"yt-dlp {answered[:100]} answered, not {version}"
        if extractors < MIN_EXTRACTORS:
            return f"only {extractors} extractors"
        return None

    def _keep(self, package: str) -> Path:
        """The installed release as a wheel; the one kept before it is removed."""
        version = installed_version(self.site, package)
        # The version names the kept wheel's file: an installed release's metadata must not
        # name a path (a "/" or "..") or break the wheel's name.
        if version is None or not WHEEL_VERSION.fullmatch(version):
            raise OSError(f"{package}'s installed version {version!r} cannot name a wheel")
        for old in self.keep.glob(f"{re.sub(r'[-_.]+', '_', package)}-*.whl"):
            old.unlink()
        return build_wheel(installed_files(self.site, package), package, version, self.keep)

    def _pip(self, *args: str, index: bool = True) -> None:
        # Only the configured index: the box's pip configuration (a mirror, find-links) must
        # not send the service elsewhere.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        command = [str(self.python), "-m", "pip", "install", "-qq", "--disable-pip-version-check",
                   "--no-input", "--no-cache-dir"]
        # Wheels only: a source archive's build runs code from the index on this box. The
        # index in pip's environment, not on its command line, which every user of the box
        # reads (ps): a private index's address holds its password.
        if index:
            env["PIP_INDEX_URL"] = self.index_url
        command += ["--only-binary", ":all:"] if index else ["--no-index"]
        try:
            done = subprocess.run([*command, *args], capture_output=True, text=True, env=env,
                                  timeout=PIP_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PipFailed(f"pip took longer than {PIP_TIMEOUT:g} s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise PipFailed(lines[-1] if lines else f"pip exited with {done.returncode}")
