# Shared helpers for scripts/*.sh (sourced, not run).

step() { printf '\n==> %s\n' "$*"; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 not found: install $2" >&2; exit 1; }
}

# Installs the web UI's npm dependencies when the lockfile changed since the last install.
web_deps() {
  if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    step "installing web UI dependencies (npm ci)"
    npm --prefix web ci --no-audit --no-fund
  fi
}

# Sets CHROMIUM to a headless-capable Chromium, installing Debian's package when missing.
chromium_path() {
  CHROMIUM="${CHROMIUM_PATH:-}"
  if [ -z "$CHROMIUM" ]; then
    CHROMIUM="$(command -v chromium || command -v chromium-browser || true)"
  fi
  if [ -z "$CHROMIUM" ]; then
    step "installing Chromium for the browser tests (Debian package chromium)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    CHROMIUM="$(command -v chromium)"
  fi
  export CHROMIUM
}

# Sets HEARTH_TEST_PYTHON to a virtualenv's Python with the official `openai` package (for the
# OpenAI-compatibility test), creating it under ~/.cache/hearth when missing or outdated.
openai_python() {
  local req="crates/hearth-server/tests/python/requirements.txt"
  local venv="${HEARTH_VENV:-$HOME/.cache/hearth/venv}"
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    step "installing the openai Python package for the compatibility test ($venv)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
  fi
  export HEARTH_TEST_PYTHON="$venv/bin/python"
}

# The built-in chat engine compiles llama.cpp (llama-cpp-sys-2): it needs cmake, a C++ compiler
# and libclang (for bindgen). Installs Debian's packages when one is missing.
native_build_deps() {
  if command -v cmake >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 \
    && compgen -G "/usr/lib/llvm-*/lib/libclang*.so*" >/dev/null; then
    return
  fi
  step "installing cmake, clang and libclang (Debian packages) to build llama.cpp"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq cmake clang libclang-dev >/dev/null
}
