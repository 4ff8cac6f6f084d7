#!/usr/bin/env bash
# Runs the benchmark harness on a fresh cluster of its own and writes target/bench/report.md:
# medians of several runs, each variant against a baseline measured in the same run.
# `scripts/bench.sh collection` runs only bench/collection.sql.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
"$REPO/scripts/setup.sh"
# Peers measured against, from Debian's packages.
for peer in postgresql-$PG_MAJOR-hll postgresql-$PG_MAJOR-tdigest; do
  dpkg-query -W -f='${Status}' "$peer" 2>/dev/null | grep -q 'install ok installed' ||
    { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq "$peer" >/dev/null || sudo apt-get install -y -qq "$peer" >/dev/null; }
done
install_extension --release
"$REPO/scripts/cluster.sh" fresh bench "$BENCH_PORT"
trap '"$REPO/scripts/cluster.sh" stop bench "$BENCH_PORT"' EXIT

psql_at "$BENCH_PORT" postgres -c "CREATE DATABASE pg_collect_bench"
psql_at "$BENCH_PORT" pg_collect_bench -c "CREATE EXTENSION pg_collect" -f bench/harness.sql
db=pg_collect_bench

if [ $# -gt 0 ]; then files=("${@/#/bench/}"); files=("${files[@]/%/.sql}");
else files=($(ls bench/*.sql | grep -v harness.sql | sort)); fi
for f in "${files[@]}"; do
  echo "bench: $f"
  psql_at "$BENCH_PORT" pg_collect_bench -f "$f" >/dev/null
  # Benchmarks needing many connections live beside it, as NAME_concurrency.sh.
  extra="${f%.sql}_concurrency.sh"
  if [ -f "$extra" ]; then echo "bench: $extra"; source "$extra"; fi
done

bench_report "$BENCH_PORT" pg_collect_bench "pg_collect benchmarks" target/bench/report.md
