"""``appliance service install``: the service's user, folders, environment file and systemd
unit, with the real paths of this checkout and virtual environment.

The unit is ``systemd/appliance.service`` of the checkout with its path lines rewritten; the
steps are planned first (``--dry-run`` prints them and does nothing) and each one skips what
is already there, so running it again after an upgrade only rewrites the unit. ``--root``
stages the system's side (user database, /etc, /var/lib, the media folder) under another
folder, as the unit will name them once that folder is ``/``; the checkout and the virtual
environment are the ones this command runs from (or ``--venv``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .download_folder import download_folder_problem

PROJECT = Path(__file__).resolve().parents[1]
UNIT_TEMPLATE = PROJECT / "systemd" / "appliance.service"
ENV_EXAMPLE = PROJECT / "systemd" / "appliance.env.example"
UNIT_PATH = Path("/etc/systemd/system/appliance.service")
ENV_PATH = Path("/etc/appliance/appliance.env")
ENV_MODE = 0o600
STATE_PATH = Path("/var/lib/appliance")
DEFAULT_DOWNLOADS = Path("/srv/media/downloads")
NOLOGIN = "/usr/sbin/nologin"
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")  # useradd's and systemd's alike
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))  # by the unit's ProtectHome=yes
SYSTEMCTL_LINES = (
    "systemctl daemon-reload",
    "systemctl enable --now appliance",
    "systemctl status appliance",
    "journalctl -u appliance -f",
)


class InstallError(Exception):
    """A step cannot be done; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Options:
    root: Path = Path("/")
    user: str = "appliance"
    download_path: Path = DEFAULT_DOWNLOADS
    venv: Path = Path(sys.prefix)
    project: Path = PROJECT

    def under_root(self, path: Path) -> Path:
        return self.root / path.relative_to("/")


@dataclasses.dataclass(frozen=True)
class Step:
    says: str
    run: Callable[[], None]


def _unit_text(value: str) -> str:
    """A value as systemd reads it back, ``%`` doubled (systemd expands ``%``-specifiers).
    Refused: a control character (a line break would begin a setting of its own), quotes
    and backslashes (systemd refuses them in the path of the program it runs)."""
    if any(ord(c) < 32 or ord(c) == 127 or c in "\"'\\" for c in value):
        raise InstallError(f"{value!r} holds a quote, a backslash or a control character, "
                           f"which the service's unit cannot hold")
    return value.replace("%", "%%")


def _word(value: str) -> str:
    """One word of a setting that systemd splits at spaces (``ExecStart=``,
    ``ReadWritePaths=``, ``Environment=``): quoted when it holds a space or a semicolon
    (which would end the command line of ``ExecStart=``)."""
    text = _unit_text(value)
    return f'"{text}"' if " " in text or ";" in text else text


