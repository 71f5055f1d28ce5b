#!/usr/bin/env bash
# Installs what `make fuzz-smoke` and `make fuzz` need, idempotently and fast
# when it is already there: cargo-fuzz (from crates.io, built once and kept
# under target/tools/ so CI's cache of target/ keeps it) and the nightly
# toolchain cargo-fuzz builds with (-Zsanitizer needs nightly).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
root=target/tools

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "setup-fuzz: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi

have=$("$root/bin/cargo-fuzz" --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$CARGO_FUZZ_VERSION" ]; then
  echo "setup-fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $root"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$root"
fi
echo "setup-fuzz: ok ($("$root/bin/cargo-fuzz" --version))"
