# Sourced by scripts/bench.sh after bench/latest.sql: single-row version inserts (pgbench)
# with the trigger against no trigger and a hand-written row trigger; the backfill rate
# against a one-statement UPDATE; insert latency while a backfill runs.

work=$(mktemp -d)
for t in ins_plain ins_collect ins_hand; do
  echo "INSERT INTO $t (file_id, created_at, size, checksum) VALUES (1 + (random() * 99999)::int8, clock_timestamp(), 1, 'x');" >"$work/$t.sql"
done
echo "INSERT INTO versions (file_id, created_at, size, checksum) VALUES (1 + (random() * 999999)::int8, clock_timestamp(), 1, 'x');" >"$work/app.sql"


# Five rounds, each starting from another variant, so that none always runs first.
variants=(ins_plain ins_collect ins_hand)
for run in 0 1 2 3 4; do
  for i in 0 1 2; do
    t=${variants[$(((run + i) % 3))]}
    read -r tps _ < <(pgbench_tps "$work/$t.sql" 4 5)
    case $t in
      ins_plain) record 'single-row version INSERTs, 4 clients' 'no trigger' true "$tps" tps ;;
      ins_collect) record 'single-row version INSERTs, 4 clients' 'collect.create_latest' false "$tps" tps ;;
      ins_hand) record 'single-row version INSERTs, 4 clients' 'hand-written PL/pgSQL row trigger (inserts only)' false "$tps" tps ;;
    esac
  done
done

# Backfilling 1M files from 10M versions: a single UPDATE (every file locked until it ends)
# against collect.backfill_latest in committed batches of 10,000. Copies are cleared first.
clear="UPDATE files SET latest_size = NULL, latest_checksum = NULL, latest_created_at = NULL"
one_update="UPDATE files f SET latest_size = v.size, latest_checksum = v.checksum, latest_created_at = v.created_at
              FROM (SELECT DISTINCT ON (file_id) file_id, size, checksum, created_at FROM versions
                     ORDER BY file_id, created_at DESC, id DESC) v WHERE v.file_id = f.id"
for run in 1 2 3; do
  psql_at "$BENCH_PORT" "$db" -c "$clear" -c "VACUUM files" >/dev/null
  s=$(seconds -c "$one_update")
  record 'backfill 1M files from 10M versions' 'one UPDATE ... FROM (SELECT DISTINCT ON ...)' true "$s * 1000" ms 1000000
  psql_at "$BENCH_PORT" "$db" -c "$clear" -c "VACUUM files" >/dev/null
  s=$(seconds -c "CALL collect.backfill_latest('files', 10000)")
  record 'backfill 1M files from 10M versions' 'CALL collect.backfill_latest(files, 10000)' false "$s * 1000" ms 1000000
done

# Application inserts (4 clients, single-row) alone and while a backfill runs.
for run in 1 2 3; do
  read -r _ lat < <(pgbench_tps "$work/app.sql" 4 8)
  record 'version INSERT latency, 4 clients' 'no backfill running' true "$lat" 'ms latency'
  psql_at "$BENCH_PORT" "$db" -c "$clear" -c "VACUUM files" >/dev/null
  psql_at "$BENCH_PORT" "$db" -c "SET client_min_messages = warning" -c "CALL collect.backfill_latest('files', 10000)" >/dev/null &
  fill=$!
  sleep 1
  read -r _ lat < <(pgbench_tps "$work/app.sql" 4 8)
  wait $fill
  record 'version INSERT latency, 4 clients' 'during collect.backfill_latest (batches of 10,000)' false "$lat" 'ms latency'
done
psql_at "$BENCH_PORT" "$db" -c "SELECT count(*) AS wrong FROM collect.check_latest('files')" -tA | grep -qx 0 ||
  echo "bench: the backfill left wrong copies" >&2
rm -rf "$work"
