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

# The TUI's terminal test drives `appliance tui` in a tmux pane.
if [ "$mode" = test ] && ! command -v tmux >/dev/null 2>&1; then
  apt_install tmux
fi
# Files opened in a browser tab are tested in Debian's Chromium, headless.
if [ "$mode" = test ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
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
  # zeroconf without its optional compiled modules: the service only announces itself, and
  # they would cost its worker 2.7 MiB (pyproject.toml says more).
  SKIP_CYTHON=1 .venv/bin/python -m pip install -qq --no-binary zeroconf -e ".${extras}"
  say "installed: $(.venv/bin/python -c 'import importlib.metadata as m; print(", ".join(f"{n} {m.version(n)}" for n in ("appliance", "yt-dlp", "yt-dlp-ejs", "deno")))')"
  touch "$stamp"
fi
# The bytecode of the optimized interpreters the service runs (appliance/bytecode.py); quick
# when it is there already.
say "compiling yt-dlp for the service's interpreters ..."
.venv/bin/python -m appliance.bytecode

if [ "$mode" = serve ]; then
  say "starting the service (Ctrl-C stops it) ..."
  exec .venv/bin/appliance serve "$@"
fi
say "running the tests ..."
# One pytest worker more than the cores: most tests wait on a real server, a real download or
# ffmpeg, so a worker spends part of its time idle; with 2 cores, 3 workers keep the box busy
# (the whole suite 1,067 s -> 875 s on a 2-core box) without starving the timing of any test.
workers=$(( $(nproc) + 1 ))

# --- Home Assistant integration tests (homeassistant/) -------------------------------------
# `./bootstrap.sh test` with no arguments also runs homeassistant/tests, against Home
# Assistant itself in a second virtual environment, .venv-ha, on the Python Home Assistant
# requires (3.13: python3.13 on the PATH, pyenv's, or HA_PYTHON). It is set up and run in the
# background while the main suite runs. No Python 3.13 fails the run under CI (CI set) and is
# a warning elsewhere. A run given arguments is a targeted run of the main suite only.
find_ha_python() {
  for candidate in ${HA_PYTHON:-} python3.13 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

run_ha_tests() {  # $1: the Python 3.13 interpreter, $2: a scratch folder
  ha_stamp=".venv-ha/.installed-$(sha256sum homeassistant/requirements-test.txt | cut -c1-16)"
  if [ ! -f "$ha_stamp" ]; then
    say "installing Home Assistant into .venv-ha for its tests (about 2 minutes) ..."
    [ -x .venv-ha/bin/python ] || "$1" -m venv .venv-ha
    .venv-ha/bin/python -m pip install --quiet --upgrade pip >"$2/pip.log" 2>&1 &&
      .venv-ha/bin/python -m pip install --quiet -r homeassistant/requirements-test.txt \
        >>"$2/pip.log" 2>&1 || { cat "$2/pip.log"; return 1; }
    touch "$ha_stamp"
  fi
  cd homeassistant && APPLIANCE_PYTHON="$PWD/../.venv/bin/python" \
    ../.venv-ha/bin/python -m pytest -q --basetemp="$2/tmp" -p no:randomly
}

if [ "$#" -eq 0 ]; then
  ha_dir="$(mktemp -d)"
  if ha_python="$(find_ha_python)"; then
    ( run_ha_tests "$ha_python" "$ha_dir" >"$ha_dir/log" 2>&1; echo $? >"$ha_dir/rc" ) &
    ha_job=$!
  elif [ -n "${CI:-}" ]; then
    echo "error: the Home Assistant tests need Python 3.13 (python3.13, pyenv's 3.13, or" \
         "HA_PYTHON=/path/to/python3.13); none was found" >&2
    exit 1
  else
    say "warning: Home Assistant tests NOT run: no Python 3.13 found (set HA_PYTHON)"
    ha_job=""
  fi
  set +e
  .venv/bin/python -m pytest -n "$workers" --dist loadgroup
  main_rc=$?
  set -e
  ha_rc=0
  if [ -n "$ha_job" ]; then
    wait "$ha_job" || true
    echo "--- Home Assistant integration tests (homeassistant/tests) ---"
    cat "$ha_dir/log"
    ha_rc="$(cat "$ha_dir/rc" 2>/dev/null || echo 1)"
  fi
  rm -rf "$ha_dir"
  [ "$main_rc" -eq 0 ] && [ "$ha_rc" -eq 0 ] && exit 0
  exit 1
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadgroup "$@"
