#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes (ingest/parse/fuzz) with cargo-fuzz and libFuzzer, each
# target for SECONDS, and fails if any target crashed. Seeds come from the repository (fuzz/seeds,
# the sample corpus and site layouts); the growing
# corpus and any crash inputs are kept outside it, in $FUZZ_DIR. Prints executions per target.
#
#   scripts/fuzz.sh SECONDS [TARGET...]            (make fuzz)
#   scripts/fuzz.sh --smoke SECONDS [TARGET...]    (make fuzz-smoke, CI: the repository's seeds
#                                                   only and a fixed seed, so a run is repeatable)
#
# cargo-fuzz needs unstable compiler flags (the sanitizer and coverage instrumentation): they are
# unlocked on the machine's one toolchain with RUSTC_BOOTSTRAP, as for qdrant-edge (ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=false
if [ "${1:-}" = --smoke ]; then
  smoke=true
  shift
fi
seconds=${1:?usage: fuzz.sh [--smoke] SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(html markdown pdf jsonl text chunker sse site_layout site_page robots sitemap)
FUZZ_DIR=${FUZZ_DIR:-$HOME/.cache/lariat/fuzz}
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  # unoptimised: it only drives the build, and compiles in a fraction of the time
  cargo install --quiet --locked --debug cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export RUSTC_BOOTSTRAP=1
# The fuzz crate is a workspace of its own, built apart from the product's target directory.
export CARGO_TARGET_DIR="$FUZZ_DIR/target"
cd ingest/parse
# A long run is worth an optimised build under AddressSanitizer; the smoke (seeds only, seconds
# per target) is not: it builds in the dev profile without the sanitizer (the parsers are safe
# Rust: what it looks for is a panic, a hang or a blown memory limit), a fraction of the time.
if $smoke; then
  profile=(--dev --sanitizer none)
else
  profile=(--release --debug-assertions)
fi
cargo fuzz build "${profile[@]}"

# One target per core at a time (libFuzzer runs one process per target): the smoke's eleven
# targets take half the time on two cores. FUZZ_JOBS sets how many run together.
jobs=${FUZZ_JOBS:-$(nproc)}
status_dir=$(mktemp -d)
fuzz_one() {
  local t=$1 corpus="$FUZZ_DIR/corpus/$1" log="$FUZZ_DIR/$1.log" extra=() seeds=()
  if $smoke; then
    corpus=$(mktemp -d)
    extra=(-seed=1)
    # apart from a long run's logs, which may be open at the same time
    log="$FUZZ_DIR/smoke/$t.log"
    mkdir -p "$FUZZ_DIR/smoke"
  fi
  # seeds: the target's own, and the sample corpus and site layouts the repository already has
  [ -d "fuzz/seeds/$t" ] && seeds+=("fuzz/seeds/$t")
  case $t in
    html | markdown | pdf | text) seeds+=(../../deploy/domains/rodeo/corpus) ;;
    site_layout) seeds+=(../../deploy/domains/rodeo/sites) ;;
  esac
  local artifacts="$FUZZ_DIR/artifacts/$t/" status=ok
  mkdir -p "$corpus" "$artifacts"
  # -timeout: one input taking longer is a finding (the worker's time limit contains it in
  # production, but a parser that hangs is still a bug to know of); -rss_limit_mb likewise.
  if ! cargo fuzz run "${profile[@]}" "$t" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$artifacts" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
    status=CRASH
  fi
  if $smoke; then
    rm -rf "$corpus"
  fi
  echo "$status $log $artifacts" >"$status_dir/$t"
}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n
  done
  fuzz_one "$t" &
done
wait

summary=()
failed=0
for t in "${targets[@]}"; do
  read -r status log artifacts <"$status_dir/$t"
  runs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  summary+=("$(printf '%-11s %-6s %12s executions in %ss' "$t" "$status" "$runs" "$seconds")")
  if [ "$status" = CRASH ]; then
    failed=1
    echo "== $t crashed; the input is in $artifacts; the end of its log:"
    tail -40 "$log"
  fi
done
rm -rf "$status_dir"
printf '%s\n' "${summary[@]}"
exit $failed
