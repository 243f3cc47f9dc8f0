#!/usr/bin/env bash
# A three-node site on this machine, for trying several nodes out: a throwaway PostgreSQL
# server (tools/postgres.sh, Debian's `postgresql`) and three device-sync nodes over it, n1, n2
# and n3 on ports 8081, 8082 and 8083, sharing one admin token. Ctrl-C stops everything and
# deletes the database.
#
#   tools/cluster.sh path/to/device-sync
#
# CLUSTER_DIR (data/cluster) keeps the nodes' data directories and the admin token; PG_PORT
# (55434) is the database's port.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:?usage: $0 path/to/device-sync}
dir=${CLUSTER_DIR:-data/cluster}
pg_port=${PG_PORT:-55434}
mkdir -p "$dir"
# Outside the clone: PostgreSQL runs as its own user, which must reach its data directory.
pg_dir=$(mktemp -d /tmp/device-sync-cluster.XXXXXX)
chmod 755 "$pg_dir"
nodes=()

finish() {
  trap - INT TERM EXIT
  echo
  echo "== stopping the nodes"
  for pid in "${nodes[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${nodes[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "== stopping PostgreSQL"
  tools/postgres.sh stop "$pg_dir/pg" || true
  rm -rf "$pg_dir"
}
trap 'finish; exit 0' INT TERM
trap finish EXIT

url=$(tools/postgres.sh start "$pg_dir/pg" "$pg_port")
echo "== PostgreSQL at $url"
token_file="$dir/admin-token"
if [[ ! -s "$token_file" ]]; then
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$token_file"
  chmod 600 "$token_file"
fi
token=$(cat "$token_file")

for n in 1 2 3; do
  DEVICE_SYNC__SERVER__PORT="808$n" \
  DEVICE_SYNC__SERVER__DATA_DIR="$dir/n$n" \
  DEVICE_SYNC__DATABASE__URL="$url" \
  DEVICE_SYNC__CLUSTER__NODE_ID="n$n" \
  DEVICE_SYNC__AUTH__ADMIN_TOKEN="$token" \
    "$binary" serve > >(sed -u "s/^/[n$n] /") 2>&1 &
  nodes+=("$!")
  echo "$!" >"$dir/n$n.pid"
done

cat <<INFO
== three nodes: http://127.0.0.1:8081  http://127.0.0.1:8082  http://127.0.0.1:8083
   admin token: $token_file; each node's process id: $dir/n1.pid, n2.pid, n3.pid
   a node's view of the site:   curl -s http://127.0.0.1:8082/system/health
   the admin page:              http://127.0.0.1:8081/admin
   Ctrl-C stops them all.
INFO
wait
