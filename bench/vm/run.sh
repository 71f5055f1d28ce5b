#!/usr/bin/env bash
# `make bench-vm` (after `make wasm bench-floor`): the filter's own cost per
# request inside V8, without Envoy (bench/vm/run.mjs). Mints the bench's
# key and a token with the test kit, and compares the module against bench/floor and, with
# BENCH_BASELINE_WASM=<file>, another build. Needs Node.js (any recent
# one: it embeds V8, as Envoy does); installs it from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

. bench/need.sh
need node nodejs bench-vm

# A fresh key and token each run (minting one takes a second; a kept token
# would expire).
tokens=target/bench/vm-tokens
.venv/bin/python - "$tokens" <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
import bench
out = sys.argv[1]
info = bench.tokgen.generate(out, 1)
with open(os.path.join(out, "jwks.json"), "w") as f:
    json.dump(info["jwks"], f)
with open(os.path.join(out, "token.txt"), "w") as f:
    f.write(info["token"])
PY

modules=("jwt_policy=${JWT_POLICY_WASM:-target/wasm32-wasip1/release/jwt_policy.wasm}")
if [ -n "${BENCH_BASELINE_WASM:-}" ]; then
  modules=("baseline=$BENCH_BASELINE_WASM" "${modules[@]}")
fi
pin=()
if command -v taskset >/dev/null 2>&1; then pin=(taskset -c 0); fi
# --no-liftoff: what Envoy passes V8 (TurboFan only, compiled at load).
exec "${pin[@]}" node --no-liftoff bench/vm/run.mjs --tokens "$tokens" \
  --rounds "${BENCH_VM_ROUNDS:-7}" --requests "${BENCH_VM_REQUESTS:-100000}" \
  --floor "${BENCH_FLOOR_WASM:-target/floor/wasm32-wasip1/release/bench_floor.wasm}" "${modules[@]}"
