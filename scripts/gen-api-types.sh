#!/usr/bin/env bash
# Regenerates the web UI's API types from the server's OpenAPI document: writes
# web/src/api/openapi.json (`hearth openapi`) and web/src/api/schema.gen.ts (openapi-typescript).
# Run after changing a route or a wire type; the tests fail while either file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
web_deps
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --locked -q -p hearth
"$target/debug/hearth" openapi > web/src/api/openapi.json
npm --prefix web run --silent gen:api
echo "wrote web/src/api/openapi.json and web/src/api/schema.gen.ts"
