#!/usr/bin/env bash
# Runs the whole test suite (SQLite and PostgreSQL) with nextest when present, else cargo test.
set -euo pipefail
export LARIAT_TEST_POSTGRES_URL="${LARIAT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "test: PostgreSQL is not answering on 127.0.0.1:5432; trying to start it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test: Redis is not answering on 127.0.0.1:6379; trying to start it" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no || true
fi
# The e2e tests run the lariat binary: build it first (test builds only rebuild their own package's bins; --all-targets keeps one feature set, so nothing is built twice).
cargo build --workspace --all-targets
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
