#!/usr/bin/env bash
# Knowledge figures (see bench/knowledge.py and crates/hearth-bench/src/bin/knowledge-index.rs):
# the index at 10k / 100k / 1M chunks (load, HNSW build, disk and memory, BM25 / vector / hybrid
# latency p50/p99, ANN recall@10), then the real pipeline on the PostgreSQL documentation:
# ingest throughput with the built-in embedder, search latency over HTTP, and nDCG@10 /
# recall@10 of BM25, vector and hybrid on bench/retrieval/queries.jsonl (known items) and
# bench/retrieval/questions.jsonl (questions in users' words).
# Usage: bash bench/knowledge.sh [SIZES…]   (or: make bench-knowledge). Copy the tables into
# bench/README.md. The 1M-chunk row needs ~6 GiB of memory, ~4 GiB of disk and ~15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
native_build_deps
models="${HEARTH_MODELS_DIR:-$HOME/.cache/hearth/models}"
bash scripts/fetch-models.sh "$models"
if [ ! -d /usr/share/doc/postgresql-doc-15/html ]; then
  step "installing the PostgreSQL 15 documentation (Debian package postgresql-doc-15)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql-doc-15 >/dev/null
fi
step "building hearth and the index benchmark (release)"
cargo build --release --locked -p hearth -p hearth-bench
target="${CARGO_TARGET_DIR:-target}"
corpus="bench/out/pgdocs"
step "making the evaluation corpus ($corpus)"
rm -rf "$corpus"
python3 bench/retrieval/make-eval-set.py --out "$corpus" \
  --queries bench/out/queries.jsonl --page-list bench/out/pages.txt
if ! cmp -s bench/out/queries.jsonl bench/retrieval/queries.jsonl; then
  echo "note: the queries differ from bench/retrieval/queries.jsonl (another postgresql-doc-15 version?)"
fi
step "measuring the index at scale"
"$target/release/knowledge-index" "$@"
step "measuring ingest, search and retrieval quality on the PostgreSQL docs"
python3 bench/knowledge.py "$target/release/hearth" "$models" "$corpus" bench/out/queries.jsonl \
  bench/retrieval/questions.jsonl
