#!/usr/bin/env bash
# Builds the web UI and the release binary, fetches the built-in models when missing, then
# starts Hearth on embedded defaults (SQLite, models and everything else in ./hearth-data).
# Extra arguments go to `hearth serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need cargo "the Rust toolchain (https://rustup.rs)"
need npm "Node.js 20+ with npm"
native_build_deps
bash scripts/fetch-models.sh "${HEARTH_MODELS_DIR:-./hearth-data/models}"
web_deps
step "building the web UI"
npm --prefix web run build --silent
step "building hearth (release)"
cargo build --release --locked -p hearth
target="${CARGO_TARGET_DIR:-target}"
step "starting hearth (Ctrl-C to stop)"
exec "$target/release/hearth" serve "$@"
