#!/bin/sh
# One command from a clean clone on Debian / Raspberry Pi OS (as root or with sudo):
#   ./bootstrap.sh serve   set up, then run the service on its defaults
#   ./bootstrap.sh test    set up, then run the whole test suite
# It installs what is missing: ffmpeg and Python's venv support through apt, then a virtual
# environment in .venv with the package and its extras (yt-dlp with its JavaScript runtime,
# deno, and yt-dlp-ejs for YouTube). Re-running it skips what is done.
set -eu
cd "$(dirname "$0")"

# One line per step on stderr; the tools' own chatter stays quiet unless they fail.
say() { echo "bootstrap: $*" >&2; }

mode="${1:-}"
case "$mode" in
  serve|test) shift ;;
  *) echo "usage: $0 serve|test [args...]" >&2; exit 2 ;;
esac

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
  say "installing $* (apt) ..."
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  apt_install python3
fi
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "appliance needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_install python3-venv
fi
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  apt_install ffmpeg
fi
# The tests check the systemd unit with systemd-analyze (Debian: the systemd package).
if [ "$mode" = test ] && ! command -v systemd-analyze >/dev/null 2>&1; then
  apt_install systemd
fi

if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv ..."
  "$PYTHON" -m venv .venv
fi
extras=""
[ "$mode" = test ] && extras="[test]"
stamp=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)$(echo "$extras" | tr -d '[]')"
if [ ! -f "$stamp" ]; then
  say "updating pip ..."
  .venv/bin/python -m pip install -qq --upgrade pip
  say "installing appliance${extras} and its dependencies (a few minutes on a Raspberry Pi) ..."
  .venv/bin/python -m pip install -qq -e ".${extras}"
  say "installed: $(.venv/bin/python -c 'import importlib.metadata as m; print(", ".join(f"{n} {m.version(n)}" for n in ("appliance", "yt-dlp", "yt-dlp-ejs", "deno")))')"
  touch "$stamp"
fi

if [ "$mode" = serve ]; then
  say "starting the service (Ctrl-C stops it) ..."
  exec .venv/bin/appliance serve "$@"
fi
say "running the tests ..."
exec .venv/bin/python -m pytest -n auto --dist loadgroup "$@"
