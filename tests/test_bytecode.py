"""The service's interpreters run optimized (-OO) with their bytecode cached in the virtual
environment's own folder (appliance/bytecode.py): the real service's processes, the zygote
that writes what it warms up but never what a job imports, the re-exec that happens once,
and a cache folder others could write that is never used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yt_dlp
from support.server import Server, wait_for

from appliance import bytecode
from appliance.engine import url_matching, ytdlp_tuning

VENV_CACHE = Path(sys.prefix).resolve() / bytecode.FOLDER
TAG = sys.implementation.cache_tag


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]


def cached(prefix: Path, source: Path) -> Path:
    return prefix / str(source.parent).lstrip("/") / f"{source.stem}.{TAG}.opt-2.pyc"


def test_the_service_runs_optimized_from_the_venvs_cache(
        make_server: Callable[..., Server]) -> None:
    server = make_server()
    master, worker = server.pids()[:2]
    assert master == server.proc.pid  # the re-exec kept the process (systemd's main pid)
    wanted = ["-OO", "-X", f"pycache_prefix={VENV_CACHE}"]
    for pid in (master, worker):
        # gunicorn writes a title over the command line where setproctitle is installed
        # (mutmut brings it: bench/mutation.sh); the cache's files below say the same.
        if not cmdline(pid)[0].startswith("gunicorn: "):
            assert cmdline(pid)[1:4] == wanted, cmdline(pid)
    [zygote] = wait_for(lambda: [p for p in server.pids() if "--zygote" in cmdline(p)],
                        timeout=60, message="the zygote")
    assert cmdline(zygote)[1:5] == ["-I", *wanted], cmdline(zygote)
    # The mark of the one re-exec is not passed on.
    assert bytecode.REEXEC_MARK not in Path(f"/proc/{zygote}/environ").read_text()
    server_module = Path(bytecode.__file__).with_name("server.py")
    assert cached(VENV_CACHE, server_module).is_file()


def test_the_zygote_caches_its_warm_up_but_no_job_import(tmp_path: Path) -> None:
    prefix = tmp_path / "cache"
    extractors = Path(yt_dlp.__file__).parent / "extractor"
    done = subprocess.run(
        [sys.executable, "-I", "-OO", "-X", f"pycache_prefix={prefix}", "-c",
         "import sys; from appliance.engine import child; child.prepare();"
         "import yt_dlp.extractor.vimeo; print(sys.dont_write_bytecode)"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "True"
    assert cached(prefix, extractors / "lazy_extractors.py").is_file()  # warm-up's import
    assert not cached(prefix, extractors / "vimeo.py").exists()  # as in a job
    # What it read of yt-dlp's URL patterns, for the next zygote (test_url_matching.py): in
    # the environment's own folder (the service's prefix), whatever prefix it runs with.
    kept = VENV_CACHE / ytdlp_tuning.URL_READINGS
    assert json.loads(kept.read_bytes())["fingerprint"] == url_matching.fingerprint()
    assert kept.stat().st_mode & 0o777 == 0o600


def test_serve_is_run_again_optimized_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bytecode.REEXEC_MARK, raising=False)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    command = bytecode.reexec_command(["serve", "--port", "1"])
    assert command == [sys.executable, "-OO", "-X", f"pycache_prefix={VENV_CACHE}", "-m",
                       "appliance", "serve", "--port", "1"]
    assert os.environ[bytecode.REEXEC_MARK] == "1"
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ  # the cache is written
    # The process run again (the mark set) never runs a third.
    assert bytecode.reexec_command(["serve"]) is None
    assert bytecode.REEXEC_MARK not in os.environ


def test_serve_runs_itself_again_before_it_imports_the_service(tmp_path: Path) -> None:
    """The first interpreter of ``appliance serve`` is replaced at once: the command line's
    module and what it imports (0.19 s of CPU here) are the optimized one's to import."""
    env = {**os.environ, "YTP_CONFIG_PATH": str(tmp_path / "config"), "YTP_PORT": "x"}
    env.pop(bytecode.REEXEC_MARK, None)
    # -X importtime is the first interpreter's own: the one run again has the service's flags.
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "appliance", "serve"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    first = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:")]
    assert "appliance.bytecode" in first
    assert not {"appliance.cli", "appliance.config", "importlib.metadata"} & set(first)
    # The one run again read the settings, and said what is wrong with them.
    assert done.returncode == 2
    assert "bad setting: YTP_PORT" in done.stderr


