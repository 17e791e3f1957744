#!/usr/bin/env bash
# The test command: set up, build the artefacts, then lint and run every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
bash scripts/build.sh
echo "== cargo fmt --check, clippy"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
echo "== Rust tests"
cargo test --quiet
echo "== Node tests (built artefacts in an Auth0-like sandbox)"
node --test --test-reporter=spec --test-reporter-destination=stdout tests/node/
