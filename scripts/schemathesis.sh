#!/usr/bin/env bash
# schemathesis against a seeded server: every operation of /openapi.json with all checks.
#   bash scripts/schemathesis.sh                     20 examples per operation
#   SCHEMATHESIS_EXAMPLES=100 bash scripts/schemathesis.sh
# Extra arguments go to `st run` (e.g. --include-path-regex knowledge).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
venv="${HEARTH_ST_VENV:-$HOME/.cache/hearth/st-venv}"
req="scripts/schemathesis-requirements.txt"
if [ ! -x "$venv/bin/st" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  step "installing schemathesis ($venv)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --locked -q -p hearth
export HEARTH_TEST_MODELS_DIR="${HEARTH_TEST_MODELS_DIR:-$HOME/.cache/hearth/models}"
step "schemathesis against a seeded server"
HEARTH_BIN="$target/debug/hearth" ST_BIN="$venv/bin/st" python3 scripts/schemathesis.py "$@"
