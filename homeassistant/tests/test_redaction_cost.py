"""Diagnostics run on Home Assistant's event loop and redact every link in every text of the
service's answers (a hostile service's texts can be megabytes). The link pattern was tried
at every character of a word and scanned the rest of it each time: the square of a word's
length (40 KB of letters took 6 s; a 4 MiB title most of a day, Home Assistant frozen).

Measured in CPU seconds of a process of its own (a bound a thousand times what it takes),
never in wall time."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from custom_components.appliance.redaction import without_url_secrets

ROOT = Path(__file__).resolve().parents[1]
CPU_SECONDS = 20

_REDACT = """
import sys
sys.path.insert(0, sys.argv[1])
from custom_components.appliance.redaction import without_url_secrets
size = 4 * 1024 * 1024
for text in ("a" * size, "a" * size + "://x", "a://" + "b" * size,
             "http://" + "u" * size + "@host/" + "p" * size, " x" * (size // 2)):
    without_url_secrets(text)
"""


def _cpu_bound() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def test_megabytes_of_text_are_redacted_in_linear_time() -> None:
    run = subprocess.run([sys.executable, "-c", _REDACT, str(ROOT)], preexec_fn=_cpu_bound,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, f"killed by the CPU bound or failed: {run.returncode} " \
                                f"{run.stderr[-2000:]}"


@pytest.mark.parametrize(("text", "shown"), [
    ("see https://me:secret@feeds.example/rss?passkey=1 now",
     "see https://feeds.example/rss now"),
    ("xhttps://me:secret@host/p", "xhttps://host/p"),
    ("1https://me:secret@host/p (_ftp://u:p@h)", "1https://host/p (_ftp://h)"),
    ("a.b+c-d://u@h/p#frag", "a.b+c-d://h/p"),
    ("word" * 1000 + " http://h/p?k=v", "word" * 1000 + " http://h/p"),
])
def test_links_in_a_text_lose_their_secrets(text: str, shown: str) -> None:
    assert without_url_secrets(text) == shown
