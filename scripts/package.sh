#!/usr/bin/env bash
# Builds a Debian package of the extension for the system PostgreSQL 15: the library, the
# control file, the current release's install script, every frozen release's install script
# and every update script. It depends on postgresql-15 only (no Rust on the machine that
# installs it). Prints the package's path as its last line.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
"$REPO/scripts/setup.sh" >&2
version=$(current_release)
arch=$(dpkg --print-architecture)
cargo pgrx package --pg-config "$PG_CONFIG" >&2
tree="$REPO/target/release/pg_collect-pg$PG_MAJOR"
extdir="$tree$("$PG_CONFIG" --sharedir)/extension"
for release in $(frozen_releases); do
  [ "$release" = "$version" ] && continue # the build wrote it
  install -m 644 "sql/pg_collect--$release.sql" "$extdir/"
done
install -m 644 sql/pg_collect--*--*.sql "$extdir/"
mkdir -p "$tree/DEBIAN"
cat > "$tree/DEBIAN/control" <<CONTROL
Package: postgresql-$PG_MAJOR-pg-collect
Version: $version
Architecture: $arch
Maintainer: pg_collect developers <pg_collect@localhost>
Depends: postgresql-$PG_MAJOR, libc6, libgcc-s1
Section: database
Priority: optional
Description: pg_collect, data-shape tricks of large systems for PostgreSQL $PG_MAJOR
 Append-only collections with read-time reducers, minute rollups with mergeable sketches,
 a denormalized latest-version trigger, edge lists, and archives in gzipped JSON lumps.
 After installing, run CREATE EXTENSION pg_collect (or ALTER EXTENSION pg_collect UPDATE
 in each database that has an older release).
CONTROL
mkdir -p target/package
deb="$REPO/target/package/postgresql-$PG_MAJOR-pg-collect_${version}_$arch.deb"
dpkg-deb --root-owner-group --build "$tree" "$deb" >&2
echo "$deb"
