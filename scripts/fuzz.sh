#!/usr/bin/env bash
# Builds the cargo-fuzz targets (fuzz/) and runs each for FUZZ_SECONDS (default 15) from the
# seed corpus in fuzz/corpus/<target>. New inputs go to a scratch copy, so the repository's
# corpus changes only by hand. Prints executions per target; a crash fails the script, and the
# input that caused it is left under fuzz/artifacts/<target>/.
#   bash scripts/fuzz.sh                 every target
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh parse_pdf
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

seconds="${FUZZ_SECONDS:-15}"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/hearth/fuzz-target}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  step "installing cargo-fuzz (crates.io)"
  cargo install --locked cargo-fuzz
fi
cd fuzz
# The stable toolchain: no sanitizer (those need nightly); libFuzzer's coverage still guides.
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
step "building ${#targets[@]} fuzz targets"
cargo fuzz build --sanitizer none --target-dir "$target_dir" >/dev/null
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target" "corpus/$target"
  log="$scratch/$target.log"
  if ! cargo fuzz run --sanitizer none --target-dir "$target_dir" "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=20 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $target failed; its input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  printf 'fuzz: %-12s %10s executions in %ss\n' "$target" "$runs" "$seconds"
done
