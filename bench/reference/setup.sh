#!/usr/bin/env bash
# Creates the reference virtualenv (llama-cpp-python's server, sentence-transformers) under
# ~/.cache/hearth/refvenv and prints its python. llama-cpp-python compiles llama.cpp (~10 min on
# 2 cores); torch comes from PyPI (a large download).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${HEARTH_REF_VENV:-$HOME/.cache/hearth/refvenv}"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "==> installing the reference engines into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
echo "$venv/bin/python"
