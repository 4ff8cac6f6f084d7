#!/usr/bin/env bash
# cluster.sh start|stop|fresh NAME PORT: a throwaway local cluster for demos, tests and benches.
# Data under target/NAME, listening on 127.0.0.1:PORT only, trust auth (local use only).
set -euo pipefail
source "$(dirname "$0")/common.sh"
action=$1 name=$2 port=${3:-}
dir=$(data_dir "$name")

stop() {
  if [ -f "$dir/postmaster.pid" ]; then
    as_db_user "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

start() {
  if [ ! -f "$dir/PG_VERSION" ]; then
    as_db_user "$PG_BIN/initdb" -D "$dir" -U "$DB_USER" --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
shared_buffers = 256MB
max_parallel_workers_per_gather = 2
CONF
    # Citus nodes (scripts/test-citus.sh) and the test cluster (pg_cron, the maintenance worker)
    # load libraries at start.
    [ -z "${CLUSTER_PRELOAD:-}" ] || echo "shared_preload_libraries = '$CLUSTER_PRELOAD'" >>"$dir/postgresql.conf"
    [ -z "${CLUSTER_CONF:-}" ] || echo "$CLUSTER_CONF" >>"$dir/postgresql.conf"
    # Test and bench clusters are rebuilt at will: durability only slows them down.
    [ "$name" = demo ] || echo 'fsync = off' >>"$dir/postgresql.conf"
  fi
  if as_db_user "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then return; fi
  # pgrx appends a Rust backtrace to error details when RUST_BACKTRACE is set: a developer's
  # shell often has it, a user's server never should.
  as_db_user env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
    "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
}

case "$action" in
  start) start ;;
  stop) stop ;;
  fresh) stop; rm -rf "${dir:?}"/* ; start ;;
  *) echo "usage: cluster.sh start|stop|fresh NAME PORT" >&2; exit 2 ;;
esac
