#!/usr/bin/env bash
# hearth-client speaks the wire types (hearth-api) and nothing of the server: a client must not
# build the store, the index or the parsers. Fails when one of them is in its dependency tree.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(hearth-core|hearth-store|hearth-rag|hearth-server|sqlx|tantivy|usearch|lopdf|llama-cpp-2) '
found="$(cargo tree --locked -p hearth-client -e normal --prefix none | grep -E "$forbidden" | sort -u || true)"
if [ -n "$found" ]; then
  echo "hearth-client must depend on hearth-api, not on the server's crates; found:" >&2
  echo "$found" >&2
  exit 1
fi
echo "hearth-client's dependencies: no store, index or parser crates"
