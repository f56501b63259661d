#!/usr/bin/env bash
# viaseg set-up: create .venv, install viaseg and what it needs, then launch the app or run the tests.
#   ./setup.sh app [PROJECT]     install, then open the desktop app (the demo project when none is given)
#   ./setup.sh test [PYTEST...]  install with test tools, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-app}"; shift || true

QT_DEBS="libgl1 libegl1 libfontconfig1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libxcb-cursor0 \
libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
libxcb-xinerama0 libxcb-xkb1 libxrender1 libxi6 libglib2.0-0"

need_debs() {
  command -v dpkg >/dev/null 2>&1 || return 1
  local missing=()
  for p in $QT_DEBS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 1
  echo "${missing[@]}"
}

if missing=$(need_debs); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system libraries Qt needs: $missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: Qt needs these system libraries; install them with:" >&2
    echo "  sudo apt-get install $missing" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "setup: '$PY -m venv' failed; on Debian/Ubuntu: sudo apt-get install python3-venv" >&2; exit 1; }
fi
extra=""; [ "$mode" = test ] && extra="[test]"
stamp=".venv/.viaseg-installed$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".$extra"
  touch "$stamp"
fi

case "$mode" in
  app) exec .venv/bin/viaseg "$@" ;;
  test)
    export QT_QPA_PLATFORM=offscreen
    .venv/bin/ruff check core gui tests scripts
    .venv/bin/python scripts/lint_imports.py
    exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: ./setup.sh app [PROJECT] | ./setup.sh test [PYTEST ARGS]" >&2; exit 2 ;;
esac
