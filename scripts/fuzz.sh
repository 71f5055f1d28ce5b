#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each one for a while,
# one after another, failing on the first crash (see FUZZING.md).
#
#   scripts/fuzz.sh smoke          # ~25 s per target (FUZZ_SMOKE_SECONDS)
#   scripts/fuzz.sh long           # 600 s per target (FUZZ_SECONDS)
#   scripts/fuzz.sh long token     # only the named targets
#
# The build and the grown corpora live under target/fuzz (CI caches
# target/): long runs write new inputs to target/fuzz/corpus/<target>,
# smoke runs start from the checked-in seeds (fuzz/corpus/<target>) alone
# every time. Crashes land in
# fuzz/artifacts/<target>/ with the reproduction command in the output.
# Runs are niced: the machine is shared with timing-sensitive tests.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-smoke}
shift || true
case "$mode" in
  smoke) seconds=${FUZZ_SMOKE_SECONDS:-25} ;;
  long) seconds=${FUZZ_SECONDS:-600} ;;
  *)
    echo "usage: $0 smoke|long [target...]" >&2
    exit 2
    ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(token jwks config request)
fi

./scripts/setup-fuzz.sh >/dev/null
export PATH="$PWD/target/tools/bin:$PATH"
export CARGO_TARGET_DIR="$PWD/target/fuzz"
# cargo-fuzz's defaults: release, debug assertions and overflow checks,
# AddressSanitizer.
build_flags=(--debug-assertions)

# The seed tests first: the harness decides every seed as documented.
nice -n 19 cargo +nightly test --quiet --manifest-path fuzz/Cargo.toml --lib
nice -n 19 cargo +nightly fuzz build "${build_flags[@]}"

max_len() {
  case "$1" in
    token) echo 10000 ;; # past the 8 KiB token limit
    jwks | config) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

logs=target/fuzz/logs
mkdir -p "$logs"
for t in "${targets[@]}"; do
  corpus=target/fuzz/corpus/$t
  if [ "$mode" = smoke ]; then
    # From the seeds alone, so a smoke run costs the same however much the
    # long runs' corpora have grown.
    corpus=target/fuzz/smoke-corpus/$t
    rm -rf "$corpus"
  fi
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  dict=()
  case "$t" in token | jwks | config) dict=(-dict=fuzz/jwt.dict) ;; esac
  echo "fuzz: $t for ${seconds}s (log: $logs/$t-$mode.log)"
  start=$(date +%s)
  status=0
  nice -n 19 cargo +nightly fuzz run "${build_flags[@]}" "$t" "$corpus" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" >"$logs/$t-$mode.log" 2>&1 || status=$?
  took=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t-$mode.log" | tail -1)
  cov=$(grep -E '^#[0-9]+.*cov:' "$logs/$t-$mode.log" | tail -1 | sed -n 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\).*/\1 \2/p')
  # libFuzzer's corpus size after loading (seeds + earlier finds) and at the end.
  corp() { grep -E "^#[0-9]+[[:space:]]+$1" "$logs/$t-$mode.log" | tail -1 | sed -n 's/.*corp: \([0-9]*\).*/\1/p'; }
  echo "fuzz: $t: ${runs:-?} executions in ${took}s, $cov, corpus $(corp INITED) -> $(corp DONE) inputs"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $status); the end of the log:" >&2
    tail -40 "$logs/$t-$mode.log" >&2
    exit "$status"
  fi
done
echo "fuzz: ${#targets[@]} target(s), no crash"
