#!/usr/bin/env bash
# Job queue figures (crates/hearth-bench/src/bin/jobs.rs): no-op jobs per second through the
# workers, and the claim round trip p50/p99 of W workers claiming and completing at once, on
# SQLite and (when HEARTH_BENCH_POSTGRES_URL is set, or PostgreSQL answers on 127.0.0.1:5432) on
# PostgreSQL, in a throw-away database.
# Usage: bash bench/jobs.sh [--jobs N] [--workers W]   Copy the table into bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
native_build_deps
step "building the queue benchmark (release)"
cargo build --release --locked -p hearth-bench --bin jobs
target="${CARGO_TARGET_DIR:-target}"
pg="${HEARTH_BENCH_POSTGRES_URL:-}"
if [ -z "$pg" ] && command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  pg="postgres://postgres@127.0.0.1:5432/test"
fi
if [ -n "$pg" ]; then
  "$target/release/jobs" --postgres "$pg" "$@"
else
  echo "note: PostgreSQL rows skipped: set HEARTH_BENCH_POSTGRES_URL"
  "$target/release/jobs" "$@"
fi
