#!/usr/bin/env bash
# make bench-citus: the benchmarks under bench/citus/ on a Citus cluster of its own (a
# coordinator and two workers), each Citus figure against the same job on one node — a local
# table on the coordinator — in the same run; writes target/bench/citus-report.md.
# Needs Citus installed into the PostgreSQL the project uses (README, "Citus").
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
citus_installed || exit 1
"$REPO/scripts/setup.sh"
install_extension --release
BENCH_PORT=${PG_COLLECT_CITUS_BENCH_PORT:-28830}
db=pg_collect_citus_bench
trap citus_cluster_stop EXIT
citus_cluster_fresh "$BENCH_PORT" "$db"
psql_at "$BENCH_PORT" "$db" -f bench/harness.sql >/dev/null

if [ $# -gt 0 ]; then files=("${@/#/bench/citus/}"); files=("${files[@]/%/.sql}");
else files=($(ls bench/citus/*.sql | sort)); fi
for f in "${files[@]}"; do
  echo "bench: $f"
  psql_at "$BENCH_PORT" "$db" -f "$f" >/dev/null
  extra="${f%.sql}_concurrency.sh"
  if [ -f "$extra" ]; then echo "bench: $extra"; source "$extra"; fi
done

bench_report "$BENCH_PORT" "$db" "pg_collect benchmarks on Citus" target/bench/citus-report.md
