// The mail catcher: a real SMTP server on localhost that keeps every message it receives, and a
// nodemailer transport pointed at it for the tenant (and later the merge service).
'use strict';
const { SMTPServer } = require('smtp-server');
const nodemailer = require('nodemailer');

/** Starts the SMTP catcher. Returns `{port, messages, transport, send, close}`. */
async function startMail({ port = 0 } = {}) {
  const messages = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    banner: 'trickle simulator mail catcher',
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
          to: session.envelope.rcptTo.map((r) => r.address), subject: header('Subject'),
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
  return {
    port: actual, messages, transport,
    send: (mail) => transport.sendMail({ from: 'no-reply@tenant.trickle.test', ...mail }),
    close: () => new Promise((r) => { transport.close(); server.close(r); })
  };
}

module.exports = { startMail };
