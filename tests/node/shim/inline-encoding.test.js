// The artefacts carry their compressed wasm and source as base-85 text (rules/build.js b85): every
// length and byte value round-trips through the decoder the artefacts run (js-shim/shim.js
// trickleB85), and the text holds no character a JavaScript string, a template literal or
// deploy-cli's keyword replacement could read into.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const crypto = require('crypto');
const { b85 } = require('../../../rules/build');

// The decoder exactly as the artefacts inline it (a function declaration of shim.js).
const ctx = vm.createContext({});
vm.runInContext(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'js-shim', 'shim.js'), 'utf8').split('// @end-inline')[0], ctx);
const decode = (s) => Buffer.from(ctx.trickleB85(s));

test('base-85 text round-trips every length and byte value, and is 5/4 of the bytes', () => {
  for (let n = 0; n <= 64; n++) {
    for (const fill of [0x00, 0xff, null]) {
      const buf = fill === null ? crypto.randomBytes(n) : Buffer.alloc(n, fill);
      const text = b85(buf);
      assert.equal(text.length, Math.floor(n / 4) * 5 + (n % 4 ? n % 4 + 1 : 0), `length ${n}`);
      assert.deepEqual(decode(text), buf, `${n} bytes of ${fill}`);
    }
  }
  const big = crypto.randomBytes(200003);
  assert.deepEqual(decode(b85(big)), big);
});

test('the built artefacts hold no quote, backslash, @, #, $, backtick or brace inside their inlined text', () => {
  for (const file of ['auth0/actions/trickle-post-login/code.js', 'auth0/database-connections/trickle/login.js', 'auth0/database-connections/trickle/get_user.js']) {
    const text = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'dist', file), 'utf8');
    for (const name of ['TRICKLE_WASM', 'TRICKLE_SRC']) {
      const m = new RegExp(`var ${name} = "([^"]*)";`).exec(text);
      assert.ok(m && m[1].length > 1000, `${file}: ${name}`);
      assert.doesNotMatch(m[1], /["'\\@#$`{}\s]/, `${file}: ${name}`);
    }
  }
});