def render_unit(template: str, options: Options) -> str:
    """The unit with this installation's user and paths on its path lines."""
    lines_for = {  # by how the template's line begins
        "User=": f"User={options.user}",
        "Group=": f"Group={options.user}",
        # the rest of the line is the folder: no quotes
        "WorkingDirectory=": f"WorkingDirectory={_unit_text(str(options.project))}",
        "Documentation=": f"Documentation={_unit_text((options.project / 'README.md').as_uri())}",
        "ExecStart=": f"ExecStart={_word(f'{options.venv}/bin/appliance')} serve",
        "Environment=YTP_DOWNLOAD_PATH=":
            f"Environment={_word(f'YTP_DOWNLOAD_PATH={options.download_path}')}",
    }
    writable = [_word(str(options.download_path)), _word(str(options.venv))]
    lines: list[str] = []
    for line in template.splitlines():
        key = next((k for k in lines_for if line.startswith(k)), None)
        if key is not None:
            line = lines_for[key]
        elif line.startswith("ReadWritePaths="):
            if not writable:
                continue  # the template's lines are replaced by this installation's, in order
            line = f"ReadWritePaths={writable.pop(0)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _ids(root: Path, user: str) -> tuple[int, int] | None:
    """The user's uid and gid as the root's own passwd file says (not this machine's)."""
    try:
        for line in (root / "etc" / "passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == user:
                return int(fields[2]), int(fields[3])
    except OSError:
        return None
    return None


def _useradd(options: Options) -> None:
    command = ["useradd", "--system", "--user-group", "--home-dir", str(STATE_PATH),
               "--no-create-home", "--shell", NOLOGIN, options.user]
    if options.root != Path("/"):
        command[1:1] = ["--prefix", str(options.root)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise InstallError("useradd is not installed (Debian: the passwd package)") from None
    except subprocess.CalledProcessError as exc:
        raise InstallError(f"useradd failed: {exc.stderr.strip() or exc.returncode}") from None


def _owner(options: Options) -> tuple[int, int]:
    ids = _ids(options.root, options.user)
    if ids is None:
        raise InstallError(f"user {options.user!r} does not exist under {options.root}")
    return ids


def _make_folder(options: Options, path: Path, mode: int) -> None:
    target = options.under_root(path)
    target.mkdir(parents=True, exist_ok=True)
    os.chown(target, *_owner(options))
    target.chmod(mode)


def _write(target: Path, text: str, mode: int, group: int | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.new")
    temporary.write_text(text)
    temporary.chmod(mode)
    if group is not None:
        os.chown(temporary, 0, group)
    temporary.replace(target)


def _own_tree(options: Options, path: Path) -> None:
    uid, gid = _owner(options)
    for folder, dirs, files in os.walk(path):
        for name in (folder, *(os.path.join(folder, n) for n in dirs + files)):
            os.chown(name, uid, gid, follow_symlinks=False)


def _check(options: Options) -> None:
    """Refuse what the unit could not say or the service could not use."""
    if not USER_NAME.fullmatch(options.user) or options.user == "root":
        raise InstallError(f"{options.user!r} cannot be the service's user: a system user's "
                           f"name (letters, digits, _ and -; not root)")
    if not options.download_path.is_absolute():
        raise InstallError(f"the download path {options.download_path} is not absolute")
    # The unit lets the service write there (ReadWritePaths=), through ProtectSystem=strict
    problem = download_folder_problem(options.download_path, STATE_PATH / "config",
                                      STATE_PATH / "tmp")
    if problem is not None:
        raise InstallError(f"the download path cannot be {options.download_path}: {problem}")
    for what, path, advice in (
            ("the checkout", options.project, "clone it to /opt/appliance"),
            ("the virtual environment", options.venv, "clone it to /opt/appliance"),
            ("the download folder", options.download_path, "choose one under /srv or /mnt")):
        # ProtectHome=yes hides these even from ReadWritePaths= below them
        if any(Path(os.path.normpath(path)).is_relative_to(hidden) for hidden in HIDDEN):
            raise InstallError(f"{what} is in {path}, which the service cannot see "
                               f"(ProtectHome=yes hides /home and /root): {advice}")
    if not (options.venv / "pyvenv.cfg").is_file():
        # It is given to the service's user: a system Python's prefix (/usr/local) would be
        raise InstallError(f"{options.venv} is not a virtual environment (no pyvenv.cfg): "
                           f"run ./bootstrap.sh serve and install from its .venv")


def plan(options: Options) -> list[Step]:
    """What installing does here, in order; what is already done is left out."""
    _check(options)
    if not UNIT_TEMPLATE.is_file():
        raise InstallError(f"{UNIT_TEMPLATE} is missing: run this from the project's checkout")
    if not (options.venv / "bin" / "appliance").exists():
        raise InstallError(f"{options.venv} is not this project's virtual environment "
                           f"(no bin/appliance): run ./bootstrap.sh serve once first")
    steps: list[Step] = []
    user = options.user
    if _ids(options.root, user) is None:
        steps.append(Step(f"create the system user and group {user!r} (home {STATE_PATH}, "
                          f"no login)", lambda: _useradd(options)))
    for path, mode in ((options.download_path, 0o2775), (STATE_PATH, 0o750),
                       (STATE_PATH / "config", 0o750)):
        if not options.under_root(path).is_dir():
            steps.append(Step(f"create {path} (owner {user}, mode {mode:o})",
                              lambda p=path, m=mode: _make_folder(options, p, m)))
    steps.append(Step(f"give {options.venv} to {user} (the service updates yt-dlp in it)",
                      lambda: _own_tree(options, options.venv)))
    # The environment file holds the service's password (YTP_AUTH_PASSWORD): root's alone.
    # systemd reads it as root before the service starts; at mode 640 the service's group
    # read it too, and the media server's user joins that group to read the media.
    env_file = options.under_root(ENV_PATH)
    if not env_file.exists():
        steps.append(Step(f"write {ENV_PATH} from {ENV_EXAMPLE.name} (mode 600, root's)",
                          lambda: _write(env_file, ENV_EXAMPLE.read_text(), ENV_MODE, 0)))
    elif (mode := env_file.stat().st_mode & 0o777) & ~ENV_MODE:
        steps.append(Step(f"close {ENV_PATH} to others than its owner (mode {mode:o} → 600): "
                          f"it holds the service's password, and the media server's user may "
                          f"be in group {user}", lambda: env_file.chmod(ENV_MODE)))
    unit = render_unit(UNIT_TEMPLATE.read_text(), options)
    there = options.under_root(UNIT_PATH)
    if there.is_file() and there.read_text(errors="replace") != unit:
        # An owner's edit of the unit (or an older release's unit) is not lost without a word
        kept = UNIT_PATH.with_name(f"{UNIT_PATH.name}.old")
        steps.append(Step(f"keep the {UNIT_PATH} there, which differs, as {kept} (changes of "
                          f"your own belong in a drop-in: sudo systemctl edit appliance)",
                          lambda: shutil.copy2(there, options.under_root(kept))))
    steps.append(Step(f"write {UNIT_PATH}", lambda: _write(there, unit, 0o644)))
    return steps


def install(options: Options, *, dry_run: bool, say: Callable[[str], None]) -> None:
    steps = plan(options)
    if not dry_run and os.geteuid() != 0:
        raise InstallError("installing a service needs root: run it with sudo "
                           "(or --dry-run to see what it would do)")
    for step in steps:
        say(("would " if dry_run else "") + step.says)
        if not dry_run:
            step.run()
    if dry_run:
        say(f"\n{UNIT_PATH} would read:\n")
        say(render_unit(UNIT_TEMPLATE.read_text(), options))
    where = "" if options.root == Path("/") else f" (on the system installed in {options.root})"
    say(f"\nThen enable and start it{where}:")
    for line in SYSTEMCTL_LINES:
        say(f"  sudo {line}")