def test_the_processes_it_starts_run_as_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the launcher passes the zygote and download processes: this interpreter's own
    optimization and cache (read in the test process, which runs neither)."""
    monkeypatch.setattr(sys, "flags", type("Flags", (), {"optimize": 2})())
    monkeypatch.setattr(sys, "pycache_prefix", "/srv/cache")
    assert bytecode.inherited() == ["-OO", "-X", "pycache_prefix=/srv/cache"]
    monkeypatch.setattr(sys, "flags", type("Flags", (), {"optimize": 0})())
    monkeypatch.setattr(sys, "pycache_prefix", None)
    assert bytecode.inherited() == []


def fake_venv(root: Path) -> Path:
    root.mkdir()
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root


def test_a_cache_others_may_write_is_not_used(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    venv = fake_venv(tmp_path / "venv")
    folder = bytecode.cache_folder(venv)
    assert folder == venv.resolve() / bytecode.FOLDER
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)
    assert bytecode.cache_folder(venv) is None
    assert "not used" in caplog.text
    folder.rmdir()
    folder.symlink_to(tmp_path)  # a link to a folder: not the folder itself
    assert bytecode.cache_folder(venv) is None


def test_no_cache_outside_a_venv_or_where_none_was_made(tmp_path: Path) -> None:
    assert bytecode.cache_folder(tmp_path) is None
    assert not (tmp_path / bytecode.FOLDER).exists()
    venv = fake_venv(tmp_path / "venv")
    assert bytecode.cache_folder(venv, make=False) is None
    assert not (venv / bytecode.FOLDER).exists()
    assert bytecode.flags(None) == []


def test_every_ytdlp_module_is_compiled_into_the_cache() -> None:
    assert bytecode.cache_folder() == VENV_CACHE
    vimeo = cached(VENV_CACHE, Path(yt_dlp.__file__).parent / "extractor" / "vimeo.py")
    vimeo.unlink(missing_ok=True)
    bytecode.compile_ytdlp()
    assert vimeo.is_file()


def interpreter(tmp_path: Path, program: str) -> Path:
    """A virtual environment's ``python`` that runs ``program`` whatever it is asked."""
    python = fake_venv(tmp_path / "venv") / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f"#!{sys.executable}\n{program}\n")
    python.chmod(0o755)
    return python


@pytest.mark.parametrize(("said", "expected"), [
    ("print('compiling', flush=True); sys.stderr.write('SyntaxError: in vimeo.py\\n')",
     "SyntaxError: in vimeo.py"),  # the last line of what went wrong, not the progress
    ("print('Listing yt_dlp ...')", "Listing yt_dlp ..."),  # only stdout: its last line
    ("pass", "exit 3"),  # nothing said: the exit code
])
def test_a_compile_that_fails_is_said_by_its_last_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, said: str, expected: str) -> None:
    """An interpreter whose compile fails (here, one that says what it says and exits 3): a
    warning names why, and the service goes on (a job compiles its module itself)."""
    bytecode.compile_ytdlp(interpreter(tmp_path, f"import sys\n{said}\nsys.exit(3)"),
                           make=True)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "appliance.bytecode"]
    assert warning == (f"yt-dlp's bytecode was not all compiled ({expected}): a job compiles "
                       "its site's module itself")


def test_a_compile_that_cannot_run_is_said(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """No interpreter where the environment names one (removed, or not executable): a
    warning says so, and the service goes on."""
    venv = fake_venv(tmp_path / "venv")
    python = venv / "bin" / "python"
    bytecode.compile_ytdlp(python, make=True)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "appliance.bytecode"]
    assert warning.startswith("yt-dlp's bytecode was not compiled ([Errno 2] No such file")
    assert warning.endswith(f"{python}'): a job compiles its site's module itself")


def test_a_compile_that_hangs_is_given_up_and_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreter that never ends (a disk that hangs, a stopped process) holds the update
    no longer than the compile's bound: a warning says so, and the service goes on."""
    monkeypatch.setattr(bytecode, "COMPILE_TIMEOUT", 1.0)
    bytecode.compile_ytdlp(interpreter(tmp_path, "import signal\nsignal.pause()"), make=True)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "appliance.bytecode"]
    assert warning.startswith("yt-dlp's bytecode was not compiled (Command ")
    assert warning.endswith("timed out after 1.0 seconds): a job compiles its site's module "
                            "itself")


def test_a_cache_that_cannot_be_made_is_said(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    venv = fake_venv(tmp_path / "venv")
    (venv / bytecode.FOLDER).write_text("a file where the folder goes")
    assert bytecode.cache_folder(venv) is None
    [warning] = [r.getMessage() for r in caplog.records if r.name == "appliance.bytecode"]
    assert warning == (f"bytecode cache {venv.resolve() / bytecode.FOLDER} cannot be made "
                       f"([Errno 17] File exists: '{venv.resolve() / bytecode.FOLDER}'): "
                       "interpreters run unoptimized")
