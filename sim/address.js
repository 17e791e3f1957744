// The simulated tenant's one notion of "the same address": the core's `normalize_email`, the
// project's canonical address (DESIGN.md, "Ownership"). Every place the tenant stores, compares,
// searches or mails an address goes through here, so a mail and a reset can never disagree on
// whose address it is.
'use strict';
const { loadCore } = require('../js-shim/node');

let core = null;

/**
 * The canonical form of `raw`, or null when it has none that is safe to use. Auth0 stores an
 * address lower-cased with JavaScript's full Unicode `toLowerCase` and treats addresses that fold
 * to the same string as one; an address whose canonical form would still fold further (a core
 * that folds less than the tenant does) or is not stable under a second pass is refused rather
 * than stored or mailed as a second spelling of someone's address.
 */
function canonicalAddress(raw) {
  if (typeof raw !== 'string') return null;
  core = core || loadCore('full');
  const r = core.call('normalize_email', { email: raw });
  if (!r || r.outcome !== 'ok' || typeof r.email !== 'string') return null;
  const c = r.email;
  if (c.toLowerCase() !== c) return null;
  const again = core.call('normalize_email', { email: c });
  if (!again || again.outcome !== 'ok' || again.email !== c) return null;
  return c;
}

module.exports = { canonicalAddress };
