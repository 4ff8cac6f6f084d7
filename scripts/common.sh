# Shared settings for the scripts: sourced, not run.
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PG_REGRESS=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/test/regress/pg_regress
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

install_extension() { # install_extension [--release]
  (cd "$REPO" && cargo pgrx install --pg-config "$PG_CONFIG" "$@")
}
