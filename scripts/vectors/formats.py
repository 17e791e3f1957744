#!/usr/bin/env python3
"""Writes tests/fixtures/formats.json: the legacy password formats outside Auth0's list, each
made by the framework that writes it or by an independent implementation, never by trickle.

    python3 -m venv /tmp/vec && /tmp/vec/bin/pip install passlib==1.7.4 django==5.2.* \
        werkzeug==3.1.* bcrypt==5.* argon2-cffi==25.*
    /tmp/vec/bin/python scripts/vectors/formats.py > tests/fixtures/formats.json

Sources: passlib 1.7.4 (crypt(3), phpass, LDAP {CRYPT}), Django 5.2's own hashers, Werkzeug
3.1's generate_password_hash, pyca/bcrypt, Python's hashlib and hmac (WordPress 6.8's
wp_hash_password, Drupal 7's _password_crypt and ASP.NET Identity's PasswordHasher, each
transcribed from that project's source), and Firebase's published test vector
(github.com/firebase/scrypt, README)."""
import base64, hashlib, hmac, json, os, sys

import bcrypt
import django
from django.conf import settings
from passlib import hash as ph
from werkzeug.security import generate_password_hash

settings.configure(PASSWORD_HASHERS=[
    'django.contrib.auth.hashers.PBKDF2PasswordHasher',
    'django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher',
    'django.contrib.auth.hashers.Argon2PasswordHasher',
    'django.contrib.auth.hashers.BCryptSHA256PasswordHasher',
    'django.contrib.auth.hashers.BCryptPasswordHasher',
    'django.contrib.auth.hashers.ScryptPasswordHasher',
])
django.setup()
from django.contrib.auth.hashers import make_password, check_password  # noqa: E402

PASSWORDS = ['correct horse battery staple', 'pässwörd ✓', 'x', 'a' * 80]
out = []


def add(algorithm, value, password, source, **extra):
    d = {'algorithm': algorithm, 'hash': {'value': value}}
    d.update(extra)
    out.append({'descriptor': d, 'password': password, 'source': source})


ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'


def php_encode64(data, count):
    """phpass's _hash_encode64, transcribed from Drupal 7 includes/password.inc."""
    output, i = '', 0
    while True:
        value = data[i]; i += 1
        output += ITOA64[value & 0x3f]
        if i < count:
            value |= data[i] << 8
        output += ITOA64[(value >> 6) & 0x3f]
        if i >= count:
            break
        i += 1
        if i < count:
            value |= data[i] << 16
        output += ITOA64[(value >> 12) & 0x3f]
        if i >= count:
            break
        i += 1
        output += ITOA64[(value >> 18) & 0x3f]
        if i >= count:
            break
    return output


def drupal7(password, setting):
    """Drupal 7's _password_crypt('sha512', …), cut to DRUPAL_HASH_LENGTH (55)."""
    count = 1 << ITOA64.index(setting[3])
    salt = setting[4:12]
    pw = password.encode()
    h = hashlib.sha512(salt.encode() + pw).digest()
    for _ in range(count):
        h = hashlib.sha512(h + pw).digest()
    return (setting[:12] + php_encode64(h, len(h)))[:55]


def wordpress(password):
    """WordPress 6.8's wp_hash_password: '$wp' . password_hash(base64(hmac_sha384(pw, 'wp-sha384')))."""
    pre = base64.b64encode(hmac.new(b'wp-sha384', password.encode(), hashlib.sha384).digest())
    return '$wp' + bcrypt.hashpw(pre, bcrypt.gensalt(10, prefix=b'2b')).decode().replace('$2b$', '$2y$', 1)


def aspnet_v2(password, salt):
    key = hashlib.pbkdf2_hmac('sha1', password.encode(), salt, 1000, 32)
    return base64.b64encode(b'\x00' + salt + key).decode()


def aspnet_v3(password, salt, prf, iterations):
    name = {0: 'sha1', 1: 'sha256', 2: 'sha512'}[prf]
    key = hashlib.pbkdf2_hmac(name, password.encode(), salt, iterations, 32)
    header = b'\x01' + prf.to_bytes(4, 'big') + iterations.to_bytes(4, 'big') + len(salt).to_bytes(4, 'big')
    return base64.b64encode(header + salt + key).decode()


