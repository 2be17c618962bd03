"""A red team's try at making a download start a program: the option policy refuses every
option that names one (``--exec``, ``--downloader``, ``--ffmpeg-location``,
``--use-postprocessor``); behind it, the download process's audit hook lets a job start only
ffmpeg, ffprobe, the JavaScript runtime and what Python's ``platform`` runs (``programs``),
compared on their real paths. Each attack is sent as a job straight to a real download process
forked from the zygote, as if it had got past the policy (smuggled options did once)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import Server

from appliance.engine.launcher import ForkedProcess, Launcher
from appliance.engine.options import Context, parse_cli
from appliance.engine.presets import BUILTIN

# A program that leaves a mark when it runs: the proof that it ran.
PLANTED = "#!/bin/sh\ntouch {mark}\n"


@pytest.fixture(scope="module")
def launcher() -> Iterator[Launcher]:
    starts = Launcher()
    yield starts
    starts.close()


class Process:
    """A download process forked from the zygote, spoken to over its pipes."""

    def __init__(self, launcher: Launcher) -> None:
        self.proc = launcher.start(0)
        assert isinstance(self.proc, ForkedProcess)
        assert json.loads(self.proc.stdout.readline())["type"] == "ready"

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job's last message: its result or its error (readline: the process answers
        or ends, and its end is the pipe's end)."""
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            assert line, "the download process ended without an answer"
            message = json.loads(line)
            if message.get("type") in {"result", "error"}:
                return message
            if message.get("type") == "moving":  # it asks, as the engine's answer it waits for
                self.proc.stdin.write(b'{"op": "move"}\n')
                self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) is not None


@pytest.fixture
def process(launcher: Launcher) -> Iterator[Process]:
    proc = Process(launcher)
    yield proc
    proc.close()


class Box:
    """A download folder, its temp folder, and a mark outside that only a planted program
    writes."""

    def __init__(self, base: Path) -> None:
        self.root, self.temp = base / "downloads", base / "tmp"
        self.planted = base / "planted"
        for folder in (self.root, self.temp, self.planted):
            folder.mkdir()
        self.mark = base / "mark"

    def plant(self, name: str) -> Path:
        script = self.planted / name
        script.write_text(PLANTED.format(mark=self.mark))
        script.chmod(0o755)
        return script

    def job(self, url: str, args: list[str], template: str = "%(id)s.%(ext)s"
            ) -> dict[str, Any]:
        return {"op": "download", "job": "j1", "url": url, "args": args,
                "root": str(self.root), "home": str(self.root), "temp": str(self.temp),
                "template": template, "default_template": "%(id)s.%(ext)s"}


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def attacks(box: Box) -> dict[str, list[str]]:
    return {
        "exec": ["--exec", f"touch {box.mark}"],
        "exec-postprocessor": ["--use-postprocessor", f"Exec:exec_cmd=touch {box.mark}"],
        "downloader": ["--downloader", str(box.plant("curl"))],
        "ffmpeg-location": ["--ffmpeg-location", str(box.plant("ffmpeg").parent),
                            "--remux-video", "mkv"],
    }


REFUSED = {"exec": "'/bin/sh'", "exec-postprocessor": "'/bin/sh'", "downloader": "curl'",
           "ffmpeg-location": "ffmpeg'"}


@pytest.mark.parametrize("attack", sorted(REFUSED))
def test_a_job_starts_no_program_but_the_allowed_ones(
        process: Process, box: Box, origin: MediaOrigin, attack: str) -> None:
    answer = process.run(box.job(origin.clip_url, attacks(box)[attack]))
    assert answer["type"] == "error", answer
    assert answer["message"].startswith("Refused to start program "), answer
    assert REFUSED[attack] in answer["message"].split(":")[0], answer
    assert "only ffmpeg, ffprobe" in answer["message"], answer
    assert not box.mark.exists()
    # the same process goes on, and runs the real ffmpeg for the next job
    done = process.run(box.job(origin.clip_url, ["--remux-video", "mkv"]))
    assert done["type"] == "result", done
    assert Path(done["filepath"]).suffix == ".mkv"
    assert not box.mark.exists()


@pytest.mark.parametrize("preset", BUILTIN, ids=[p["name"] for p in BUILTIN])
def test_every_shipped_preset_downloads_with_the_programs_it_needs(
        process: Process, box: Box, origin: MediaOrigin, preset: dict[str, str]) -> None:
    args = parse_cli(preset["cli"], context=Context.BUILTIN_PRESET).args
    done = process.run(box.job(origin.watch_url("clip"), args,
                               preset.get("template", "%(id)s.%(ext)s")))
    assert done["type"] == "result", done
    assert Path(done["filepath"]).is_relative_to(box.root)
    assert Path(done["filepath"]).stat().st_size > 0


