"""Every file a download writes lands inside the download folder (or its temp folder), decided
on the final, rendered path: the attacks of issue 9 §1, each through the download process's
job runner (in this process, over a real pipe) and through the real service's entry points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for
from websockets.sync.client import connect

from appliance.engine import child
from appliance.engine.containment import (
    STEM_MAX,
    ContainedYoutubeDL,
    Containment,
    OutsideDownloadFolder,
    WriteRefused,
    _audit,
    cache_dir,
    contained,
    fit_name,
)
from appliance.engine.options import check_template
from appliance.engine.presets import BUILTIN
from appliance.errors import AppError


class Folders:
    """A sandbox: the download and temp folders, and what lies around them."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "box" / "downloads"
        self.temp = base / "box" / "tmp" / "job"
        self.home = base / "fakehome"  # $HOME and ~ of the job
        for folder in (self.root, self.temp, self.home):
            folder.mkdir(parents=True)

    def job(self, url: str, template: str = "", args: list[str] | None = None,
            home: Path | None = None) -> dict[str, Any]:
        return {"op": "download", "job": "j1", "url": url, "args": args or [],
                "root": str(self.root), "home": str(home or self.root),
                "temp": str(self.temp), "template": template,
                "default_template": "%(title)s.%(ext)s"}

    def files_outside(self) -> list[Path]:
        inside = (self.root, self.temp.parent)
        return [path for path in self.base.rglob("*")
                if not path.is_dir() and not any(path.is_relative_to(i) for i in inside)]

    def files_inside(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if not p.is_dir())


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Folders:
    box = Folders(tmp_path)
    monkeypatch.setenv("HOME", str(box.home))
    monkeypatch.setenv("ESCAPE", str(tmp_path))
    return box


class Pipe:
    """The child's message channel, drained on close."""

    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.channel = child.Channel(write_fd)
        self.reader = os.fdopen(read_fd, "rb")

    def close(self) -> None:
        self.channel._out.close()
        self.reader.read()
        self.reader.close()


def run(job: dict[str, Any]) -> dict[str, Any]:
    pipe = Pipe()
    try:
        return child.run_download(job, pipe.channel)
    finally:
        pipe.close()


REFUSED = [
    # An absolute path with a colon: not a TYPE: prefix for yt-dlp, a whole path.
    pytest.param("{base}/esc1:x.%(ext)s", [], id="absolute-with-colon"),
    pytest.param("{base}/esc1.%(ext)s", [], id="absolute"),
    pytest.param("-", [], id="stdout"),
    # The template is fine; the info.json template of -o TYPE: is not.
    pytest.param("x.%(ext)s", ["--write-info-json", "-o", "infojson:{base}/esc4"],
                 id="typed-absolute"),
]


@pytest.mark.parametrize(("template", "args"), REFUSED)
def test_an_output_path_outside_is_refused_before_a_file_is_opened(
        folders: Folders, origin: MediaOrigin, template: str, args: list[str]) -> None:
    base = str(folders.base)
    job = folders.job(origin.clip_url, template.format(base=base),
                      [a.format(base=base) for a in args])
    with pytest.raises(OutsideDownloadFolder, match=r"Refused: the .* (outside the download "
                                                    r"folder|standard output)"):
        run(job)
    assert folders.files_outside() == []
    assert folders.files_inside() == []


RENDERED_INSIDE = [
    # ".." made at render time: a default, the N/A placeholder, the site's metadata.
    pytest.param("%(nonexist|..)s/%(nonexist|..)s/esc2.%(ext)s", [], {},
                 ["_/_/esc2.mp4"], id="default-dotdot"),
    pytest.param("%(x)s/%(x)s/esc5.%(ext)s", ["--output-na-placeholder", ".."], {},
                 ["_/_/esc5.mp4"], id="na-placeholder"),
    pytest.param("%(uploader)s/%(title)s.%(ext)s", [], {"uploader": "..", "title": "."},
                 ["_/..mp4"], id="metadata-dotdot"),
    # ".." and spaces past a name's limit: cut, the spaces went and ".." was left.
    pytest.param("%(uploader)s/%(title)s.%(ext)s", [], {"uploader": ".." + " " * 300},
                 ["_/Watch short.mp4"], id="metadata-cut-to-dotdot"),
    # No $VARIABLE or ~ is expanded: they are names.
    pytest.param("$HOME/esc3.%(ext)s", [], {}, ["$HOME/esc3.mp4"], id="env-home"),
    pytest.param("${ESCAPE}/esc3.%(ext)s", [], {}, ["${ESCAPE}/esc3.mp4"], id="env-braces"),
    pytest.param("~/esc3.%(ext)s", [], {}, ["~/esc3.mp4"], id="tilde"),
    pytest.param("x.%(ext)s", ["--write-info-json", "-o", "infojson:${ESCAPE}/x"], {},
                 ["${ESCAPE}/x.info.json", "x.mp4"], id="typed-env"),
]


