#!/usr/bin/env bash
# Runs every test: pure-core unit tests and #[pg_test]s (cargo pgrx test), the pg_regress
# suites, the upgrade test from every frozen release, and the multi-connection integration
# tests, against a fresh cluster of its own.
# Every suite runs even if an earlier one fails; the exit status is non-zero if any failed.
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
"$REPO/scripts/setup.sh" || exit 1

passed=0 failed=0 failures=()
suite() { # suite NAME COMMAND...
  echo; echo "=== $1"
  if "${@:2}"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

# rustfmt.toml's format, and clippy with every warning an error, over every target and feature
# the other suites build.
format_and_lints() {
  cargo fmt --all --check &&
    cargo clippy --workspace --all-targets --no-default-features --features "pg$PG_MAJOR pg_test integration" -- -D warnings
}

unit_and_pg_tests() {
  # The pure cores' tests (crates/core, no Postgres), then the SQL layer's in pgrx's Postgres.
  cargo test -p pg_collect_core &&
    cargo pgrx test "pg$PG_MAJOR" --runas "$DB_USER" --pgdata "$(data_dir pgrx-test)"
}

regress() {
  local out="$REPO/target/regress"
  rm -rf "$out"; mkdir -p "$out"
  # Every suite file must be in the schedule, which gives their order and dependencies.
  local unscheduled; unscheduled=$(cd tests/pg_regress/sql && ls *.sql | sed 's/\.sql$//' |
    grep -vxF -f <(sed -n 's/^test: *//p' ../schedule | tr ' ' '\n'))
  [ -z "$unscheduled" ] || { echo "pg_regress: not in tests/pg_regress/schedule: $unscheduled"; return 1; }
  "$PG_REGRESS" --bindir="$PG_BIN" --host=127.0.0.1 --port="$TEST_PORT" --user="$DB_USER" \
    --inputdir=tests/pg_regress --outputdir="$out" --dbname=pg_collect_regress \
    --load-extension=pg_collect --schedule=tests/pg_regress/schedule
  local rc=$?
  [ $rc -eq 0 ] || { [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"; }
  return $rc
}

# pg_cron is packaged for Debian's PostgreSQL 15 only: on the others the one test that needs it
# is skipped, by name, and the run says so.
needs_pg_cron=(maintenance::pg_cron_runs_maintain)
integration() {
  local skip=()
  if [ "$PG_MAJOR" != 15 ]; then
    echo "integration: skipping ${needs_pg_cron[*]} (no pg_cron for PostgreSQL $PG_MAJOR here)"
    for t in "${needs_pg_cron[@]}"; do skip+=(--skip "$t" --exact); done
  fi
  PG_COLLECT_TEST_PORT=$TEST_PORT PG_COLLECT_DB_USER=$DB_USER PG_BIN=$PG_BIN \
    cargo test --no-default-features --features "pg$PG_MAJOR integration" --test integration -- \
    --test-threads=1 "${skip[@]}"
}

server=$("$PG_BIN/postgres" --version)
echo "test: $server ($PG_BIN)"

suite "format and lints" format_and_lints
suite "unit and pg_test" unit_and_pg_tests
# The pg_test build above carries test-only functions: install the plain build for the rest.
suite "install" install_extension
# Preloaded: pg_cron (scheduling CALL collect.maintain() in the postgres database) and
# pg_collect's maintenance worker (idle until collect.maintenance_databases is set).
if [ "$PG_MAJOR" = 15 ]; then
  suite "test cluster" env CLUSTER_PRELOAD=pg_collect,pg_cron \
    CLUSTER_CONF="cron.database_name = 'postgres'"$'\n'"cron.host = '127.0.0.1'"$'\n'"collect.maintenance_naptime = 1" \
    "$REPO/scripts/cluster.sh" fresh test "$TEST_PORT"
else
  suite "test cluster" env CLUSTER_PRELOAD=pg_collect CLUSTER_CONF="collect.maintenance_naptime = 1" \
    "$REPO/scripts/cluster.sh" fresh test "$TEST_PORT"
fi
suite "pg_regress" regress
suite "upgrade" "$REPO/scripts/upgrade-test.sh"
suite "integration" integration
"$REPO/scripts/cluster.sh" stop test "$TEST_PORT"

echo
[ $failed -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "ran on: $server"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
