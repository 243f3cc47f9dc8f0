#!/usr/bin/env bash
# A throwaway PostgreSQL server from Debian's packages, for the tests and for `make cluster`:
# its own data directory, its own port on loopback, trust authentication, nothing kept.
#
#   tools/postgres.sh start DIR PORT   initialise DIR (if new) and start a server on PORT;
#                                      prints the URL of its `postgres` database
#   tools/postgres.sh stop DIR         stop the server whose data directory is DIR
#
# PostgreSQL refuses to run as root; as root the server runs as the `postgres` user that the
# Debian package creates (DIR is handed to that user).
set -euo pipefail

bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -z "$dir" || ! -x "$dir/postgres" ]]; then
    echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
    exit 2
  fi
  echo "$dir"
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

command=${1:-}
dir=${2:-}
[[ -n "$command" && -n "$dir" ]] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
bin=$(bin_dir)

case "$command" in
  start)
    port=${3:?usage: $0 start DIR PORT}
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    if [[ ! -f "$dir/PG_VERSION" ]]; then
      as_owner "$bin/initdb" --pgdata="$dir" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/../postgres-initdb.log" 2>&1 \
        || { cat "$dir/../postgres-initdb.log" >&2; exit 1; }
    fi
    # Loopback only, sockets in the data directory, enough connections for a test run's servers.
    as_owner "$bin/pg_ctl" --pgdata="$dir" --log="$dir/server.log" --wait --silent \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=400" \
      start || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bin/pg_ctl" --pgdata="$dir" --wait --silent --mode=fast stop
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
