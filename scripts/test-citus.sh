#!/usr/bin/env bash
# make test-citus: the suites under tests/citus/ on a local Citus cluster — a coordinator and
# two workers on loopback ports of their own — started fresh and stopped afterwards.
# Citus is not packaged for Debian 12 and is not installed by this project: build it into the
# PostgreSQL the project uses first (README, "Citus"). Without it this fails, saying so.
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
COORDINATOR_PORT=${PG_COLLECT_CITUS_PORT:-28820}
DB=pg_collect_citus

citus_installed || exit 1
"$REPO/scripts/setup.sh" || exit 1
install_extension || exit 1
trap citus_cluster_stop EXIT
citus_cluster_fresh "$COORDINATOR_PORT" "$DB" || exit 1

out="$REPO/target/citus-regress"
rm -rf "$out"; mkdir -p "$out"
suites=$(cd tests/citus/sql && ls *.sql | sed 's/\.sql$//' | sort)
"$PG_REGRESS" --bindir="$PG_BIN" --host=127.0.0.1 --port="$COORDINATOR_PORT" --user="$DB_USER" \
  --inputdir=tests/citus --outputdir="$out" --dbname="$DB" --use-existing $suites | tee "$out/summary"
rc=${PIPESTATUS[0]}
[ $rc -eq 0 ] || { [ -f "$out/regression.diffs" ] && cat "$out/regression.diffs"; }
passed=$(grep -c '\.\.\. ok' "$out/summary")
failed=$(grep -c 'FAILED' "$out/summary")
echo "citus suites: $passed passed, $failed failed"

# The multi-connection tests marked for Citus (ignored by make test), on the same cluster.
PG_COLLECT_TEST_PORT="$COORDINATOR_PORT" PG_COLLECT_CITUS_WORKER_PORTS="$((COORDINATOR_PORT + 1)) $((COORDINATOR_PORT + 2))" \
PG_COLLECT_DB_USER="$DB_USER" PG_BIN="$PG_BIN" \
  cargo test --features integration --test integration -- --ignored --test-threads=1 --nocapture citus
it=$?
echo "citus integration tests: $([ $it -eq 0 ] && echo passed || echo FAILED)"
[ $rc -eq 0 ] && exit $it
exit $rc
