# jwt-policy: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
WASM := target/wasm32-wasip1/release/jwt_policy.wasm
export ENVOY_BIN := $(CURDIR)/.venv/envoy
export JWT_POLICY_WASM := $(CURDIR)/$(WASM)
# The crate version: the tag `make oci` gives the image.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
# tools/oci-image is its own workspace (the filter's Cargo.lock stays as it
# is); it builds into target/tools.
OCI_TOOL := --manifest-path tools/oci-image/Cargo.toml --target-dir target/tools --locked

.PHONY: setup wasm test lint unit integration demo oci

setup:
	@./scripts/setup.sh

# The module, then tools/wasm-trim: only the proxy-wasm callbacks the
# filter implements stay exported (`CALLBACKS` in src/filter/mod.rs); Envoy
# enters the VM on every request for each one exported.
wasm: setup
	$(CARGO) build --release --target wasm32-wasip1 -p jwt-policy --lib
	$(CARGO) run --quiet --release -p wasm-trim -- $(WASM)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 --lib -- -D warnings
	$(CARGO) fmt --check --manifest-path tools/oci-image/Cargo.toml
	$(CARGO) clippy $(OCI_TOOL) --all-targets -- -D warnings

unit:
	$(CARGO) test --lib

integration: wasm
	$(CARGO) test --test '*'

# Lints, the unit and Envoy integration tests (incl. the CLI, the demo and
# the deployment files) and the test kit's own tests (testkit/ is a
# workspace member), the OCI image builder's tests (on the wasm just
# built), then the fuzz smoke runs.
test: setup lint wasm
	$(CARGO) test --all-targets
	$(CARGO) test $(OCI_TOOL) --all-targets
	$(MAKE) fuzz-smoke

# The filter as an OCI image layout in target/oci (Istio's Wasm image
# format, no Docker needed, reproducible), tagged with the crate version.
# Prints the manifest digest to pin (WasmPlugin spec.sha256) and the push
# command (README.md, "Packaging the filter").
oci: wasm
	$(CARGO) run --quiet $(OCI_TOOL) -- --wasm $(WASM) --out target/oci --tag $(VERSION)

# The Cognito client-credentials walkthrough through Envoy and the filter:
# setup (incl. scripts/setup-demo.sh) and the wasm build come from `wasm`.
# DEMO_ARGS=--serve keeps everything running after the walkthrough.
demo: wasm
	.venv/bin/python scripts/demo.py run $(DEMO_ARGS)

# The `jwt-policy` command line (docs/cli.md), built in release mode and
# installed into ~/.cargo/bin (CLI_ROOT=DIR installs into DIR/bin instead).
.PHONY: cli schema
cli:
	$(CARGO) install --locked --path . --bin jwt-policy $(if $(CLI_ROOT),--root $(CLI_ROOT))

# Regenerates schema/jwt-policy.schema.json from src/config.rs; tests/cli.rs
# fails while the committed copy is out of date.
schema:
	$(CARGO) run --quiet --bin jwt-policy -- schema > schema/jwt-policy.schema.json.tmp
	mv schema/jwt-policy.schema.json.tmp schema/jwt-policy.schema.json

# Fuzzing (cargo-fuzz on nightly, FUZZING.md). fuzz-smoke: the seed tests
# and ~25 s of each target (FUZZ_SMOKE_SECONDS), failing on any crash.
# fuzz: long runs, FUZZ_SECONDS per target (default 600), one at a time.
.PHONY: fuzz-smoke fuzz
fuzz-smoke:
	./scripts/fuzz.sh smoke

fuzz:
	./scripts/fuzz.sh long

# Benchmark against Envoy's native jwt_authn (bench/RESULTS.md): one Envoy
# with no auth, native jwt_authn+RBAC, the filter, and two floors (the filter
# with an anonymous rule; bench/floor, an empty proxy-wasm filter), then the
# same on two workers; wrk. About 15 minutes. BENCH_QUICK=1 for a short run
# (results then go to target/bench/RESULTS-quick.md); BENCH_PROBES=1 prices
# each kind of hostcall (target/bench/PROBES.md). Installs wrk from Debian if
# missing.
.PHONY: bench bench-floor bench-vm
bench: wasm bench-floor
	./bench/run.sh

# The module's own cost per request in V8 (Node), without Envoy: precise to
# a few ns, for A/B of code changes (BENCH_BASELINE_WASM=<file>).
bench-vm: wasm bench-floor
	./bench/vm/run.sh

# The runtime's floor for `make bench`: its own workspace, built into
# target/floor.
bench-floor:
	$(CARGO) build --release --target wasm32-wasip1 --manifest-path bench/floor/Cargo.toml --target-dir target/floor
	$(CARGO) run --quiet --release -p wasm-trim -- target/floor/wasm32-wasip1/release/bench_floor.wasm
