#!/usr/bin/env bash
# The Valhalla virtualenv of the isochrone benchmark (benchmarks/isochrones.py): Python 3.12
# (pyvalhalla's current wheels need it; the project's own .venv is 3.11) with pyvalhalla from
# PyPI, under .venv-valhalla/ (gitignored). Idempotent; `make bench-valhalla-env` runs it.
# Valhalla's tiles are built locally from our networks; nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-valhalla
PYVALHALLA_VERSION=3.9.1
PY=${VALHALLA_PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python"; do
    # a pyenv shim is found even where it cannot run (no 3.12 in the active versions)
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
      PY=$c
      break
    fi
  done
fi
if [ ! -x "$VENV/bin/python" ]; then
  [ -n "$PY" ] || { echo "no Python 3.12 found: set VALHALLA_PYTHON" >&2; exit 1; }
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version'
if ! "$VENV/bin/python" -c "import valhalla, sys; sys.exit(valhalla.__version__ != '$PYVALHALLA_VERSION')" 2>/dev/null; then
  "$VENV/bin/pip" install -q "pyvalhalla==$PYVALHALLA_VERSION"
fi
"$VENV/bin/python" -c 'import valhalla; print("pyvalhalla", valhalla.__version__, "in .venv-valhalla")'
