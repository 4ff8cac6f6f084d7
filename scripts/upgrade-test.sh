#!/usr/bin/env bash
# The upgrade test (tests/upgrade): for every frozen release, a database made with it and full
# of objects (before.sql) is updated in place (ALTER EXTENSION pg_collect UPDATE), must give the
# same answers and take new writes (after.sql), and must then equal a fresh install of the
# current version in the catalogs, object by object (catalog.sql). Runs against the test
# cluster that scripts/test.sh starts.
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
out="$REPO/target/upgrade"
rm -rf "$out"; mkdir -p "$out"
psql_() { PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$TEST_PORT" -U "$DB_USER" "$@"; }
fresh_db() { psql_ -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }

current=$(current_release)
fresh_db upgrade_fresh || exit 1
psql_ -d upgrade_fresh -c "CREATE EXTENSION pg_collect" || exit 1
psql_ -At -d upgrade_fresh -f tests/upgrade/catalog.sql > "$out/fresh.catalog" || exit 1

# A dump of a database made with RELEASE, restored into a new database. The current release's
# dump restores as it is: CREATE EXTENSION there makes it, and the registries' rows load into
# it. An older release's dump names objects that a later release renamed (README, Renames), so
# it restores as the README says: pg_collect created at the dump's release first (the dump's
# CREATE SCHEMA left out, its CREATE EXTENSION IF NOT EXISTS then a no-op), then updated. Either
# way everything answers as before and the catalogs equal a fresh install's.
dump_and_restore() { # dump_and_restore RELEASE
  local release=$1 db="dumped_from_${1//./_}" restored="restored_from_${1//./_}" list=()
  if ! { fresh_db "$db" &&
         psql_ -d "$db" -c "CREATE EXTENSION pg_collect VERSION '$release'" -f tests/upgrade/before.sql > /dev/null &&
         "$PG_BIN/pg_dump" -Fc -h 127.0.0.1 -p "$TEST_PORT" -U "$DB_USER" -f "$out/$db.dump" "$db" &&
         fresh_db "$restored" &&
         if [ "$release" != "$current" ]; then
           psql_ -d "$restored" -c "CREATE EXTENSION pg_collect VERSION '$release'" &&
           "$PG_BIN/pg_restore" -l "$out/$db.dump" | grep -v ' SCHEMA - collect ' > "$out/$db.list" && list=(-L "$out/$db.list")
         fi &&
         "$PG_BIN/pg_restore" --exit-on-error "${list[@]}" -h 127.0.0.1 -p "$TEST_PORT" -U "$DB_USER" -d "$restored" "$out/$db.dump" &&
         psql_ -d "$restored" -c "ALTER EXTENSION pg_collect UPDATE" &&
         [ "$(psql_ -At -d "$restored" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_collect'")" = "$current" ] &&
         psql_ -d "$restored" -f tests/upgrade/after.sql > "$out/$restored.after" &&
         psql_ -At -d "$restored" -f tests/upgrade/catalog.sql > "$out/$restored.catalog" &&
         diff -u "$out/fresh.catalog" "$out/$restored.catalog" > "$out/$restored.diff"; }; then
    echo "upgrade: a dump made on $release, restored into $current, failed (outputs in $out)"
    [ -s "$out/$restored.diff" ] && cat "$out/$restored.diff"
    return 1
  fi
  echo "upgrade: a dump made on $release restores into $current: same answers, new writes work, same catalog"
}

failed=0 releases=$(frozen_releases)
[ -n "$releases" ] || { echo "upgrade: no frozen release in sql/"; exit 1; }
for release in $releases; do
  [ "$release" = "$current" ] && continue # released_unchanged below
  db="upgrade_from_${release//./_}"
  echo "upgrade: $release -> $current"
  if ! { fresh_db "$db" &&
         psql_ -d "$db" -c "CREATE EXTENSION pg_collect VERSION '$release'" -f tests/upgrade/before.sql > "$out/$db.before" &&
         psql_ -d "$db" -c "ALTER EXTENSION pg_collect UPDATE" &&
         [ "$(psql_ -At -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_collect'")" = "$current" ] &&
         psql_ -d "$db" -f tests/upgrade/after.sql > "$out/$db.after" &&
         psql_ -At -d "$db" -f tests/upgrade/catalog.sql > "$out/$db.catalog"; }; then
    echo "upgrade: from $release failed (outputs in $out)"; failed=1; continue
  fi
  if ! diff -u "$out/fresh.catalog" "$out/$db.catalog" > "$out/$db.diff"; then
    echo "upgrade: from $release, the updated extension differs from a fresh install of $current:"
    cat "$out/$db.diff"; failed=1; continue
  fi
  echo "upgrade: from $release: same answers, new writes work, catalog equals a fresh install ($(wc -l < "$out/fresh.catalog") lines)"
done
# Once the current release is frozen, this build must create exactly what it created: its
# frozen script, installed under another version name, must make the same objects (with the
# same answers and the same catalog) as the build's own.
released_unchanged() {
  local released db="upgrade_released_${current//./_}"
  released=$(as_released "$current")
  if ! { fresh_db "$db" &&
         psql_ -d "$db" -c "CREATE EXTENSION pg_collect VERSION '$released'" -f tests/upgrade/before.sql > "$out/$db.before" &&
         psql_ -d "$db" -f tests/upgrade/after.sql > "$out/$db.after" &&
         psql_ -At -d "$db" -f tests/upgrade/catalog.sql > "$out/$db.catalog"; }; then
    echo "upgrade: release $current as frozen in sql/pg_collect--$current.sql failed (outputs in $out)"
    return 1
  fi
  if ! diff -u "$out/$db.catalog" "$out/fresh.catalog" > "$out/$db.diff"; then
    echo "upgrade: this build creates other objects than release $current did (sql/pg_collect--$current.sql; its lines are the - ones):"
    cat "$out/$db.diff"
    echo "upgrade: a change to what the extension creates is a new release: raise the version in Cargo.toml and write sql/pg_collect--$current--<new>.sql (README, Versions and upgrades)"
    return 1
  fi
  echo "upgrade: this build creates what release $current (frozen) created: same answers, same catalog"
}
if printf '%s\n' $releases | grep -qx "$current"; then
  released_unchanged || failed=1
fi
# 0.3.0 renames parameters, which Postgres does only by dropping the function: a user's view
# that calls one stops the update from 0.2.0 with a message naming it, and changes nothing.
blocked_update_names_its_cause() {
  local db=upgrade_blocked message
  fresh_db "$db" &&
    psql_ -d "$db" -c "CREATE EXTENSION pg_collect VERSION '0.2.0'" -c "SELECT collect.create_graph('follows')" \
          -c "CREATE VIEW my_follows AS SELECT * FROM collect.edges('follows', 1)" > /dev/null || return 1
  message=$(psql_ -d "$db" -c "ALTER EXTENSION pg_collect UPDATE" 2>&1)
  if ! grep -q 'these objects use: view public.my_follows' <<< "$message" ||
     [ "$(psql_ -At -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_collect'")" != 0.2.0 ] ||
     ! psql_ -d "$db" -c "DROP VIEW my_follows" -c "ALTER EXTENSION pg_collect UPDATE" > /dev/null; then
    echo "upgrade: an update blocked by a user's view did not say so, or did not stay at 0.2.0: $message"
    return 1
  fi
  echo "upgrade: an update that a user's view blocks names the view and changes nothing; without it, it runs"
}
if printf '%s\n' $releases | grep -qx 0.2.0; then blocked_update_names_its_cause || failed=1; fi
for release in $(printf '%s\n' $releases "$current" | sort -uV); do dump_and_restore "$release" || failed=1; done
exit $failed
