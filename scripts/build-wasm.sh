#!/usr/bin/env bash
# Builds the three wasm variants with wasm-pack and shrinks them with binaryen's wasm-opt (npm).
#   pkg/login: custom-DB login script (password verification)
#   pkg/lookup: custom-DB getUser script (profiles only, no password verification)
#   pkg/chain: post-login Action and Rules (tokens, metadata, fan-out)
#   pkg/full:  the Node tools (simulator, merge service, CLI, benchmarks)
set -euo pipefail
cd "$(dirname "$0")/.."
OPT=node_modules/.bin/wasm-opt
# strip = true drops the target_features section, so the features rustc used are named here.
FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext
          --enable-mutable-globals --enable-reference-types --enable-multivalue)
# OPT_LEVEL (rustc) and WASM_OPT (binaryen) choose size or speed per variant.
build() {
  local name=$1; shift
  CARGO_PROFILE_RELEASE_OPT_LEVEL="${OPT_LEVEL:-z}" wasm-pack --quiet build --release --target no-modules --no-typescript --no-pack \
    --out-dir "pkg/$name" "$@" ${CARGO_CONFIG:-} >/dev/null
  # --converge repeats until nothing shrinks; the low kilobyte of memory is never used (the
  # stack sits below the data, far above it) and a new instance's memory is zero.
  "$OPT" "${WASM_OPT:--Oz}" --converge --low-memory-unused --zero-filled-memory "${FEATURES[@]}" "pkg/$name/trickle_bg.wasm" -o "pkg/$name/trickle_bg.wasm"
  printf '  pkg/%-6s %7d bytes of wasm\n' "$name" "$(wc -c < "pkg/$name/trickle_bg.wasm")"
}
# The login script carries the password formats LOGIN_FEATURES names (cargo features, see
# Cargo.toml: fmt-argon2, fmt-digests, fmt-crypt, …; `node rules/build.js --formats` sets it for a
# deployment), every format by default. ONLY=login builds that variant alone into LOGIN_OUT.
LOGIN_FEATURES="${LOGIN_FEATURES:-formats-all},compact-digests"
if [ "${ONLY:-}" = login ]; then
  build "${LOGIN_OUT:-login}" -- --no-default-features --features "login,$LOGIN_FEATURES"
  exit 0
fi
build login -- --no-default-features --features "login,$LOGIN_FEATURES"
build lookup -- --no-default-features --features lookup
# The post-login chain runs at every login, but with the step machine its artefact has no room
# for a speed build (107 kB against Auth0's 100 000 bytes): built for size by rustc, for speed
# by wasm-opt, with sha2 (the session token's HMAC) at opt-level 3 (Cargo.toml). Measured with
# `node bench/run.js --chain`: chain_vs_baseline 1.89 this way, 1.98 all for size, 1.78 all
# for speed (which does not fit).
OPT_LEVEL=s WASM_OPT=-O3 build chain -- --no-default-features --features chain
build full
