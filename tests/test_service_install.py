"""The systemd unit and ``appliance service install``: the unit passes ``systemd-analyze
verify`` and scores at most 2.0 in ``systemd-analyze security``; the install command plans
without changing anything under ``--dry-run`` and, for real, creates the user (in a temporary
root's own user database), the folders and the files, with the real paths in the unit."""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.service_install import (
    UNIT_PATH,
    UNIT_TEMPLATE,
    InstallError,
    Options,
    plan,
    render_unit,
)
from appliance.service_install import install as install_service

MAX_EXPOSURE = 2.0
ETC_FILES = ("passwd", "group", "shadow", "gshadow", "login.defs")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze is missing (bootstrap.sh installs it)")


@pytest.fixture(autouse=True)
def host_users_kept() -> Iterator[None]:
    """This machine's user database as it was before each test: a bug (or a mutant) that
    lost ``--prefix`` made the service's user on this machine, where it stayed (the tests
    that look for it fail on it)."""
    kept = {name: Path("/etc", name).read_bytes() for name in ETC_FILES
            if Path("/etc", name).exists()}
    yield
    for name, content in kept.items():
        if Path("/etc", name).read_bytes() != content:
            Path("/etc", name).write_bytes(content)


def exposure(unit: Path) -> float:
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, check=False).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out
    return float(match.group(1))


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False)


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", "service", "install", *args],
                          capture_output=True, text=True, check=False)


