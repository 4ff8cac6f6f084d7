# Sourced by scripts/bench.sh after bench/archives.sql: moving 1M events out of a table, into
# an archive against a plain DELETE ... INSERT into a cold heap table; and single-row inserts
# into the source (pgbench, 4 clients) alone and while CALL collect.archive_in_batches runs.

work=$(mktemp -d)
refill() { # the 1M events back in the source, nothing archived
  psql_at "$BENCH_PORT" "$db" -c "TRUNCATE arch_cold, arch_cold_archive_lumps, arch_plain_cold" \
    -c "INSERT INTO arch_cold SELECT * FROM arch_events" -c "VACUUM ANALYZE arch_cold" >/dev/null
}
psql_at "$BENCH_PORT" "$db" -c "CREATE TABLE arch_plain_cold (LIKE arch_events INCLUDING ALL)" >/dev/null

for run in 1 2 3; do
  refill
  s=$(seconds -c "WITH moved AS (DELETE FROM arch_cold WHERE at < now() RETURNING *) INSERT INTO arch_plain_cold SELECT * FROM moved")
  record 'moving 1M events out of the source' 'DELETE ... RETURNING into a cold heap table (with its indexes)' true "$s * 1000" ms 1000000
  refill
  s=$(seconds -c "SELECT collect.archive('arch_cold_archive', '0 seconds')")
  record 'moving 1M events out of the source' 'collect.archive (lumps of 10,000)' false "$s * 1000" ms 1000000
done

echo "INSERT INTO arch_cold (id, at, account_id, kind, path, status, duration_ms, user_agent, payload)
      VALUES (2000000 + (random() * 1e9)::bigint, clock_timestamp(), 1, 'page_view', '/', 200, 1, 'curl/8.5.0', '{}')
      ON CONFLICT DO NOTHING;" >"$work/insert.sql"
for run in 1 2 3; do
  refill
  read -r _ lat < <(pgbench_tps "$work/insert.sql" 4 6)
  record 'event INSERT latency, 4 clients' 'no archiving running' true "$lat" 'ms latency'
  psql_at "$BENCH_PORT" "$db" -c "SET client_min_messages = warning" \
    -c "CALL collect.archive_in_batches('arch_cold_archive', '1 hour')" >/dev/null &
  mover=$!
  sleep 0.5
  read -r _ lat < <(pgbench_tps "$work/insert.sql" 4 6)
  record 'event INSERT latency, 4 clients' 'during CALL collect.archive_in_batches (lumps of 10,000)' false "$lat" 'ms latency'
  wait $mover
done
psql_at "$BENCH_PORT" "$db" -At -c "SELECT count(*) FROM arch_cold WHERE at < now() - interval '1 hour'" | grep -qx 0 ||
  echo "bench: archive_in_batches left old rows behind" >&2
rm -rf "$work"