@pytest.mark.parametrize(("template", "args", "meta", "expected"), RENDERED_INSIDE)
def test_what_renders_to_a_way_out_is_named_inside(
        folders: Folders, origin: MediaOrigin, template: str, args: list[str],
        meta: dict[str, str], expected: list[str]) -> None:
    url = origin.watch_url("short", **meta) if meta else origin.clip_url
    result = run(folders.job(url, template, args))
    assert Path(result["filepath"]).is_relative_to(folders.root)
    assert folders.files_outside() == []
    assert folders.files_inside() == expected


def test_a_template_absolute_once_rendered_is_refused_in_ytdlps_cache(
        folders: Folders, origin: MediaOrigin) -> None:
    """Its first field renders empty: the text is relative, the rendered path absolute;
    yt-dlp's cache, where yt-dlp may write, took the download. The policy says so when the
    template is given; one it never saw (saved by an older version) is refused at download."""
    cache = Path(cache_dir({}))
    template = f"%(nonexist|)s{cache}/esc7.%(ext)s"
    with pytest.raises(AppError, match="absolute path when its first fields are empty"):
        check_template(template)
    with pytest.raises(OutsideDownloadFolder, match="outside the download folder"):
        run(folders.job(origin.clip_url, template))
    assert not cache.exists() or list(cache.rglob("esc7*")) == []


def test_no_cache_is_written_where_caching_is_off() -> None:
    assert cache_dir({}) and cache_dir({"cachedir": False}) == ""


def test_a_file_of_the_job_is_never_named_in_ytdlps_cache(tmp_path: Path) -> None:
    home, temp, cache = (str(tmp_path / name) for name in ("home", "temp", "cache"))
    box = Containment(home, temp, extra=(cache,))
    assert box.allows(f"{cache}/x") and box.check(f"{home}/x", "media") == f"{home}/x"
    with pytest.raises(OutsideDownloadFolder):
        box.check(f"{cache}/x", "media")


def test_a_name_made_by_a_template_of_its_own_is_checked_too(tmp_path: Path) -> None:
    """yt-dlp names some files by a template given with the call (--print-to-file's), not by
    the job's; that name is the one checked."""
    home = str(tmp_path / "home")
    ydl = ContainedYoutubeDL({"paths": {"home": home}}, auto_init=False)
    ydl.containment = Containment(home, str(tmp_path / "temp"))
    info = {"id": "x", "title": "t", "ext": "mp4"}
    assert ydl.prepare_filename(info, outtmpl="in/%(id)s.txt") == f"{home}/in/x.txt"
    with pytest.raises(OutsideDownloadFolder):
        ydl.prepare_filename(info, outtmpl=f"{tmp_path}/%(id)s.txt")


def test_names_longer_than_the_file_system_takes_are_cut_keeping_one_stem(
        folders: Folders, origin: MediaOrigin) -> None:
    """A title or uploader of 100 CJK characters is 300 bytes: yt-dlp failed the download on
    it (ENAMETOOLONG). The names are cut; the media file and its sidecar share their stem."""
    url = origin.watch_url("short", title="音" * 100, uploader="上" * 100)
    result = run(folders.job(url, "%(uploader)s/%(title)s [%(id)s].%(ext)s",
                             ["--write-info-json"]))
    assert Path(result["filepath"]).is_file()
    assert folders.files_outside() == []
    [info, media] = folders.files_inside()
    folder, _, media_name = media.partition("/")
    assert folder == "上" * 85  # 255 bytes
    assert media_name.endswith(".mp4") and info == f"{folder}/{media_name[:-4]}.info.json"
    assert media_name.startswith("音" * 63) and len(media_name.encode()) <= STEM_MAX + 4


