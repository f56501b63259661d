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
extra="[export]"; [ "$mode" = test ] && extra="[test]"  # export: ONNX (the test extra includes it)
stamp=".venv/.viaseg-installed$extra"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".$extra"
  touch "$stamp"
fi
# an NVIDIA GPU (nvidia-smi works): TensorFlow's CUDA build, the same version (pip's CUDA and cuDNN libraries;
# only the driver comes from the system). Training then runs on the GPU in mixed_float16 (docs/gpu.md).
# VIASEG_GPU=0 keeps the CPU set-up.
if [ "${VIASEG_GPU:-1}" != 0 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  tfv=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('tensorflow'))")
  if [ "$(cat .venv/.viaseg-cuda 2>/dev/null)" != "$tfv" ]; then
    echo "setup: NVIDIA GPU found: installing tensorflow[and-cuda]==$tfv"
    .venv/bin/python -m pip install -q "tensorflow[and-cuda]==$tfv"
    echo "$tfv" > .venv/.viaseg-cuda
  fi
fi

case "$mode" in
  app) exec .venv/bin/viaseg "$@" ;;
  test)
    export QT_QPA_PLATFORM=offscreen
    .venv/bin/ruff check core gui tests scripts
    .venv/bin/ruff format --check core gui tests scripts
    .venv/bin/python scripts/lint_imports.py
    .venv/bin/python scripts/typecheck.py
    # two test processes: the suite is mostly single-threaded TensorFlow start-up and tracing (VIASEG_TEST_WORKERS=0: one)
    exec .venv/bin/python -m pytest -n "${VIASEG_TEST_WORKERS:-2}" "$@" ;;
  *) echo "usage: ./setup.sh app [PROJECT] | ./setup.sh test [PYTEST ARGS]" >&2; exit 2 ;;
esac
