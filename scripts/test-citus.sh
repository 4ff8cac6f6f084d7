#!/usr/bin/env bash
# make test-citus: the suites under tests/citus/ on a local Citus cluster — a coordinator and
# two workers on loopback ports of their own — started fresh and stopped afterwards.
# Citus is not packaged for Debian 12 and is not installed by this project: build it into the
# PostgreSQL the project uses first (README, "Citus"). Without it this fails, saying so.
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
COORDINATOR_PORT=${PG_COLLECT_CITUS_PORT:-28820}
WORKER_PORTS=($((COORDINATOR_PORT + 1)) $((COORDINATOR_PORT + 2)))
DB=pg_collect_citus

if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
  echo "test-citus: Citus is not installed into $("$PG_CONFIG" --bindir)/.. (no citus.so in $("$PG_CONFIG" --pkglibdir))." >&2
  echo "test-citus: build Citus 13.x for PostgreSQL $PG_MAJOR from its source and install it there, then run this again." >&2
  exit 1
fi
"$REPO/scripts/setup.sh" || exit 1
install_extension || exit 1

nodes=(citus-coordinator:$COORDINATOR_PORT citus-worker1:${WORKER_PORTS[0]} citus-worker2:${WORKER_PORTS[1]})
stop_all() { for n in "${nodes[@]}"; do "$REPO/scripts/cluster.sh" stop "${n%%:*}" "${n##*:}"; done; }
trap stop_all EXIT
for n in "${nodes[@]}"; do
  name=${n%%:*} port=${n##*:}
  CLUSTER_PRELOAD=citus "$REPO/scripts/cluster.sh" fresh "$name" "$port" || exit 1
  psql_at "$port" postgres -c "CREATE DATABASE $DB" >/dev/null || exit 1
  psql_at "$port" "$DB" -c "CREATE EXTENSION citus" >/dev/null || exit 1
done
psql_at "$COORDINATOR_PORT" "$DB" >/dev/null <<SQL || exit 1
SELECT citus_set_coordinator_host('127.0.0.1', $COORDINATOR_PORT);
SELECT citus_add_node('127.0.0.1', ${WORKER_PORTS[0]});
SELECT citus_add_node('127.0.0.1', ${WORKER_PORTS[1]});
CREATE EXTENSION pg_collect;
SQL
echo "test-citus: Citus $(psql_at "$COORDINATOR_PORT" "$DB" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), coordinator 127.0.0.1:$COORDINATOR_PORT, workers ${WORKER_PORTS[*]}"

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
exit $rc
