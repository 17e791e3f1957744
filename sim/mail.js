// The mail catcher: a real SMTP server on localhost that keeps every message it receives, and a
// nodemailer transport pointed at it for the tenant (and later the merge service).
'use strict';
const { SMTPServer } = require('smtp-server');
const nodemailer = require('nodemailer');
const { canonicalAddress } = require('./address');

const FROM = 'no-reply@tenant.trickle.test';

/** The mailbox an SMTP path names: a local part sent as one quoted string is shown unquoted. */
function mailbox(address) {
  const m = /^"((?:[^"\\]|\\.)*)"@([^@]+)$/.exec(String(address || ''));
  return m ? `${m[1].replace(/\\(.)/g, '$1')}@${m[2]}` : address;
}

/**
 * Starts the SMTP catcher. Returns `{port, messages, transport, send, setMode, close}`.
 * `setMode('reject')` makes the server refuse every recipient (550), `setMode('up')` undoes it.
 */
async function startMail({ port = 0 } = {}) {
  const messages = [];
  const mode = { reject: false };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    banner: 'trickle simulator mail catcher',
    onRcptTo(address, session, callback) {
      if (!mode.reject) return callback();
      const e = new Error(`<${address.address}>: Recipient address rejected: mailbox unavailable`);
      e.responseCode = 550;
      return callback(e);
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const header = (name) => {
          const m = raw.match(new RegExp(`^${name}:\\s*(.*)$`, 'mi'));
          return m ? m[1].trim() : '';
        };
        const body = raw.split(/\r?\n\r?\n/).slice(1).join('\n\n');
        messages.push({
          id: messages.length + 1, at: new Date().toISOString(),
          from: session.envelope.mailFrom && session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => mailbox(r.address)), subject: header('Subject'),
          // Quoted-printable soft breaks and escapes are undone so links can be followed.
          text: body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)))
        });
        callback();
      });
    }
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
  const actual = server.server.address().port;
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: actual, secure: false, ignoreTLS: true });
  /**
   * Sends `{to, subject, text}` to exactly one recipient: `to` must be one canonical address (as
   * the tenant stores it). It is handed to nodemailer as an address object, header and envelope
   * alike, so nothing re-parses it: `a,b@x.com` is one mailbox, never `b@x.com`.
   */
  async function send({ to, subject, text }) {
    if (typeof to !== 'string' || canonicalAddress(to) !== to) {
      throw new Error('the mailer sends only to one canonical address');
    }
    return transport.sendMail({
      from: FROM, to: { name: '', address: to }, subject, text,
      envelope: { from: FROM, to: [{ name: '', address: to }] }
    });
  }
  return {
    port: actual, messages, transport, send,
    setMode: (m) => { mode.reject = m === 'reject'; return { mode: mode.reject ? 'reject' : 'up' }; },
    close: () => new Promise((r) => { transport.close(); server.close(r); })
  };
}

module.exports = { startMail };
