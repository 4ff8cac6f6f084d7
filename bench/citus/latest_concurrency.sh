# Sourced by scripts/bench-citus.sh after bench/citus/latest.sql: single-row version INSERTs
# (pgbench, 4 clients) into the tracked child on Citus against one node, and into the same
# distributed table without tracking; then every copy is checked.
work=$(mktemp -d)
for t in versions plain_versions local_versions; do
  echo "INSERT INTO $t (file_id, created_at, size) VALUES (1 + (random() * 99999)::int8, clock_timestamp(), 1);" >"$work/$t.sql"
done
for run in 1 2 3; do
  read -r tps _ < <(pgbench_tps "$work/local_versions.sql" 4 5)
  record 'Citus: single-row version INSERTs, tracked, 4 clients' 'one node' true "$tps" tps
  read -r tps _ < <(pgbench_tps "$work/versions.sql" 4 5)
  record 'Citus: single-row version INSERTs, tracked, 4 clients' 'Citus (2 workers, 4 shards)' false "$tps" tps
  read -r tps _ < <(pgbench_tps "$work/plain_versions.sql" 4 5)
  record 'Citus: single-row version INSERTs, tracked, 4 clients' 'Citus, the same table without tracking' false "$tps" tps
done
for parent in files local_files; do
  psql_at "$BENCH_PORT" "$db" -tAc "SELECT count(*) FROM collect.check_latest('$parent')" | grep -qx 0 ||
    { echo "bench: wrong copies in $parent" >&2; exit 1; }
done
rm -rf "$work"
