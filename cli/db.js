// The database module is lib/db.js; the Node tests require it by this path.
'use strict';
module.exports = require('../lib/db');