def test_ffmpeg_reads_no_file_outside_the_folders(
        process: Process, box: Box, origin: MediaOrigin, tmp_path: Path) -> None:
    """A site's info whose stream is a live one ffmpeg downloads: yt-dlp hands ffmpeg its URL
    as it is, and a file: URL made it copy a file outside into the download folder (yt-dlp's
    own requests refuse file: URLs; ffmpeg is not asked)."""
    victim = tmp_path / "victim.mp4"
    victim.write_bytes(origin.path_for(origin.clip_url).read_bytes())
    job = box.job(origin.clip_url, [])
    job["info"] = {"id": "live", "title": "live", "extractor": "generic",
                   "extractor_key": "Generic", "webpage_url": origin.clip_url,
                   "url": f"file://{victim}", "ext": "mp4", "protocol": "m3u8",
                   "is_live": True}
    answer = process.run(job)
    assert answer["type"] == "error", answer
    assert "outside the download folder" in answer["message"], answer
    assert str(victim) in answer["message"], answer
    assert [p for p in box.root.rglob("*") if p.is_file()] == []


PLUGIN = """
import subprocess
from yt_dlp.postprocessor.common import PostProcessor

class MarkPP(PostProcessor):
    def run(self, info):
        subprocess.run(["touch", {mark!r}], check=True)
        return [], info
"""


