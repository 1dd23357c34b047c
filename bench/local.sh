#!/usr/bin/env bash
# Built-in model figures: Hearth against llama-cpp-python's server and sentence-transformers,
# side by side in one run (see bench/local.py). Builds the release binary, fetches the models,
# installs the reference engines into ~/.cache/hearth/refvenv (compiles llama.cpp; ~10 min once).
# Usage: bash bench/local.sh   (or: make bench-local). Copy the tables into bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
native_build_deps
models="${HEARTH_MODELS_DIR:-$HOME/.cache/hearth/models}"
bash scripts/fetch-models.sh "$models"
python="$(bash bench/reference/setup.sh)"
step "building hearth (release)"
cargo build --release --locked -p hearth
target="${CARGO_TARGET_DIR:-target}"
step "measuring the built-in models (a few minutes)"
"$python" bench/local.py "$target/release/hearth" "$models"
