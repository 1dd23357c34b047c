#!/usr/bin/env bash
# Builds the web UI and the release binary, then starts Hearth on embedded defaults
# (SQLite and everything else in ./hearth-data). Extra arguments go to `hearth serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need cargo "the Rust toolchain (https://rustup.rs)"
need npm "Node.js 20+ with npm"
web_deps
step "building the web UI"
npm --prefix web run build --silent
step "building hearth (release)"
cargo build --release --locked -p hearth
target="${CARGO_TARGET_DIR:-target}"
step "starting hearth (Ctrl-C to stop)"
exec "$target/release/hearth" serve "$@"
