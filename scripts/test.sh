#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: unit tests, integration tests, the
# compile-fail UI tests, the examples' tests and the README's code (doctests).
# Anything a test needs that a fresh machine lacks is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

# The backends' tests start private Redis and PostgreSQL servers (tests/servers.rs). Debian keeps
# PostgreSQL's binaries off PATH, in /usr/lib/postgresql/<version>/bin: take the newest server
# (a newer client alone has a bin directory too).
pg_bin() { ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1 | sed 's|/postgres$||'; }
has_servers() {
  local pg
  pg="$(pg_bin)"
  # openssl makes the certificates of the TLS tests; the board's test drives headless Chromium.
  command -v redis-server >/dev/null && command -v openssl >/dev/null &&
    command -v chromium >/dev/null && [[ -n $pg ]] &&
    [[ -x $pg/initdb && -x $pg/postgres && -x $pg/pg_ctl ]]
}

if ! has_servers; then
  as_root=()
  [[ $(id -u) == 0 ]] || as_root=(sudo)
  install_servers() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends redis-server postgresql openssl chromium \
      fonts-dejavu-core
  }
  # Refresh the package lists only if installing from the ones on disk fails.
  install_servers || { "${as_root[@]}" apt-get update && install_servers; }
  has_servers || { echo "test.sh: redis-server, PostgreSQL or Chromium still missing after install" >&2; exit 1; }
fi

# Without this a test whose server is missing skips itself; here a missing server is a failure.
export EMITTER_REQUIRE_SERVERS=1
EMITTER_PG_BIN="$(pg_bin)"
export EMITTER_PG_BIN

cargo test --workspace --all-features --locked "$@"
