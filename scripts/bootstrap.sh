#!/usr/bin/env bash
# Creates the project venv (.venv) from uv.lock. Needs only python3.11 and PyPI.
# uv itself and every wheel are cached under $SOCIALHUB_CACHE, so fresh clones install fast.
set -euo pipefail
cache="${SOCIALHUB_CACHE:-$HOME/.cache/socialhub}"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$cache/uv}"
tools="$cache/tools"

uv_bin="$(command -v uv || true)"
if [ -z "$uv_bin" ]; then
  uv_bin="$tools/bin/uv"
  if [ ! -x "$uv_bin" ]; then
    echo "installing uv into $tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check uv
  fi
fi
python_bin="$(command -v python3.11 || command -v python3)"
"$uv_bin" sync --frozen --python "$python_bin" --quiet
