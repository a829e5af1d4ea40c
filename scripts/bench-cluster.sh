#!/usr/bin/env bash
# The crowd bench of a shared deployment (`make bench-cluster`): a PostgreSQL 16 + pgvector server
# of its own (scripts/pgvector-server.sh), the MED collection ingested into it through the shared
# engines, then `lariat bench-cluster`: REPLICAS servers, USERS users searching and chatting
# (zero-latency provider), CURATORS curators uploading, for SECONDS. Loopback only.
#   scripts/bench-cluster.sh LARIAT_BINARY [OUT.json]
set -euo pipefail
cd "$(dirname "$0")/.."
lariat="${1:?usage: bench-cluster.sh LARIAT_BINARY [OUT.json]}"
out="${2:-}"
data="${DATA:-../shared/data/med}"
work="$(mktemp -d)"
[ "$(id -u)" = 0 ] && chmod 755 "$work"
port="${PORT:-55439}"
cleanup() {
  bash scripts/pgvector-server.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
url="$(bash scripts/pgvector-server.sh start "$work/pg" "$port")"
export LARIAT_DATABASE_URL="$url"
export LARIAT_RETRIEVAL__VECTOR_STORE=pgvector
export LARIAT_RETRIEVAL__LEXICAL_STORE=database
export LARIAT_AUTH__JWT_SECRET="$(head -c 32 /dev/urandom | base64)"
"$lariat" --data-dir "$work/ingest" ingest "$data/corpus.jsonl" --collection bench >&2
# the collection the curators upload into (collections are made by ingesting into them)
mkdir -p "$work/uploads"
printf '# Curators\n\nThe curators of this bench upload their notes here.\n' >"$work/uploads/readme.md"
"$lariat" --data-dir "$work/ingest" ingest "$work/uploads" --collection bench-uploads >&2
"$lariat" --data-dir "$work/bench" bench-cluster "$data/queries.jsonl" --collection bench \
  --replicas "${REPLICAS:-3}" --users "${USERS:-200}" --curators "${CURATORS:-2}" \
  --seconds "${SECONDS_:-300}" ${out:+--json "$out"}
