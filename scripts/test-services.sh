#!/usr/bin/env bash
# Run a command with a throw-away PostgreSQL and Redis on loopback (in a temp dir), then stop both.
# Usage: scripts/test-services.sh <command...>   (DATABASE_URL and REDIS_URL are exported to it)
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d /tmp/studio-test.XXXXXX)
chmod 755 "$tmp"
free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
redis_port=$(free_port)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# PostgreSQL refuses to run as root: use the postgres system user then.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  mkdir -p "$tmp/pg" && chown postgres "$tmp/pg"
fi

cleanup() {
  status=$?
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/pg/data" -U studio --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$tmp/pg/data" -l "$tmp/pg/log" -w -o \
  "-p $pg_port -k $tmp/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null
"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U studio studio

redis_server=$(.venv/bin/python -c 'from studio.core.embedded_redis import redis_server_binary; print(redis_server_binary())')
"$redis_server" --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --daemonize yes \
  --pidfile "$tmp/redis.pid" --dir "$tmp" --logfile "$tmp/redis.log"

export DATABASE_URL="postgres://studio@127.0.0.1:$pg_port/studio"
export REDIS_URL="redis://127.0.0.1:$redis_port/0"
export STUDIO_DATA_DIR="$tmp/data"
export STUDIO_STATIC_ROOT="$tmp/static"
export SECRET_KEY="test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
echo "test services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
"$@"
