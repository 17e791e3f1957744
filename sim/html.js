// HTML for the simulator's pages: lib/web.js's escaping and template, named here for the pages
// that have always imported them from the simulator.
'use strict';
const { esc, html, raw } = require('../lib/web');

module.exports = { esc, html, raw };
