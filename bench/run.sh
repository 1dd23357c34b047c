#!/usr/bin/env bash
# Measures Hearth's foundation figures on this machine and prints them as a Markdown table:
# cold start to /ready, idle RSS, /health throughput at 256 connections (wrk), login latency.
# Usage: bash bench/run.sh   (or: make bench). Copy the table into bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if ! command -v wrk >/dev/null; then
  step "installing wrk (Debian package)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
step "building hearth (release)"
cargo build --release --locked -p hearth
target="${CARGO_TARGET_DIR:-target}"
step "measuring"
python3 bench/bench.py "$target/release/hearth"
