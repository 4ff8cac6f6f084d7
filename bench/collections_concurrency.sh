# Sourced by scripts/bench.sh: benchmarks that need many connections at once (pgbench).
# 8 clients appending to one key, against read-modify-write of one jsonb array; and the
# latency of appends while a normalization pass runs, against appends alone.

psql_at "$BENCH_PORT" "$db" -c "SELECT collect.create_collection('tp_bench', 'bigint')" \
  -c "CREATE TABLE rmw (id int PRIMARY KEY, doc jsonb)" \
  -c "INSERT INTO rmw SELECT 1, jsonb_agg(jsonb_build_object('n', g)) FROM generate_series(1, 1000) g" >/dev/null
work=$(mktemp -d)
echo "SELECT collect.append('tp_bench', 1, jsonb_build_object('client', :client_id, 'n', random()));" >"$work/append.sql"
echo "UPDATE rmw SET doc = doc || jsonb_build_object('client', :client_id, 'n', random()) WHERE id = 1;" >"$work/rmw.sql"


for run in 1 2 3; do
  read -r tps _ < <(pgbench_tps "$work/rmw.sql" 8 5)
  record '8 clients appending to one key' 'UPDATE jsonb doc = doc || entry' true "$tps" tps
  read -r tps _ < <(pgbench_tps "$work/append.sql" 8 5)
  record '8 clients appending to one key' 'collect.append' false "$tps" tps
done

# Appends to many keys while a normalization of 20,000 keys runs in batches.
psql_at "$BENCH_PORT" "$db" -c "SELECT collect.create_collection('lat_bench', 'bigint')" >/dev/null
echo "SELECT collect.append('lat_bench', (random() * 20000)::int8, jsonb_build_object('n', random()));" >"$work/lat.sql"
for run in 1 2 3; do
  psql_at "$BENCH_PORT" "$db" -c "INSERT INTO lat_bench_pending (key, entry) SELECT k, jsonb_build_object('n', p) FROM generate_series(1, 20000) k, generate_series(1, 5) p" >/dev/null
  read -r _ lat < <(pgbench_tps "$work/lat.sql" 4 4)
  record 'append latency, 4 clients' 'no normalization running' true "$lat" 'ms latency'
  psql_at "$BENCH_PORT" "$db" -c "CALL collect.normalize_in_batches('lat_bench', 'daily', false, 500)" >/dev/null 2>&1 &
  fold=$!
  read -r _ lat < <(pgbench_tps "$work/lat.sql" 4 4)
  wait $fold
  record 'append latency, 4 clients' 'during collect.normalize_in_batches' false "$lat" 'ms latency'
done
# One client, one call per round trip (each statement sent as it is): the read and the
# append of the single-call benchmarks in bench/collections.sql, over the wire.
echo '\set k random(1, 1000)' >"$work/read_plain.sql"
echo 'SELECT jsonb_agg(entry ORDER BY seq) FROM plain_calls WHERE key = :k;' >>"$work/read_plain.sql"
echo '\set k random(1, 1000)' >"$work/read_ours.sql"
echo "SELECT collect.read('calls', :k::bigint);" >>"$work/read_ours.sql"
echo '\set k random(1, 1000)' >"$work/append_plain.sql"
echo "INSERT INTO plain_calls (key, entry) VALUES (:k, '{\"segment\": \"seg-7\", \"score\": 0.25}') RETURNING seq;" >>"$work/append_plain.sql"
echo '\set k random(1, 1000)' >"$work/append_ours.sql"
echo "SELECT collect.append('calls', :k::bigint, '{\"segment\": \"seg-7\", \"score\": 0.25}');" >>"$work/append_ours.sql"
for run in 1 2 3; do
  read -r tps _ < <(pgbench_tps "$work/read_plain.sql" 1 4)
  record 'read one key of 52 entries, 1 client' 'jsonb_agg over its rows in a plain table' true "$tps" tps
  read -r tps _ < <(pgbench_tps "$work/read_ours.sql" 1 4)
  record 'read one key of 52 entries, 1 client' 'collect.read' false "$tps" tps
  read -r tps _ < <(pgbench_tps "$work/append_plain.sql" 1 4)
  record 'append one entry, 1 client' 'plain INSERT into a table of the same shape' true "$tps" tps
  read -r tps _ < <(pgbench_tps "$work/append_ours.sql" 1 4)
  record 'append one entry, 1 client' 'collect.append' false "$tps" tps
done
rm -rf "$work"
