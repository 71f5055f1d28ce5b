#!/usr/bin/env bash
# Installs what `make demo` (scripts/demo.py) needs into the project's .venv,
# pinned, idempotently, and fast when everything is already there:
#   - ministack: a Cognito emulator (user pools, resource servers, app clients,
#     domains, /oauth2/token client credentials, per-pool RS256 keys and
#     /<poolId>/.well-known/jwks.json). docker-compose.yml pins the same
#     version of its image (ministackorg/ministack:<version>).
#   - cryptography: ministack signs tokens with real RSA keys only when it is
#     installed (without it, tokens carry a random signature that no JWKS
#     verifies); the official image ships it.
#   - boto3: the demo's Cognito API client (the calls `aws cognito-idp` makes).
#     Its version follows the botocore that ministack pins exactly.
#   - PyYAML: the demo reads envoy.yaml (ministack depends on it too).
# Called by scripts/setup.sh, so `make setup`, `make test` and `make demo` all
# have it.
set -euo pipefail
cd "$(dirname "$0")/.."

MINISTACK_VERSION=1.5.33
CRYPTOGRAPHY_VERSION=50.0.2
BOTO3_VERSION=1.43.106
PYYAML_VERSION=6.0.3

if [ ! -x .venv/bin/python ]; then
  echo "setup-demo: creating .venv"
  python3 -m venv .venv
fi

# One interpreter start checks every pin (pip show is slow, and its output
# piped into `grep -q` can fail the pipeline under pipefail).
pins=("ministack==$MINISTACK_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION"
      "boto3==$BOTO3_VERSION" "PyYAML==$PYYAML_VERSION")
if ! .venv/bin/python - "${pins[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
  echo "setup-demo: installing ministack==$MINISTACK_VERSION (Cognito emulator) and its demo client into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${pins[@]}"
fi
echo "setup-demo: ok (ministack $MINISTACK_VERSION, boto3 $BOTO3_VERSION)"
