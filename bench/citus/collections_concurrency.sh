# Sourced by scripts/bench-citus.sh after bench/citus/collections.sql: appends and reads of one
# key each (pgbench, 4 clients) on Citus against one node.
work=$(mktemp -d)
for c in notes local_notes; do
  echo "SELECT collect.append('$c', 1 + (random() * 9999)::int8, '{\"n\": 1}');" >"$work/append_$c.sql"
  echo "SELECT collect.read('$c', 1 + (random() * 9999)::int8);" >"$work/read_$c.sql"
done
for run in 1 2 3; do
  for op in append read; do
    read -r tps _ < <(pgbench_tps "$work/${op}_local_notes.sql" 4 5)
    record "Citus: collect.$op of one key, 4 clients" 'one node' true "$tps" tps
    read -r tps _ < <(pgbench_tps "$work/${op}_notes.sql" 4 5)
    record "Citus: collect.$op of one key, 4 clients" 'Citus (2 workers, 4 shards)' false "$tps" tps
  done
done
rm -rf "$work"
