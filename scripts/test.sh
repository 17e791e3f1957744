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
echo "== Rust tests (every feature, then the login build that leaves digests to the host)"
cargo test --quiet
cargo test --quiet --no-default-features --features login
echo "== Node tests (built artefacts in an Auth0-like sandbox)"
node --test --test-reporter=spec --test-reporter-destination=stdout tests/node/
