// What every Management API endpoint shares: error bodies, the two paginations, `fields`.
'use strict';
const crypto = require('crypto');

const uuid = () => crypto.randomUUID();
const now = () => new Date().toISOString();
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const STATUS = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 409: 'Conflict', 429: 'Too Many Requests', 503: 'Service Unavailable' };
/** An error as the Management API answers it: `{statusCode, error, message, errorCode?}`. */
const err = (reply, statusCode, message, errorCode) => reply.code(statusCode).send({ statusCode, error: STATUS[statusCode], message, ...(errorCode ? { errorCode } : {}) });

const int = (v, d) => (v === undefined || v === '' || !/^\d+$/.test(String(v)) ? d : Number(v));
/** `page`/`per_page`/`include_totals`: an array, or `{[key], total, start, limit}` with totals. */
function paged(items, q, key) {
  const perPage = Math.min(100, Math.max(1, int(q.per_page, 50)));
  const page = int(q.page, 0);
  const slice = q.page === undefined && q.per_page === undefined ? items.slice(0, 100) : items.slice(page * perPage, (page + 1) * perPage);
  if (String(q.include_totals) === 'true') return { [key]: slice, total: items.length, start: page * perPage, limit: perPage };
  return slice;
}
/** Checkpoint pagination (`from`, `take`): `{[key], next}` with `next` absent on the last page. */
function checkpoint(items, q, key) {
  const take = Math.min(100, Math.max(1, int(q.take, 50)));
  const from = int(q.from, 0);
  const slice = items.slice(from, from + take);
  return { [key]: slice, ...(from + take < items.length ? { next: String(from + take) } : {}) };
}
function fieldsOf(obj, q) {
  if (!q.fields) return obj;
  const fields = String(q.fields).split(',');
  const include = String(q.include_fields) !== 'false';
  return Object.fromEntries(Object.entries(obj).filter(([k]) => fields.includes(k) === include));
}

// --- Actions ---

module.exports = { uuid, now, clone, err, int, paged, checkpoint, fieldsOf };
