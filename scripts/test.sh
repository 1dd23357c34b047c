#!/usr/bin/env bash
# Runs every test a fresh machine can run: Rust unit, integration and CLI tests, the storage
# conformance suite (PostgreSQL too when HEARTH_TEST_POSTGRES_URL is set), the web UI's unit
# tests, the official openai Python client against /v1, and the browser end-to-end test in
# headless Chromium. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need cargo "the Rust toolchain (https://rustup.rs)"
need npm "Node.js 20+ with npm"
need python3 "Python 3 with venv (for the openai client test)"
native_build_deps
# The built-in model tests run against the reference models (fetched once into a cache).
export HEARTH_TEST_MODELS_DIR="${HEARTH_TEST_MODELS_DIR:-$HOME/.cache/hearth/models}"
bash scripts/fetch-models.sh "$HEARTH_TEST_MODELS_DIR"
chromium_path
openai_python
web_deps
step "building the web UI"
npm --prefix web run build --silent

if [ -z "${HEARTH_TEST_POSTGRES_URL:-}" ]; then
  echo "note: PostgreSQL conformance and API runs skip: HEARTH_TEST_POSTGRES_URL is unset (e.g. postgres://postgres@127.0.0.1:5432/test)"
else
  echo "note: PostgreSQL conformance and API runs are on (HEARTH_TEST_POSTGRES_URL is set)"
fi

step "Rust tests"
cargo test --workspace --locked

if [ -n "${HEARTH_TEST_POSTGRES_URL:-}" ]; then
  step "API tests again, on PostgreSQL"
  HEARTH_TEST_API_ON_POSTGRES=1 cargo test --locked -p hearth-server --test api
fi

step "web UI unit tests"
npm --prefix web test --silent

step "browser end-to-end tests"
target="${CARGO_TARGET_DIR:-$PWD/target}"
# Cargo re-links a missing binary but not a fresh one another checkout overwrote; removing them
# makes sure these are this checkout's (the debug binary serves this checkout's web/dist).
rm -f "$target/debug/hearth" "$target/debug/hearth-fake-llm"
cargo build --locked -p hearth -p hearth-fake-llm
HEARTH_BIN="$target/debug/hearth" FAKE_LLM_BIN="$target/debug/hearth-fake-llm" \
  CHROMIUM_PATH="$CHROMIUM" npm --prefix web run e2e --silent
