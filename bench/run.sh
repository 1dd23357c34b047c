#!/usr/bin/env bash
# Measures Hearth's figures on this machine and prints them as Markdown tables: cold start to
# /ready, idle RSS, /health throughput at 256 connections (wrk), login latency; then streaming
# (crates/hearth-bench): time to first token and tokens/s through Hearth versus the upstream
# direct at 1, 64 and 1,000 concurrent streams, thousands of concurrent streams, idle WebSockets.
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
cargo build --release --locked -p hearth -p hearth-bench -p hearth-fake-llm
target="${CARGO_TARGET_DIR:-target}"
step "measuring the foundation figures"
python3 bench/bench.py "$target/release/hearth"
step "measuring streaming (about two minutes)"
"$target/release/hearth-bench" "$target/release/hearth"
