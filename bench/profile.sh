#!/usr/bin/env bash
# Callgrind profile of the filter's per-request core (examples/hot_path.rs):
# the cache-hit path, the miss path (parse + checks + a host-like verifier
# stub) and the cache-off path. Instruction counts do not depend on what
# else the machine is doing, unlike `make bench`.
#
#   bench/profile.sh            # builds, profiles, prints the top costs
#   PROFILE_TOP=40 bench/profile.sh
#
# Output: target/profile/callgrind/<mode>.out (open with callgrind_annotate
# or kcachegrind) and <mode>.txt (inclusive costs, top PROFILE_TOP lines).
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/need.sh
need valgrind valgrind profile

# The release profile of the wasm build (opt-levels per crate, LTO), with
# line tables so callgrind can name inlined code; a separate target dir so
# the normal release build is not rebuilt back and forth.
export CARGO_TARGET_DIR=target/profile
export CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
export CARGO_PROFILE_RELEASE_STRIP=false
cargo build --release --example hot_path
bin=target/profile/release/examples/hot_path
out=target/profile/callgrind
mkdir -p "$out"

echo "native timing (not under valgrind; noisy if the machine is busy):"
"$bin"

top=${PROFILE_TOP:-30}
for mode in hit miss nocache; do
  case $mode in
    hit) n=10000 ;;
    *) n=4000 ;;
  esac
  # Only the measured loop is counted: run_loop is called once to warm up
  # (1 request) and once for the n requests.
  valgrind --tool=callgrind --callgrind-out-file="$out/$mode.out" \
    --toggle-collect='hot_path::run_loop*' "$bin" "$mode" "$n" 2>"$out/$mode.log" >/dev/null
  total=$(sed -n 's/^==[0-9]*== Collected : //p' "$out/$mode.log" | tr -d ,)
  echo
  echo "== $mode: $total instructions / $((n + 1)) requests = $((total / (n + 1))) per request"
  callgrind_annotate --inclusive=yes "$out/$mode.out" 2>/dev/null \
    | sed -n '/file:function/,$p' | sed -n '3,$p' | grep -v '^--\|^$' \
    | grep -v 'libc-start\|libc_start_call_main\|backtrace\|(below main)\|ld-linux\|???:main\|hot_path::main\|hot_path::run \|hot_path::run_loop' \
    | sed -n "1,${top}p" | cut -c1-200 | tee "$out/$mode.txt"
done