def test_a_plugin_s_post_processor_starts_no_program(
        box: Box, origin: MediaOrigin, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin in yt-dlp's plugin folder (~/.config/yt-dlp/plugins), loaded when the zygote
    warms up, whose post-processor a job names (--use-postprocessor): its Python code runs in
    the download process, and the programs it starts are checked all the same."""
    plugins = tmp_path / "config" / "yt-dlp" / "plugins" / "mark" / "yt_dlp_plugins"
    (plugins / "postprocessor").mkdir(parents=True)
    (plugins / "postprocessor" / "mark.py").write_text(PLUGIN.format(mark=str(box.mark)))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    starts = Launcher()  # a zygote of its own, which finds the plugin
    try:
        process = Process(starts)
        answer = process.run(box.job(origin.clip_url, ["--use-postprocessor", "Mark"]))
        process.close()
    finally:
        starts.close()
    assert answer["type"] == "error", answer
    assert answer["message"].startswith("Refused to start program 'touch'"), answer
    assert not box.mark.exists()


def test_ffmpeg_named_by_a_link_to_it_runs(process: Process, box: Box,
                                           origin: MediaOrigin) -> None:
    """Compared on the real path: a link to the real ffmpeg is ffmpeg."""
    for name in ("ffmpeg", "ffprobe"):
        real = subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        (box.planted / name).symlink_to(os.path.realpath(real))
    done = process.run(box.job(origin.clip_url, [
        "--ffmpeg-location", str(box.planted), "--remux-video", "mkv"]))
    assert done["type"] == "result", done
    assert Path(done["filepath"]).suffix == ".mkv"


# Each way Python starts a program, in a process of its own with the hook installed (a hook is
# never removed): inside a job and after it.
PROBE = r"""
import json, os, pty, shutil, subprocess, sys
from appliance.engine.containment import Containment, contained, guard_writes
home, temp, planted = sys.argv[1:4]
guard_writes()
results = {}
def attempt(name, action):
    try:
        action()
        results[name] = "done"
    except PermissionError as exc:
        results[name] = ("refused" if "may run in a download" in str(exc) else
                         "outside" if "outside the download folder" in str(exc) else repr(exc))
    except FileNotFoundError:
        results[name] = "missing"
def fork():
    if os.fork() == 0:
        os._exit(0)
    os.wait()
def forkpty():
    pid, fd = pty.fork()
    if pid == 0:
        os._exit(0)
    os.close(fd)
    os.waitpid(pid, 0)
run = lambda *argv, **kw: subprocess.run(list(argv), capture_output=True, check=True, **kw)
probe = lambda *argv: subprocess.run(list(argv), capture_output=True)  # it may fail: it ran
inside, outside = os.path.join(home, "in.txt"), os.path.join(planted, "ffmpeg")
with contained(Containment(home, temp)) as box:
    attempt("ffmpeg", lambda: run("ffmpeg", "-version"))
    attempt("ffprobe", lambda: run("ffprobe", "-version"))
    attempt("uname", lambda: run("uname", "-p"))
    attempt("AtomicParsley", lambda: run("AtomicParsley"))
    attempt("deno", lambda: run(os.path.join(os.path.dirname(sys.executable), "deno"),
                                "--version"))
    attempt("not installed", lambda: run("no-such-program-here"))
    attempt("true", lambda: run("true"))
    attempt("planted as ffmpeg on PATH",
            lambda: run("ffmpeg", env={**os.environ, "PATH": planted}))
    attempt("planted by path", lambda: run(os.path.join(planted, "ffmpeg")))
    attempt("relative to cwd", lambda: run("./ffmpeg", cwd=planted))
    attempt("shell", lambda: run("ffmpeg -version", shell=True))
    attempt("os.system", lambda: os.system("true"))
    attempt("posix_spawn", lambda: os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0))
    attempt("posix_spawnp", lambda: os.waitpid(os.posix_spawnp("true", ["true"], {}), 0))
    attempt("fork", fork)
    attempt("forkpty", forkpty)
    attempt("execv", lambda: os.execv("/bin/true", ["true"]))
    open(inside, "w").close()
    attempt("ffprobe inside", lambda: probe("ffprobe", "file:" + inside))
    attempt("ffprobe outside", lambda: probe("ffprobe", "file:" + outside))
    attempt("ffmpeg writing outside", lambda: probe("ffmpeg", "-i", "file:" + inside,
                                                    "file:" + outside + ".mp4"))
    attempt("ffmpeg from a URL", lambda: probe("ffmpeg", "-i", "http://127.0.0.1:9/x"))
    attempt("ffmpeg from a file URL", lambda: probe("ffmpeg", "-i", "file://" + outside))
    attempt("ffmpeg from a protocol", lambda: probe("ffmpeg", "-i", "concat:" + outside))
    attempt("ffmpeg from a wrapped file URL",
            lambda: probe("ffmpeg", "-i", "crypto+file://" + outside))
    attempt("ffmpeg from a relative path", lambda: probe("ffmpeg", "-i", "in.txt"))
    attempt("ffprobe inside as a file URL", lambda: probe("ffprobe", "file://" + inside))
    attempt("ffprobe of a name in its working directory", lambda: subprocess.run(
        ["ffprobe", "file:in.txt"], capture_output=True, cwd=home))
    # ffmpeg opens what follows "file:" as it is: "file://etc/passwd" is //etc/passwd, the
    # root's etc/passwd, never etc/passwd in the working directory
    attempt("ffprobe of a file URL of two slashes", lambda: subprocess.run(
        ["ffprobe", "file:/" + outside], capture_output=True, cwd=home))
    attempt("ffprobe inside by a file URL of two slashes",
            lambda: probe("ffprobe", "file:/" + inside))
    attempt("ffmpeg attaching a file outside", lambda: probe(
        "ffmpeg", "-i", "file:" + inside, "-attach", outside, "file:" + inside + ".mkv"))
    attempt("ffmpeg from a URL of two lines",
            lambda: probe("ffmpeg", "-i", "http://127.0.0.1:9/x\n/y"))
    attempt("atomicparsley", lambda: run("atomicparsley"))  # (its name on some systems)
    # subprocess looks a bare name up on PATH only; os.posix_spawn runs the working
    # directory's file of that name
    attempt("ffmpeg in a folder that holds another",
            lambda: run("ffmpeg", "-version", cwd=planted))
    attempt("ffmpeg by a path from its own folder", lambda: run(
        "./ffmpeg", "-version", cwd=os.path.dirname(shutil.which("ffmpeg"))))
    def spawn_in(folder):
        os.chdir(folder)
        try:
            os.waitpid(os.posix_spawn("ffmpeg", ["ffmpeg", "-version"], dict(os.environ)), 0)
        finally:
            os.chdir(home)
    attempt("posix_spawn of a name in the working directory", lambda: spawn_in(planted))
    def execv_bare():  # os.execv looks a bare name up in the working directory only
        path, os.environ["PATH"] = os.environ["PATH"], planted
        try:
            os.execv("ffmpeg", ["ffmpeg", "-version"])
        finally:
            os.environ["PATH"] = path
    attempt("execv of a name on PATH only", execv_bare)
    try:
        run("no-such-program-here")
    except FileNotFoundError as exc:
        missing = [exc.errno, exc.strerror, exc.filename]
    try:
        run("true")
    except PermissionError as exc:
        refusal = [exc.errno, exc.strerror]
    refused = (len(box.refused_programs), len(box.refused))
attempt("after the job", lambda: run("true"))
print(json.dumps({"results": results, "refused": refused, "missing": missing,
                  "refusal": refusal}))
