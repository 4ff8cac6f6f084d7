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
# What the NAME_concurrency.sh files share: the database, pgbench runs and recording results.
db=pg_collect_bench
pgbench_tps() { # pgbench_tps SCRIPT CLIENTS SECONDS -> "tps latency_ms"
  "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$BENCH_PORT" -U "$DB_USER" -c "$2" -j 2 -T "$3" -f "$1" "$db" 2>/dev/null |
    awk '/^tps/ {tps=$3} /^latency average/ {lat=$4} END {print tps, lat}'
}
record() { # record BENCHMARK VARIANT IS_BASELINE VALUE UNIT [ITEMS]
  psql_at "$BENCH_PORT" "$db" -c "INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
                                  VALUES ('$1', '$2', $3, 1, $4, '$5', ${6:-NULL})" >/dev/null
}
seconds() { # seconds SQL... -> wall-clock seconds of running the statements
  local s e; s=$(date +%s.%N); psql_at "$BENCH_PORT" "$db" -c "SET client_min_messages = warning" "$@" >/dev/null; e=$(date +%s.%N)
  awk -v s="$s" -v e="$e" 'BEGIN { print e - s }'
}

if [ $# -gt 0 ]; then files=("${@/#/bench/}"); files=("${files[@]/%/.sql}");
else files=($(ls bench/*.sql | grep -v harness.sql | sort)); fi
for f in "${files[@]}"; do
  echo "bench: $f"
  psql_at "$BENCH_PORT" pg_collect_bench -f "$f" >/dev/null
  # Benchmarks needing many connections live beside it, as NAME_concurrency.sh.
  extra="${f%.sql}_concurrency.sh"
  if [ -f "$extra" ]; then echo "bench: $extra"; source "$extra"; fi
done

mkdir -p target/bench
{
  echo "# pg_collect benchmarks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | cut -d' ' -f2), release build."
  echo "Each row is the median of its runs; ratio = median / the baseline's median (the first row of each benchmark):"
  echo "below 1 means less time, fewer bytes or lower latency than the baseline; for tps, above 1 means more throughput."
  echo
  echo "| benchmark | variant | runs | median | per second | ratio to baseline |"
  echo "|---|---|---:|---:|---:|---:|"
  psql_at "$BENCH_PORT" pg_collect_bench -At -F '|' -c "
    SELECT '', benchmark, replace(variant, '|', '\\|') || CASE WHEN is_baseline THEN ' (baseline)' ELSE '' END, runs,
           CASE unit WHEN 'ms' THEN round(median::numeric, 2) || ' ms' WHEN 'ms latency' THEN round(median::numeric, 3) || ' ms' WHEN '% error' THEN round(median::numeric, 3) || '%' ELSE round(median) || ' ' || unit END,
           CASE WHEN unit = 'ms' AND items IS NOT NULL
                THEN to_char(items / (median / 1000), 'FM999,999,999,990') || '/s' ELSE '' END,
           round(ratio_to_baseline::numeric, 3), ''
    FROM bench.report ORDER BY ord, NOT is_baseline, variant"
} > target/bench/report.md
cat target/bench/report.md