@pytest.mark.parametrize(("name", "ext", "expected"), [
    ("short [id].mp4", "mp4", "short [id].mp4"),
    ("..", "", "_"),
    ("a" * 300 + ".x", "x", "a" * STEM_MAX + ".x"),  # a one-letter extension is kept too
    (".." + " " * 300, "", "_"),  # cut to ".." once the spaces are stripped
    ("." + " " * 300, "", "_"),
    ("a" * 300 + ".info.json", "info.json", "a" * STEM_MAX + ".info.json"),
    ("a" * 300 + ".mp4", "webm", "a" * STEM_MAX),  # not its extension: cut as a whole
    # the longest extension kept whole (EXT_MAX), and one letter more: cut as a whole
    ("a" * 300 + "." + "e" * 16, "e" * 16, "a" * STEM_MAX + "." + "e" * 16),
    ("a" * 300 + "." + "e" * 17, "e" * 17, "a" * STEM_MAX),
    ("a." + "e" * 300, "e" * 300, "a." + "e" * (STEM_MAX - 2)),  # a site's "extension"
    ("é" * 100 + " .mp4", "mp4", "é" * (STEM_MAX // 2) + ".mp4"),  # never half a character
    (" " * 300 + ".mp4", "mp4", "_.mp4"),  # nothing left of the cut stem
    # a site's lone surrogates: no file name can hold them, nor any record
    ("caf\udce9\ud800 [x].mp4", "mp4", "caf\ufffd\ufffd [x].mp4"),
])
def test_a_rendered_name_is_cut_to_its_limit(name: str, ext: str, expected: str) -> None:
    assert fit_name(name, STEM_MAX, ext) == expected


def test_the_tv_preset_keeps_an_uploader_called_dotdot_inside(
        folders: Folders, origin: MediaOrigin) -> None:
    """No hostile input at all: the shipped preset, and a site that says its uploader is '..'."""
    [tv] = [p for p in BUILTIN if p["name"] == "media-server-tv"]
    result = run(folders.job(origin.watch_url("short", uploader=".."), tv["template"]))
    assert Path(result["filepath"]).parent.parent.parent == folders.root
    assert folders.files_outside() == []
    assert folders.files_inside()[0].startswith("_/Season 2024/.. - S2024E0304 - ")


def test_a_symlink_in_the_download_folder_does_not_lead_out(
        folders: Folders, origin: MediaOrigin) -> None:
    outside = folders.base / "elsewhere"
    outside.mkdir()
    (folders.root / "link").symlink_to(outside)
    with pytest.raises(OutsideDownloadFolder):
        run(folders.job(origin.clip_url, "link/x.%(ext)s"))
    # a folder (item or preset) that is such a symlink: refused as the job's home
    with pytest.raises(OutsideDownloadFolder, match="leads outside the download folder"):
        run(folders.job(origin.clip_url, "x.%(ext)s", home=folders.root / "link"))
    assert list(outside.iterdir()) == []


# --- the audit hook, in a real process ---------------------------------------------------

HOOK_PROBE = r"""
import json, os, shutil, sys
from appliance.engine.containment import Containment, contained, guard_writes
home, temp, outside = sys.argv[1:4]
guard_writes()
results = {}
def attempt(name, action):
    try:
        action()
        results[name] = "done"
    except PermissionError as exc:
        results[name] = "refused" if "outside the download folder" in str(exc) else repr(exc)
with contained(Containment(home, temp)) as box:
    attempt("write inside", lambda: open(os.path.join(home, "a"), "w").close())
    attempt("write temp", lambda: open(os.path.join(temp, "b"), "wb").close())
    attempt("read outside", lambda: open(sys.executable, "rb").close())
    attempt("devnull", lambda: open(os.devnull, "w").close())
    attempt("write outside", lambda: open(os.path.join(outside, "c"), "w").close())
    attempt("os.open outside",
            lambda: os.open(os.path.join(outside, "d"), os.O_CREAT | os.O_WRONLY))
    attempt("rename out", lambda: os.replace(os.path.join(home, "a"), os.path.join(outside, "a")))
    attempt("mkdir outside", lambda: os.mkdir(os.path.join(outside, "e")))
    attempt("symlink outside", lambda: os.symlink(home, os.path.join(outside, "f")))
    attempt("copy outside",
            lambda: shutil.copyfile(os.path.join(home, "a"), os.path.join(outside, "g")))
    attempt("remove outside", lambda: os.remove(os.path.join(outside, "keep")))
    attempt("utime outside", lambda: os.utime(os.path.join(outside, "keep")))
    attempt("through a symlink", lambda: open(os.path.join(home, "out", "h"), "w").close())
    refused = len(box.refused)
attempt("after the job", lambda: open(os.path.join(outside, "i"), "w").close())
print(json.dumps({"results": results, "refused": refused}))
"""


def test_the_audit_hook_refuses_every_kind_of_write_outside(tmp_path: Path) -> None:
    home, temp, outside = (tmp_path / n for n in ("home", "temp", "outside"))
    for folder in (home, temp, outside):
        folder.mkdir()
    (outside / "keep").write_text("keep")
    (home / "out").symlink_to(outside)
    done = subprocess.run([sys.executable, "-I", "-c", HOOK_PROBE, str(home), str(temp),
                           str(outside)], capture_output=True, text=True, timeout=60,
                          check=True)
    report = json.loads(done.stdout)
    assert report["results"] == {
        "write inside": "done", "write temp": "done", "read outside": "done",
        "devnull": "done", "write outside": "refused", "os.open outside": "refused",
        "rename out": "refused", "mkdir outside": "refused", "symlink outside": "refused",
        "copy outside": "refused", "remove outside": "refused", "utime outside": "refused",
        "through a symlink": "refused", "after the job": "done",
    }
    assert report["refused"] == 9
    assert sorted(p.name for p in outside.iterdir()) == ["i", "keep"]


# Names yt-dlp makes after the one it checked: a subtitle's language and format, a thumbnail's
# id and extension are the site's, put after the media file's checked name. yt-dlp refuses
# one with a "/" itself, unless told not to (--compat-options allow-unsafe-ext, which a job
# refuses; the probe lets it through, as if yt-dlp's check were missing): then the audit hook
# is what stops it. Run in a process of its own, as a download process runs: a hook, once
# installed, is never removed.
SITE_NAMES_PROBE = r"""
import json, os, sys
from appliance.engine import child, ytdlp_tuning
from appliance.engine.containment import guard_writes
ytdlp_tuning.UNSAFE_COMPAT_OPTIONS = frozenset()
guard_writes()
channel = child.Channel(os.open(os.devnull, os.O_WRONLY))
outcomes = []
for job in json.loads(sys.argv[1]):
    try:
        outcomes.append("done: " + child.run_download(job, channel)["filepath"])
    except Exception as exc:
        outcomes.append(f"{type(exc).__name__}: {exc}")
print(json.dumps(outcomes))
"""
SITE_NAMES = {
    "subtitle language": ({"subtitles": {"../../../esc-sub": [{"url": "{clip}", "ext": "vtt"}]}},
                          ["--write-subs", "--sub-langs", "all"]),
    "subtitle format": ({"subtitles": {"en": [{"url": "{clip}", "ext": "/../../../esc-fmt"}]}},
                        ["--write-subs", "--sub-langs", "all"]),
    "subtitle text": ({"subtitles": {"../../../esc-text": [{"data": "WEBVTT", "ext": "vtt"}]}},
                      ["--write-subs", "--sub-langs", "all"]),
    "thumbnail id": ({"thumbnails": [{"url": "{clip}", "id": "../../../esc-th"},
                                     {"url": "{clip}", "id": "b"}]}, ["--write-all-thumbnails"]),
    "thumbnail extension": ({"thumbnails": [{"url": "{clip}", "ext": "/../../../esc-thx"}]},
                            ["--write-thumbnail"]),
}


def test_names_the_site_adds_after_the_checked_one_are_refused_by_the_hook(
        folders: Folders, origin: MediaOrigin) -> None:
    jobs = []
    for site, args in SITE_NAMES.values():
        job = folders.job(origin.clip_url, "%(title)s.%(ext)s",
                          [*args, "--compat-options", "allow-unsafe-ext"])
        job["info"] = json.loads(json.dumps(site).replace("{clip}", origin.clip_url)) | {
            "id": "x", "title": "t", "url": origin.clip_url, "ext": "mp4",
            "extractor": "generic", "extractor_key": "Generic", "webpage_url": origin.clip_url}
        jobs.append(job)
    # the folders a way out passes through exist: the kernel would otherwise refuse the path
    for folder in (folders.temp, folders.root):
        for name in ("t...", "t.", "t.en."):
            (folder / name).mkdir()
    done = subprocess.run([sys.executable, "-I", "-c", SITE_NAMES_PROBE, json.dumps(jobs)],
                          capture_output=True, text=True, timeout=120, check=True)
    outcomes = dict(zip(SITE_NAMES, json.loads(done.stdout), strict=True))
    for case, outcome in outcomes.items():
        assert outcome.startswith("OutsideDownloadFolder: Refused: "), (case, outcome)
        assert outcome.endswith("is outside the download folder; the job was stopped."), outcome
    assert folders.files_outside() == []
    assert not list(folders.base.rglob("esc-*"))


W = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
# (event, its arguments with {home}/{out} for the folders and "home-fd"/"out-fd" for a file
# descriptor of them, refused?)
HOOK_VERDICTS = [
    ("open", ("{out}/a", "r", os.O_RDONLY), False),
    ("open", ("{out}/a", "w", W), True),
    ("open", ("{out}/a", None, os.O_RDWR), True),  # os.open
    ("open", ("{out}/a", None, os.O_APPEND), True),
    ("open", ("{home}/a", "w", W), False),
    ("open", (7, "w", W), False),  # a file descriptor: checked when it was opened
    ("os.rename", ("{home}/a", "{out}/b", None, None), True),
    ("os.rename", ("{out}/a", "{home}/b", None, None), True),  # taken in from outside
    ("os.rename", ("a", "b", "home-fd", "out-fd"), True),
    ("os.rename", ("a", "b", "out-fd", "home-fd"), True),
    ("os.rename", ("a", "b", "home-fd", "home-fd"), False),
    ("os.remove", ("a", "out-fd"), True),
    ("os.remove", ("a", "home-fd"), False),
    ("os.remove", ("{out}/a", None), True),
    ("os.symlink", ("{out}", "{home}/l", None), False),  # where it leads is checked on use
    ("os.symlink", ("{home}", "l", "out-fd"), True),
    ("os.link", ("{out}/a", "{home}/b", None, None), True),
    ("os.mkdir", ("{out}/d", 0o777, None), True),
    ("os.chmod", ("{out}/a", 0o777, None), True),
    ("os.utime", ("{out}/a", None, None, None), True),
    ("os.truncate", ("{out}/a", 0), True),
    ("os.truncate", (7, 0), False),
    ("shutil.copyfile", ("{out}/a", "{home}/b"), False),  # a read outside
    ("shutil.copytree", ("{home}", "{out}/t"), True),
    ("shutil.rmtree", ("{out}", None), True),
    ("os.listdir", ("{out}",), False),  # not a write
]


@pytest.mark.parametrize(("event", "args", "refused"), HOOK_VERDICTS)
def test_the_audit_hooks_verdict_on_each_kind_of_change(
        tmp_path: Path, event: str, args: tuple[Any, ...], refused: bool) -> None:
    """The hook's decisions, asked in this process (a process's hook is never removed: the
    test above installs it in one of its own)."""
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir(), out.mkdir()
    fds = {"home-fd": os.open(home, os.O_RDONLY), "out-fd": os.open(out, os.O_RDONLY)}
    try:
        given = tuple(fds.get(a, a.format(home=home, out=out)) if isinstance(a, str) else a
                      for a in args)
        with contained(Containment(str(home), str(tmp_path / "temp"))) as box:
            if refused:
                with pytest.raises(WriteRefused, match="outside the download folder"):
                    _audit(event, given)
                assert box.refused and box.refused[0].startswith(f"{out}")
            else:
                _audit(event, given)
                assert box.refused == []
        _audit(event, given)  # no job: no verdict
    finally:
        for fd in fds.values():
            os.close(fd)


# --- through the real service's entry points ---------------------------------------------


def escaped(server: Server) -> list[Path]:
    """Files written anywhere under the server's root but its download and temp folders."""
    inside = (server.download_path, server.root / "tmp", server.root / "config")
    return [p for p in server.root.parent.rglob("*") if not p.is_dir()
            and not any(p.is_relative_to(i) for i in inside) and p.name != "server.log"]


def finished(server: Server, item_id: str) -> dict[str, Any]:
    return server.wait_status(item_id, {"finished", "error", "skip"}, timeout=90)


def test_entry_points_of_the_real_service_keep_files_inside(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server(YTP_CONSOLE_ENABLED="true")
    base = server.root.parent
    # POST /api/history: an absolute template with a colon is refused at once ...
    refused = server.post("/api/history", {"url": origin.clip_url,
                                           "template": f"{base}/esc1:x.%(ext)s"})
    assert refused.status_code == 400 and "download folder" in refused.json()["error"]
    # ... a render-time escape downloads inside, renamed
    [added] = server.post("/api/history", {
        "url": origin.clip_url, "template": "%(nonexist|..)s/%(nonexist|..)s/e2.%(ext)s",
    }).json()
    assert finished(server, added["id"])["status"] == "finished"
    assert (server.download_path / "_" / "_" / "e2.mp4").is_file()
    # a preset's cli: the typed -o outside is refused; one that renders a way out is renamed
    preset = server.post("/api/presets", {"name": "sneaky", "cli":
                                          f"--write-info-json -o 'infojson:{base}/esc4'"})
    assert preset.status_code == 400 and "--output" in preset.json()["error"], preset.text
    preset = server.post("/api/presets", {"name": "sneaky", "cli":
                                          "--write-info-json -o 'infojson:%(x|..)s/i'"})
    assert preset.status_code in {200, 201}, preset.text
    [via_preset] = server.post("/api/history", {"url": origin.clip2_url,
                                                "preset": "sneaky"}).json()
    assert finished(server, via_preset["id"])["status"] == "finished"
    assert (server.download_path / "_" / "i.info.json").is_file()
    # PUT /api/settings: the default template
    put = server.request("PUT", "/api/settings", json={"output_template": f"{base}/x:y"})
    assert put.status_code == 400, put.text
    put = server.request("PUT", "/api/settings", json={"output_template": "$HOME/%(id)s.%(ext)s"})
    assert put.status_code == 200, put.text
    [default] = server.post("/api/history", {"url": origin.short_url}).json()
    assert finished(server, default["id"])["status"] == "finished"
    assert (server.download_path / "$HOME").is_dir()
    # the websocket's add_url, the shipped tv preset and a site whose uploader is ".."
    with connect(server.ws_url) as ws:
        ws.send(json.dumps({"event": "add_url", "data": {
            "url": origin.watch_url("clip", uploader=".."), "preset": "media-server-tv"}}))
        wait_for(lambda: any(p.suffix == ".mp4" for p in
                             (server.download_path / "_").rglob("*")), timeout=90,
                 message="the tv download")
    # the console's -o
    console = server.post("/api/system/terminal", {
        "command": f"-o '{base}/esc6.%(ext)s' {origin.clip_url}"})
    assert console.status_code == 400 and "--output" in console.json()["error"]
    console = server.post("/api/system/terminal", {
        "command": f"-o '%(nonexist|..)s/%(nonexist|..)s/c.%(ext)s' {origin.clip_url}"})
    assert console.status_code == 200 and '"exitcode":0' in console.text, console.text
    assert (server.download_path / "_" / "_" / "c.mp4").is_file()
    assert escaped(server) == []


def test_a_playlists_entries_are_named_with_their_place_in_it(
        folders: Folders, origin: MediaOrigin) -> None:
    """Each entry is worked on with what its playlist tells of it (yt-dlp hands that on to
    each entry's own processing), through the checks of its names."""
    run(folders.job(origin.playlist_url, "%(playlist_index)s of %(n_entries)s-%(id)s.%(ext)s"))
    entries = len(origin.playlist_entry_urls)
    assert sorted(name.split("-")[0] for name in folders.files_inside()) == [
        f"{index} of {entries}" for index in range(1, entries + 1)]
