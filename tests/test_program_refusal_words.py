"""What a refused start says on a box with few of the programs a download may start: the
refusal names the program refused (``os.system``'s: the shell, /bin/sh) and each one allowed
that is there, "A and B" for two, one alone, or nothing, in the error yt-dlp and the item get
and in the log line a person reads. Each in a process of its own
whose PATH holds what the case needs (the programs allowed are found once per process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import appliance

SCRIPT = r"""
import os, sys
from appliance.engine.containment import Containment, contained, guard_writes
guard_writes()
with contained(Containment(sys.argv[1], sys.argv[2])):
    try:
        os.system("true")
    except PermissionError as exc:
        print(exc.strerror)
"""


def refusal(tmp_path: Path, path: Path, python: str = sys.executable) -> tuple[str, list[str]]:
    """What the job's shell is refused with, and the log's lines, in a process run by
    ``python`` with ``path`` as its PATH."""
    for folder in ("downloads", "temp"):
        (tmp_path / folder).mkdir(exist_ok=True)
    # the interpreter's own imports, for one that is not this environment's
    imports = os.pathsep.join([str(Path(appliance.__file__).parent.parent), *filter(None,
                                                                                sys.path)])
    done = subprocess.run([python, "-c", SCRIPT, str(tmp_path / "downloads"),
                           str(tmp_path / "temp")], capture_output=True, text=True,
                          timeout=120, check=True,
                          env={**os.environ, "PATH": str(path), "PYTHONPATH": imports})
    return done.stdout.strip(), done.stderr.splitlines()


def test_two_programs_are_named_a_and_b(tmp_path: Path) -> None:
    """ffmpeg alone on PATH, and deno beside the interpreter."""
    path = tmp_path / "bin"
    path.mkdir()
    (path / "ffmpeg").symlink_to(os.path.realpath(shutil.which("ffmpeg") or "ffmpeg"))
    said, log = refusal(tmp_path, path)
    assert said == ("Refused to start program '/bin/sh': only ffmpeg and deno may run in a "
                    "download.")
    assert said in log


def test_one_program_is_named_alone(tmp_path: Path) -> None:
    """Nothing on PATH: deno beside the interpreter is all a download may start."""
    (path := tmp_path / "bin").mkdir()
    said, log = refusal(tmp_path, path)
    assert said == "Refused to start program '/bin/sh': only deno may run in a download."
    assert said in log


def test_a_box_with_none_of_them_says_nothing_may_run(tmp_path: Path) -> None:
    """Nothing on PATH, and an interpreter with no deno beside it (the system's)."""
    (path := tmp_path / "bin").mkdir()
    python = sys._base_executable  # (this environment's has deno beside it)
    assert not (Path(python).parent / "deno").exists()
    said, log = refusal(tmp_path, path, python)
    assert said == "Refused to start program '/bin/sh': only nothing may run in a download."
    assert said in log
