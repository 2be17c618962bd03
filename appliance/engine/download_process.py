"""Where a download process starts (``python -I -m appliance.engine.download_process``): what
it will not import, then ``child.main``.

requests (yt-dlp's HTTP handler) imports charset_normalizer to guess the encoding of a
response read as text whose server named none. Nothing in a download process reads one as
text -- yt-dlp and the task handlers read bytes and decode them themselves -- and without it
requests falls back to UTF-8. It is 28 modules: 2.5 MB of the zygote's resident memory, and
of every process forked from it or spawned without one.
"""

from __future__ import annotations

import sys
import warnings

UNUSED = ("charset_normalizer", "chardet")


def main() -> None:
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # an import of it fails, as if not installed
    # requests says so once, at import, to whoever reads stderr (the journal).
    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")
    from .child import main as run

    run()


if __name__ == "__main__":
    main()