for pw in PASSWORDS:
    add('crypt', ph.md5_crypt.hash(pw), pw, 'passlib md5_crypt')
    add('crypt', ph.apr_md5_crypt.hash(pw), pw, 'passlib apr_md5_crypt')
    add('crypt', ph.sha256_crypt.using(rounds=5000).hash(pw), pw, 'passlib sha256_crypt, glibc default rounds')
    add('crypt', ph.sha512_crypt.using(rounds=5000).hash(pw), pw, 'passlib sha512_crypt, glibc default rounds')
    add('ldap', ph.ldap_sha512_crypt.using(rounds=5000).hash(pw), pw, 'passlib ldap_sha512_crypt')
    add('phpass', ph.phpass.using(rounds=13).hash(pw), pw, 'passlib phpass, WordPress count (2^13)')
    add('phpass', ph.phpass.using(rounds=11, ident='H').hash(pw), pw, 'passlib phpass $H$, phpBB count (2^11)')
    add('wordpress', wordpress(pw), pw, 'WordPress 6.8 wp_hash_password (pyca/bcrypt, hmac)')
    add('wordpress', ph.phpass.using(rounds=13).hash(pw), pw, 'passlib phpass as WordPress before 6.8')
    add('wordpress', hashlib.md5(pw.encode()).hexdigest(), pw, 'WordPress before 2.5: MD5 hex')
    setting = '$S$D' + ''.join(ITOA64[b & 0x3f] for b in os.urandom(8))
    add('drupal7', drupal7(pw, setting), pw, 'Drupal 7 _password_crypt (hashlib), DRUPAL_HASH_COUNT 15')
    add('drupal7', 'U' + drupal7(hashlib.md5(pw.encode()).hexdigest(), setting), pw, 'Drupal 7 U$ (Drupal 6 MD5 upgraded)')
    add('django', make_password(pw, hasher='pbkdf2_sha256'), pw, 'Django 5.2 PBKDF2PasswordHasher (1 000 000 iterations)')
    add('django', make_password(pw, hasher='pbkdf2_sha1'), pw, 'Django 5.2 PBKDF2SHA1PasswordHasher')
    add('django', make_password(pw, hasher='bcrypt_sha256'), pw, 'Django 5.2 BCryptSHA256PasswordHasher')
    add('django', make_password(pw, hasher='scrypt'), pw, 'Django 5.2 ScryptPasswordHasher')
    add('werkzeug', generate_password_hash(pw), pw, 'Werkzeug 3.1 generate_password_hash (scrypt default)')
    add('werkzeug', generate_password_hash(pw, method='pbkdf2'), pw, 'Werkzeug 3.1 pbkdf2 default (sha256)')
    add('aspnet-identity', aspnet_v2(pw, os.urandom(16)), pw, 'ASP.NET Identity v2 layout (hashlib)')
    add('aspnet-identity', aspnet_v3(pw, os.urandom(16), 1, 10000), pw, 'ASP.NET Identity v3, .NET Core 2-6 default (HMAC-SHA256, 10 000)')
    add('aspnet-identity', aspnet_v3(pw, os.urandom(16), 2, 100000), pw, 'ASP.NET Identity v3, .NET 7+ default (HMAC-SHA512, 100 000)')

# The slow defaults once each: bcrypt's 72-byte cut makes the long password pointless there.
pw = PASSWORDS[0]
add('django', make_password(pw, hasher='argon2'), pw, 'Django 5.2 Argon2PasswordHasher (m=102400, t=2, p=8)')
add('django', make_password(pw, hasher='bcrypt'), pw, 'Django 5.2 BCryptPasswordHasher')
add('crypt', ph.sha512_crypt.hash(pw), pw, 'passlib sha512_crypt default rounds (656 000)')
add('crypt', ph.sha256_crypt.hash(pw), pw, 'passlib sha256_crypt default rounds (535 000)')
add('crypt', bcrypt.hashpw(pw.encode(), bcrypt.gensalt(10)).decode(), pw, 'pyca/bcrypt in crypt(3) form')
add('firebase-scrypt', 'lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==',
    'user1password', "Firebase's published test vector (github.com/firebase/scrypt README)",
    salt={'value': '42xEC+ixf3L2lw==', 'encoding': 'base64'},
    firebase={'signer_key': 'jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==',
              'salt_separator': 'Bw==', 'rounds': 8, 'mem_cost': 14})

# Each framework's own check accepts what it wrote (a transcription error would show here).
for v in out:
    d, pw = v['descriptor'], v['password']
    if d['algorithm'] == 'django':
        assert check_password(pw, d['hash']['value']), v['source']
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write('\n')
