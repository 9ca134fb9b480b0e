#!/usr/bin/env bash
# Make sure PostgreSQL (5432) and Redis (6379) answer on 127.0.0.1; start them if this machine
# has them installed but stopped. Exits non-zero when one stays unreachable.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  return 1
}

if ! port_open 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | head -n 1)
  [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
if ! port_open 6379 && command -v redis-server >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi

status=0
wait_port 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; status=1; }
wait_port 6379 || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; status=1; }
exit $status
