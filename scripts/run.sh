#!/usr/bin/env bash
# Builds and installs pg_collect (release), starts the demo cluster, creates a database with
# the extension and runs the walkthrough in demo/demo.sql. Safe to rerun.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO"
"$REPO/scripts/setup.sh"
install_extension --release
"$REPO/scripts/cluster.sh" start demo "$DEMO_PORT"
psql_at "$DEMO_PORT" postgres -c "DROP DATABASE IF EXISTS pg_collect_demo" \
  -c "CREATE DATABASE pg_collect_demo"
psql_at "$DEMO_PORT" pg_collect_demo -c "CREATE EXTENSION pg_collect"
psql_at "$DEMO_PORT" pg_collect_demo -e -f demo/demo.sql
cat <<MSG

pg_collect is installed and the demo cluster is running on 127.0.0.1:$DEMO_PORT.
  connect:  $PG_BIN/psql -h 127.0.0.1 -p $DEMO_PORT -U $DB_USER pg_collect_demo
  stop:     make stop
MSG
