#!/usr/bin/env bash
# A copy of the project's Envoy whose V8 writes a perf map, so `perf` names
# the filter's wasm functions inside Envoy (bench/PROFILE.md, "Inside V8").
#
#   bench/perf-envoy.sh            # -> target/prof/envoy-perf
#
# Envoy (proxy-wasm-cpp-host, src/v8/v8.cc) hands V8 one fixed flag string,
# "--no-liftoff --wasm_max_mem_pages=%u --stack-trace-limit=%u", and has no
# option to add to it. The copy's string is, in the same bytes,
# "--perf-basic-prof --no-liftoff --stack-trace-limit=%u%u": V8 then writes
# /tmp/perf-<pid>.map, still compiles with TurboFan only, and keeps its
# default memory limit (the two numbers run together into the stack-trace
# limit, which is harmless). For profiling only; never deploy the copy.
#
# Then, for example (Envoy on core 0, wrk on core 1, the filter built with
# its name section: CARGO_PROFILE_RELEASE_STRIP=false):
#   taskset -c 0 target/prof/envoy-perf -c <bootstrap> --concurrency 1 &
#   taskset -c 1 wrk -t1 -c32 -d20s -s bench/wrk.lua http://127.0.0.1:<port>/api/v1/order &
#   perf record -F 4000 -g -p <envoy pid> -- sleep 10
#   perf report --no-children --sort sym
set -euo pipefail
cd "$(dirname "$0")/.."

src=$(.venv/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')
mkdir -p target/prof
.venv/bin/python - "$src" target/prof/envoy-perf <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
old = b"--no-liftoff --wasm_max_mem_pages=%u --stack-trace-limit=%u"
new = b"--perf-basic-prof --no-liftoff --stack-trace-limit=%u%u"
new += b" " * (len(old) - len(new))
if data.count(old) != 1:
    sys.exit(f"perf-envoy: V8's flag string is not in {src} exactly once; this Envoy differs")
open(dst, "wb").write(data.replace(old, new))
PY
chmod +x target/prof/envoy-perf
echo "perf-envoy: wrote target/prof/envoy-perf (V8 writes /tmp/perf-<pid>.map)"
