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
# deployment), every format by default, with the small allocator and SHA-2 as a loop.
LOGIN_FEATURES="${LOGIN_FEATURES:-formats-all},compact-digests,small-alloc"
login() { build "${LOGIN_OUT:-login}" -- --no-default-features --features "login,$LOGIN_FEATURES"; }
# The post-login chain is built all for size, with the small allocator and SHA-2 as a loop: the
# Action is 79.5 kB (Auth0's 100 000-byte limit; the aim is 80 000). Built for speed (rustc s,
# wasm-opt -O3, dlmalloc, unrolled SHA-2) it was 90.5 kB and 25 µs faster per login: measured with
# `node bench/run.js --chain`, 0.083 ms per login (chain_vs_baseline 2.81, rounds 1.94–3.36)
# against 0.058 ms (2.02, rounds 1.73–2.69), where a post-login Action spends tens of ms on the
# network. CHAIN_FEATURES, CHAIN_OPT_LEVEL and CHAIN_WASM_OPT try other choices.
chain() {
  OPT_LEVEL="${CHAIN_OPT_LEVEL:-z}" WASM_OPT="${CHAIN_WASM_OPT:--Oz}" build "${CHAIN_OUT:-chain}" -- \
    --no-default-features --features "${CHAIN_FEATURES:-chain,small-alloc,compact-digests}"
}
# ONLY=login or ONLY=chain builds that variant alone (into LOGIN_OUT or CHAIN_OUT).
case "${ONLY:-}" in
  login) login; exit 0 ;;
  chain) chain; exit 0 ;;
esac
login
build lookup -- --no-default-features --features lookup,small-alloc
chain
build full
