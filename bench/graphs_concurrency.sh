# Sourced by scripts/bench.sh after bench/graphs.sql: single edge writes under 8 clients
# (pgbench), spread over many nodes and all onto one popular node, against the hand-written
# FlockDB schema's transaction (both tables and the counts row).

work=$(mktemp -d)
cat >"$work/hand_spread.sql" <<'SQL'
\set s random(1, 1000000)
\set d random(1, 1000000)
BEGIN;
INSERT INTO flock_out VALUES (:s + 10000000, :d, 0, :d) ON CONFLICT (source, destination) DO UPDATE SET state = 0;
INSERT INTO flock_in VALUES (:d, :s + 10000000, 0, :d) ON CONFLICT (destination, source) DO UPDATE SET state = 0;
INSERT INTO flock_counts VALUES (:s + 10000000, 'o', 0, 1) ON CONFLICT (node, direction, state) DO UPDATE SET n = flock_counts.n + 1;
INSERT INTO flock_counts VALUES (:d, 'i', 0, 1) ON CONFLICT (node, direction, state) DO UPDATE SET n = flock_counts.n + 1;
COMMIT;
SQL
sed 's/:d/7/g; s/\\set d random(1, 1000000)//' "$work/hand_spread.sql" >"$work/hand_hot.sql"
cat >"$work/collect_spread.sql" <<'SQL'
\set s random(1, 1000000)
\set d random(1, 1000000)
SELECT collect.edge_add('follows', :s + 10000000, :d);
SQL
printf '%s\n' '\set s random(1, 1000000)' "SELECT collect.edge_add('follows', :s + 20000000, 7);" >"$work/collect_hot.sql"
sed "s/'follows'/'plain'/" "$work/collect_spread.sql" >"$work/plain_spread.sql"
sed "s/'follows'/'plain'/" "$work/collect_hot.sql" >"$work/plain_hot.sql"

for run in 1 2 3; do
  record 'edge_add, 8 clients, random nodes' 'hand-written FlockDB transaction' true "$(pgbench_tps "$work/hand_spread.sql" 8 5 | cut -d" " -f1)" tps
  record 'edge_add, 8 clients, random nodes' 'collect.edge_add' false "$(pgbench_tps "$work/collect_spread.sql" 8 5 | cut -d" " -f1)" tps
  record 'edge_add, 8 clients, random nodes' 'collect.edge_add without compact lists' false "$(pgbench_tps "$work/plain_spread.sql" 8 5 | cut -d" " -f1)" tps
  record 'edge_add, 8 clients, all following one node' 'hand-written FlockDB transaction (one counts row)' true "$(pgbench_tps "$work/hand_hot.sql" 8 5 | cut -d" " -f1)" tps
  record 'edge_add, 8 clients, all following one node' 'collect.edge_add (striped counts)' false "$(pgbench_tps "$work/collect_hot.sql" 8 5 | cut -d" " -f1)" tps
  record 'edge_add, 8 clients, all following one node' 'collect.edge_add without compact lists' false "$(pgbench_tps "$work/plain_hot.sql" 8 5 | cut -d" " -f1)" tps
done
psql_at "$BENCH_PORT" "$db" -tA -c "SELECT collect.edge_count('follows', 7, 'in') = (SELECT count(*) FROM follows_in WHERE destination = 7 AND state = 0)" |
  grep -qx t || echo "bench: the count of node 7 is wrong" >&2
rm -rf "$work"
