"""yt-dlp's own command line, held inside the download folder: the console's process.

``python -I -m appliance.engine.contained_cli HOME TEMP [yt-dlp arguments]`` runs yt-dlp's
``main`` with the same two layers as a download (``engine/containment.py``): rendered output
paths checked, every write audited. ``-I`` keeps the working directory and ``PYTHON*``
variables out of the import path, so no downloaded ``yt_dlp.py`` can stand in for yt-dlp.
HOME and TEMP become yt-dlp's ``--paths``; the caller refuses a ``--paths`` of the user's.
"""

from __future__ import annotations

import sys

import yt_dlp

from ..outbound import every_connection_checked
from .containment import ContainedYoutubeDL, Containment, cache_dir, contained, guard_writes


def main(argv: list[str]) -> int:
    home, temp, *args = argv
    containment = Containment(home, temp, extra=(cache_dir({}),))

    class ConsoleYoutubeDL(ContainedYoutubeDL):
        pass

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
