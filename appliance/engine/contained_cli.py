"""yt-dlp's own command line, held inside the download folder: the console's process.

``python -I -m appliance.engine.contained_cli HOME TEMP`` with yt-dlp's arguments on its
standard input (a JSON array: on the command line, every user of the box read them, a
``--password`` or an ``Authorization`` header too) runs yt-dlp's ``main`` with the same two
layers as a download (``engine/containment.py``): rendered output paths checked, every write
audited. ``-I`` keeps the working directory and ``PYTHON*``
variables out of the import path, so no downloaded ``yt_dlp.py`` can stand in for yt-dlp.
HOME and TEMP become yt-dlp's ``--paths``; the caller refuses a ``--paths`` of the user's.
Secrets in the arguments (a header that names a credential, a login) keep ffmpeg off the
network, as a download's do (``command_line_secrets``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yt_dlp

from ..outbound import every_connection_checked
from . import command_line_secrets
from .containment import ContainedYoutubeDL, Containment, cache_dir, contained, guard_writes


def main(argv: list[str]) -> int:
    home, temp, *args = argv
    containment = Containment(home, temp, extra=(cache_dir({}),))

    class ConsoleYoutubeDL(ContainedYoutubeDL):
        def __init__(self, params: dict[str, Any] | None = None, auto_init: bool = True
                     ) -> None:
            containment.secrets = command_line_secrets.of_job("", params or {})
            super().__init__(command_line_secrets.native_downloads(
                params or {}, containment.secrets), auto_init)

    ConsoleYoutubeDL.containment = containment
    yt_dlp.YoutubeDL = ConsoleYoutubeDL  # what yt-dlp's main constructs
    sys.dont_write_bytecode = True
    guard_writes()
    every_connection_checked("the console's downloads")
    with contained(containment):
        try:
            yt_dlp.main(["--ignore-config", "--paths", f"home:{home}", "--paths",
                         f"temp:{temp}", *args])
        except SystemExit as exc:
            code = exc.code
        else:
            code = 0
    if containment.refused:
        sys.stderr.write(f"ERROR: refused: {containment.refused[0]!r} is outside the download "
                         f"folder.\n")
        return 1
    return code if isinstance(code, int) else (0 if code is None else 1)


def arguments() -> list[str]:
    """yt-dlp's arguments, read on the standard input, which then reads nothing (a prompt of
    yt-dlp's for a password ends at once, as with no standard input at all)."""
    given = json.loads(sys.stdin.buffer.read() or b"[]")
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    return [str(argument) for argument in given]


if __name__ == "__main__":
    sys.exit(main([*sys.argv[1:3], *arguments()]))
