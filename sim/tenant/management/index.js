// The Management API: the configuration endpoints auth0-deploy-cli calls on `a0deploy import`
// (Actions and bindings, connections, Rules, clients: one file each here) over the deployed
// store (store.js), and the users' endpoints (users.js). Shapes and status codes follow the
// Management API v2; choices where the platform is not documented are in sim/FIDELITY.md.
'use strict';
const store = require('./store');
const { actionRoutes } = require('./actions');
const { connectionRoutes } = require('./connections');
const { ruleRoutes } = require('./rules');
const { clientRoutes } = require('./clients');

/** Registers every configuration endpoint on the tenant's Fastify app. */
function managementRoutes(app, store, { clients, base }) {
  actionRoutes(app, store);
  connectionRoutes(app, store, () => Object.keys(clients));
  ruleRoutes(app, store);
  clientRoutes(app, store, clients, base);
}

module.exports = { ...store, managementRoutes };
