#!/usr/bin/env bash
# `make bench` (after `make wasm`): installs wrk from Debian if it is missing,
# then runs bench/bench.py with the project's .venv (Envoy comes from
# `make setup`; keys and tokens from the test kit). BENCH_QUICK=1 for a short run; see bench/bench.py
# for the other knobs.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/need.sh
need wrk wrk bench
if ! command -v taskset >/dev/null 2>&1; then
  echo "bench: taskset (util-linux) not found; running unpinned"
  export BENCH_PIN=0
fi

# A session of its own, so bench.py can raise its autogroup priority
# without touching anyone else's processes (see raise_autogroup there).
exec setsid --wait .venv/bin/python bench/bench.py "$@"