def staging_root(tmp_path: Path) -> tuple[Path, Path]:
    """A root with a user database of its own, and a stand-in virtual environment whose
    bin/appliance is the real one (verify checks that ExecStart can be executed)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ETC_FILES:
        if Path("/etc", name).exists():
            shutil.copy2(Path("/etc", name), root / "etc" / name)
            if name != "login.defs":  # a machine without the service: its user is not there
                copied = root / "etc" / name
                copied.write_text("".join(
                    line for line in copied.read_text().splitlines(keepends=True)
                    if not line.startswith(f"{Options().user}:")))
            # without the service's user, should this machine have one: the install makes it
            text = (root / "etc" / name).read_text()
            (root / "etc" / name).write_text("".join(
                line for line in text.splitlines(keepends=True)
                if not line.startswith("appliance:")))
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "appliance").symlink_to(Path(sys.prefix) / "bin" / "appliance")
    (venv / "pyvenv.cfg").write_text(f"home = {Path(sys.base_prefix) / 'bin'}\n")
    return root, venv


def install_in_process(root: Path, venv: Path, media: str) -> list[str]:
    """``appliance service install`` in this process (mutation testing judges only what
    runs here); what it says, a line each."""
    said: list[str] = []
    install_service(Options(root=root, venv=venv, download_path=Path(media)), dry_run=False,
                    say=said.append)
    return said


def tree(root: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    return {str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_uid, p.stat().st_gid,
                                       p.read_bytes() if p.is_file() else None)
            for p in root.rglob("*")}


def test_the_shipped_unit_is_hardened() -> None:
    assert exposure(UNIT_TEMPLATE) <= MAX_EXPOSURE


def test_dry_run_shows_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    root, venv = staging_root(tmp_path)
    before, venv_before = tree(root), tree(venv)
    result = install("--dry-run", "--root", str(root), "--venv", str(venv))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "would create the system user and group 'appliance'" in out
    assert "would create /srv/media/downloads" in out
    assert "would write /etc/systemd/system/appliance.service" in out
    assert f"ExecStart={venv}/bin/appliance serve" in out
    assert "sudo systemctl enable --now appliance" in out
    assert tree(root) == before
    assert tree(venv) == venv_before  # nothing given away either
    said: list[str] = []  # the same in this process
    install_service(Options(root=root, venv=venv), dry_run=True, say=said.append)
    assert said[0] == ("would create the system user and group 'appliance' (home "
                       "/var/lib/appliance, no login)")
    assert "would write /etc/appliance/appliance.env from appliance.env.example (mode 600, " \
        "root's)" in said
    assert f"\n{UNIT_PATH} would read:\n" in said
    assert render_unit(UNIT_TEMPLATE.read_text(), Options(root=root, venv=venv)) in said
    assert tree(root) == before and tree(venv) == venv_before


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a user and owning folders needs root")
def test_install_writes_user_folders_and_a_unit_that_verifies(tmp_path: Path) -> None:
    root, venv = staging_root(tmp_path)
    media = "/srv/media/films"
    host_users = Path("/etc/passwd").read_text()
    said = install_in_process(root, venv, media)
    [user] = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()
              if line.startswith("appliance:")]
    uid, gid = int(user[2]), int(user[3])
    assert user[5:] == ["/var/lib/appliance", "/usr/sbin/nologin"]
    assert Path("/etc/passwd").read_text() == host_users
    for folder in (media, "/var/lib/appliance/config"):
        stat = (root / folder.lstrip("/")).stat()
        assert (stat.st_uid, stat.st_gid) == (uid, gid), folder
    assert (venv / "bin").stat().st_uid == uid  # the service may update yt-dlp in it
    env = root / "etc/appliance/appliance.env"
    # root's alone: systemd reads it as root; the service's group (the media server's user
    # may be in it) reads no password there
    assert env.stat().st_mode & 0o777 == 0o600
    assert (env.stat().st_uid, env.stat().st_gid) == (0, 0)
    unit = root / "etc/systemd/system/appliance.service"
    text = unit.read_text()
    assert f"ExecStart={venv}/bin/appliance serve" in text
    assert f"WorkingDirectory={UNIT_TEMPLATE.parents[1]}" in text
    assert f"Environment=YTP_DOWNLOAD_PATH={media}" in text
    assert re.findall(r"^ReadWritePaths=(.*)$", text, re.M) == [media, str(venv)]
    checked = verify(unit)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    assert exposure(unit) <= MAX_EXPOSURE
    assert "  sudo systemctl daemon-reload" in said
    assert f"\nThen enable and start it (on the system installed in {root}):" in said
    assert not any(line.startswith("would ") for line in said)
    assert (root / "var/lib/appliance").stat().st_mode & 0o7777 == 0o750
    assert (root / media.lstrip("/")).stat().st_mode & 0o7777 == 0o2775
    assert unit.stat().st_mode & 0o777 == 0o644
    assert not list(unit.parent.glob(".*.new"))  # written aside, then moved in place

    again = install_in_process(root, venv, media)
    assert not any("create" in line for line in again)  # the user and folders are there
    assert "write /etc/systemd/system/appliance.service" in again
    assert not any("keep" in line for line in again)  # the same unit: nothing to keep
    assert env.stat().st_mode & 0o777 == 0o600  # kept as it was


def test_a_machine_without_useradd_is_told_which_package_has_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, venv = staging_root(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InstallError) as refused:
        install_in_process(root, venv, "/srv/media/films")
    assert str(refused.value) == "useradd is not installed (Debian: the passwd package)"


def test_a_unit_the_owner_edited_is_kept_beside_the_new_one(tmp_path: Path) -> None:
    """Installing again (after an upgrade) writes the unit anew: an owner's edit of it is
    kept and said, with where such changes belong."""
    root, venv = staging_root(tmp_path)
    install_in_process(root, venv, "/srv/media/films")
    unit = root / "etc/systemd/system/appliance.service"
    edited = unit.read_text().replace("[Service]\n", "[Service]\nNice=5\n")
    unit.write_text(edited)
    said = install_in_process(root, venv, "/srv/media/films")
    assert ("keep the /etc/systemd/system/appliance.service there, which differs, as "
            "/etc/systemd/system/appliance.service.old (changes of your own belong in a "
            "drop-in: sudo systemctl edit appliance)") in said
    assert (unit.parent / "appliance.service.old").read_text() == edited
    assert "Nice=5" not in unit.read_text()


def test_a_checkout_the_service_could_not_see_is_refused() -> None:
    result = install("--dry-run", "--venv", "/home/pi/appliance/.venv")
    assert result.returncode == 1
    assert "ProtectHome=yes hides /home" in result.stderr


# --- in this process: what the unit says for paths and names that are not plain ----------

def test_paths_with_spaces_and_specifiers_read_back_as_they_are(tmp_path: Path) -> None:
    """systemd splits ExecStart=, ReadWritePaths= and Environment= at spaces and expands
    %-specifiers everywhere: "/srv/My Media" must be one path, "100%" a percent sign."""
    odd = tmp_path / "My Media 100% $HOME;x"
    root, venv = staging_root(odd)
    media = odd / "films"
    text = render_unit(UNIT_TEMPLATE.read_text(), Options(
        root=root, download_path=media, venv=venv, project=odd))
    doubled = lambda path: str(path).replace("%", "%%")  # noqa: E731
    assert f'ExecStart="{doubled(venv)}/bin/appliance" serve\n' in text
    assert f'Environment="YTP_DOWNLOAD_PATH={doubled(media)}"\n' in text
    assert f"WorkingDirectory={doubled(odd)}\n" in text
    assert f"Documentation={doubled(odd.as_uri())}/README.md\n" in text
    assert "%20" in odd.as_uri()
    assert re.findall(r"^ReadWritePaths=(.*)$", text, re.M) == [
        f'"{doubled(media)}"', f'"{doubled(venv)}"']
    unit = tmp_path / "appliance.service"
    unit.write_text(text)
    checked = verify(unit)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")

    plain = render_unit(UNIT_TEMPLATE.read_text(), Options(
        download_path=Path("/srv/media"), venv=Path("/opt/a/.venv"), project=Path("/opt/a")))
    assert re.findall(r"^(?:ExecStart|ReadWritePaths|Environment|User|Group)=(.*)$", plain,
                      re.M) == ["appliance", "appliance",
                                "YTP_CONFIG_PATH=/var/lib/appliance/config",
                                "YTP_TEMP_PATH=/var/lib/appliance/tmp",
                                "YTP_DOWNLOAD_PATH=/srv/media",
                                "/opt/a/.venv/bin/appliance serve", "/srv/media",
                                "/opt/a/.venv"]
    assert plain.count("\n") == UNIT_TEMPLATE.read_text().count("\n")


@pytest.mark.parametrize(("change", "refusal"), [
    ({"download_path": Path("/srv/x\nExecStartPre=/bin/sh -c id")}, "control character"),
    ({"download_path": Path('/srv/"x"')}, "a quote, a backslash"),
    ({"download_path": Path("/srv/x\\y")}, "a quote, a backslash"),
    ({"download_path": Path("media")}, "is not absolute"),
    ({"download_path": Path("/home/pi/media")}, "the download folder is in /home/pi/media"),
    ({"download_path": Path("/srv/../root/media")}, "ProtectHome=yes hides"),
    ({"download_path": Path("/etc")}, "/etc is, contains or lies inside the system folder"),
    ({"download_path": Path("/")}, "the download path cannot be /: "),
    ({"download_path": Path("/var/lib/appliance")}, "contains or lies inside the config"),
    ({"venv": Path("/usr/local")}, "/usr/local is not a virtual environment (no pyvenv.cfg)"),
    ({"user": "root"}, "cannot be the service's user"),
    ({"user": "a b"}, "cannot be the service's user"),
    ({"user": "x\nExecStartPre=/bin/sh"}, "cannot be the service's user"),
    ({"user": "1000"}, "cannot be the service's user"),  # systemd would read a uid
    ({"user": "a" * 33}, "cannot be the service's user"),
], ids=["line-break", "quote", "backslash", "relative", "home", "dotdot-root", "etc",
        "slash", "state", "system-python", "root",
        "space", "user-line-break", "uid", "long"])
def test_what_the_unit_cannot_hold_is_refused_before_anything_is_done(
        tmp_path: Path, change: dict[str, object], refusal: str) -> None:
    root, venv = staging_root(tmp_path)
    options = dataclasses.replace(Options(root=root, venv=venv), **change)
    with pytest.raises(InstallError, match=re.escape(refusal)):
        plan(options)
    plain = {"download_path": Path("/srv/media"), "user": "appliance", "venv": venv}
    assert plan(dataclasses.replace(options, **{  # the same with a plain value is planned
        name: plain[name] for name in change}))


def test_the_unit_starts_once_the_clock_is_set_where_the_box_waits_for_it() -> None:
    """Timers and retention by age read the clock: ordered after time-sync.target (which
    waits for NTP where systemd-time-wait-sync is enabled), never pulling it in."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string(UNIT_TEMPLATE.read_text())
    assert "time-sync.target" in unit["Unit"]["After"].split()
    assert "time-sync.target" not in unit["Unit"].get("Wants", "").split()