"""


def probe(box: Box, path: str) -> subprocess.CompletedProcess[str]:
    """PROBE run in a process of its own whose PATH is ``path``."""
    box.plant("ffmpeg")
    return subprocess.run([sys.executable, "-I", "-c", PROBE, str(box.root), str(box.temp),
                           str(box.planted)], capture_output=True, text=True, timeout=120,
                          check=True, env={**os.environ, "PATH": path})


def test_each_way_to_start_a_program_is_checked_during_a_job(box: Box, tmp_path: Path) -> None:
    # AtomicParsley where it is installed (it is not here): one on PATH when the process starts
    installed = tmp_path / "installed"
    installed.mkdir()
    shutil.copy("/bin/true", installed / "AtomicParsley")  # (a link would allow true itself)
    path = f"{os.environ['PATH']}{os.pathsep}{installed}"
    done = probe(box, path)
    report = json.loads(done.stdout)
    assert report["results"] == {
        "ffmpeg": "done", "ffprobe": "done", "uname": "done", "deno": "done",
        "AtomicParsley": "done",
        "not installed": "missing",
        "true": "refused", "planted as ffmpeg on PATH": "refused",
        "planted by path": "refused", "relative to cwd": "refused", "shell": "refused",
        "os.system": "refused", "posix_spawn": "refused", "posix_spawnp": "refused",
        "fork": "refused", "forkpty": "refused", "execv": "refused", "after the job": "done",
        "ffprobe inside": "done", "ffprobe outside": "outside",
        "ffmpeg writing outside": "outside", "ffmpeg from a URL": "done",
        "ffmpeg from a file URL": "outside", "ffmpeg from a protocol": "outside",
        "ffmpeg from a wrapped file URL": "outside",
        "ffmpeg from a relative path": "outside",  # (the process's working directory)
        "ffprobe inside as a file URL": "done", "ffmpeg attaching a file outside": "outside",
        "ffmpeg from a URL of two lines": "done", "atomicparsley": "missing",
        "ffmpeg by a path from its own folder": "done",
        "ffprobe of a name in its working directory": "done",
        "ffprobe of a file URL of two slashes": "outside",
        "ffprobe inside by a file URL of two slashes": "done",
        "execv of a name on PATH only": "missing",
        "ffmpeg in a folder that holds another": "done",
        "posix_spawn of a name in the working directory": "refused",
    }
    assert report["refused"] == [14, 8]
    assert not box.mark.exists()
    # as exec says it: yt-dlp's probes, and a plugin, read a program that is not installed
    assert report["missing"] == [errno.ENOENT, os.strerror(errno.ENOENT),
                                 "no-such-program-here"]
    # the warnings in the log, each naming every program a download may start
    names = [name for name in ("ffmpeg", "ffprobe", "AtomicParsley", "uname", "file")
             if shutil.which(name, path=path)]
    allowed = f"only {', '.join(names)} and deno may run in a download."
    # a refused start is exec's refusal (EPERM), in words
    assert report["refusal"] == [errno.EPERM, f"Refused to start program 'true': {allowed}"]
    lines = done.stderr.splitlines()
    assert f"Refused to start program 'true': {allowed}" in lines, done.stderr
    assert f"Refused to start program '/bin/sh': {allowed}" in lines, done.stderr
    assert f"Refused to fork the download process: {allowed}" in lines, done.stderr


def test_ffmpeg_found_on_path_through_a_link_runs(box: Box, tmp_path: Path) -> None:
    """ffmpeg as a static build is often installed as a link on PATH (``/usr/local/bin/ffmpeg``
    to where it was unpacked): the program allowed is the link's target, which is what runs.
    AtomicParsley is installed as ``atomicparsley`` on some systems."""
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        (linked / name).symlink_to(os.path.realpath(shutil.which(name) or name))
    shutil.copy("/bin/true", linked / "atomicparsley")
    results = json.loads(probe(box, f"{linked}{os.pathsep}{os.environ['PATH']}").stdout)[
        "results"]
    assert (results["ffmpeg"], results["ffprobe"], results["atomicparsley"]) == (
        "done", "done", "done")
    assert results["planted as ffmpeg on PATH"] == "refused"


def test_an_item_whose_option_starts_another_program_fails_saying_so(
        make_server: Callable[..., Server], origin: MediaOrigin, box: Box) -> None:
    """Through the real service, with an option the policy lets through: --bidi-workaround
    runs bidiv (or fribidi) where one is installed; a program of that name on the service's
    PATH is not one a download may start."""
    box.plant("bidiv")
    server = make_server(PATH=f"{box.planted}{os.pathsep}{os.environ['PATH']}")
    [added] = server.post("/api/history", {"url": origin.clip_url,
                                           "cli": "--bidi-workaround"}).json()
    item = server.wait_status(added["id"], {"finished", "error", "skip"}, timeout=90)
    assert item["status"] == "error", item
    assert item["error"].startswith("Refused to start program 'bidiv': only ffmpeg"), item
    assert not box.mark.exists()
    # the journal's line says which part of the service refused it
    assert f"appliance.engine.programs: {item['error']}" in server.log().splitlines()
