#!/usr/bin/env bash
# Builds the wasm variants and bundles the Auth0 artefacts into dist/auth0/, printing each size.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
echo "== wasm"
bash scripts/build-wasm.sh
echo "== Auth0 artefacts (limit 100 000 bytes each)"
node rules/build.js
