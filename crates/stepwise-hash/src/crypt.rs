//! The iterated-digest password hashes of crypt(3) and PHP, a bounded number of rounds at a time:
//! md5-crypt (`$1$`, Apache's `$apr1$`), sha256-crypt and sha512-crypt (`$5$`, `$6$`, Ulrich
//! Drepper's specification), and phpass (`$P$`/`$H$` over MD5, Drupal 7's `$S$` over SHA-512).
//!
//! The output is the hash part of the crypt string in its own alphabet (`./0-9A-Za-z`), exactly
//! as the reference implementations write it, so the caller compares it with the stored text.

use alloc::vec::Vec;
use md5::Md5;
use sha2::digest::Digest;
use sha2::{Sha256, Sha512};

/// crypt's and phpass's base-64 alphabet.
pub const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub use crate::CryptKind as Kind;

/// The digest's output length in bytes.
fn len(kind: Kind) -> usize {
    match kind {
        Kind::Md5Crypt | Kind::Apr1 | Kind::PhpassMd5 => 16,
        Kind::Sha256Crypt => 32,
        Kind::Sha512Crypt | Kind::PhpassSha512 => 64,
    }
}

/// The digest of the concatenation of `parts`.
fn hash(kind: Kind, parts: &[&[u8]]) -> Vec<u8> {
    fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        d.finalize().to_vec()
    }
    match kind {
        Kind::Md5Crypt | Kind::Apr1 | Kind::PhpassMd5 => run::<Md5>(parts),
        Kind::Sha256Crypt => run::<Sha256>(parts),
        Kind::Sha512Crypt | Kind::PhpassSha512 => run::<Sha512>(parts),
    }
}

/// `bytes` repeated to exactly `len` bytes.
fn repeat_to(bytes: &[u8], len: usize) -> Vec<u8> {
    bytes.iter().copied().cycle().take(len).collect()
}

/// One computation.
pub struct Crypt {
    kind: Kind,
    /// The password (crypt) or, for sha-crypt, the P sequence; phpass appends it each round.
    p: Vec<u8>,
    /// sha-crypt's S sequence, md5-crypt's salt.
    s: Vec<u8>,
    /// The running digest.
    c: Vec<u8>,
    done: u32,
    rounds: u32,
}

impl Crypt {
    /// Sets up the computation. `rounds` is the number of rounds (md5-crypt: ignored, always
    /// 1000; sha-crypt: 1000 to 999 999 999; phpass: the iteration count itself, 2^n). The setup
    /// hashes the password a number of times proportional to its length (sha-crypt: its square),
    /// so the caller bounds the password's length.
    pub fn new(kind: Kind, password: &[u8], salt: &[u8], rounds: u32) -> Self {
        let pw = password;
        let size = len(kind);
        match kind {
            Kind::Md5Crypt | Kind::Apr1 => {
                let magic: &[u8] = if kind == Kind::Apr1 { b"$apr1$" } else { b"$1$" };
                let alt = hash(kind, &[pw, salt, pw]);
                let mut ctx = Md5::new();
                ctx.update(pw);
                ctx.update(magic);
                ctx.update(salt);
                ctx.update(repeat_to(&alt, pw.len()));
                let mut i = pw.len();
                while i > 0 {
                    if i & 1 == 1 {
                        ctx.update([0u8]);
                    } else {
                        ctx.update(pw.get(..1).unwrap_or(&[0]));
                    }
                    i >>= 1;
                }
                Crypt {
                    kind,
                    p: pw.to_vec(),
                    s: salt.to_vec(),
                    c: ctx.finalize().to_vec(),
                    done: 0,
                    rounds: 1000,
                }
            }
            Kind::Sha256Crypt | Kind::Sha512Crypt => {
                let b = hash(kind, &[pw, salt, pw]);
                let mut a: Vec<u8> = [pw, salt, &repeat_to(&b, pw.len())].concat();
                let mut i = pw.len();
                while i > 0 {
                    a.extend_from_slice(if i & 1 == 1 { &b } else { pw });
                    i >>= 1;
                }
                let a = hash(kind, &[&a]);
                let dp = hash(kind, &[&repeat_to(pw, pw.len() * pw.len())]);
                let first = usize::from(a.first().copied().unwrap_or(0));
                let ds = hash(kind, &[&repeat_to(salt, salt.len() * (16 + first))]);
                Crypt {
                    kind,
                    p: repeat_to(&dp, pw.len()),
                    s: repeat_to(&ds, salt.len().min(size)),
                    c: a,
                    done: 0,
                    rounds,
                }
            }
            Kind::PhpassMd5 | Kind::PhpassSha512 => Crypt {
                kind,
                p: pw.to_vec(),
                s: Vec::new(),
                c: hash(kind, &[salt, pw]),
                done: 0,
                rounds,
            },
        }
    }

    /// Runs at most `rounds` (at least one) rounds; true once the output is ready.
    pub fn step(&mut self, rounds: u32) -> bool {
        let end = self.rounds.min(self.done.saturating_add(rounds.max(1)));
        let (p, s) = (self.p.as_slice(), self.s.as_slice());
        while self.done < end {
            let i = self.done;
            self.c = match self.kind {
                Kind::PhpassMd5 | Kind::PhpassSha512 => hash(self.kind, &[&self.c, p]),
                _ => {
                    let c = self.c.as_slice();
                    let first = if i & 1 == 1 { p } else { c };
                    let salt: &[u8] = if i % 3 != 0 { s } else { &[] };
                    let mid: &[u8] = if i % 7 != 0 { p } else { &[] };
                    let last = if i & 1 == 1 { c } else { p };
                    hash(self.kind, &[first, salt, mid, last])
                }
            };
            self.done += 1;
        }
        self.done >= self.rounds
    }

    /// The hash part of the crypt string, once done.
    pub fn output(&self) -> Option<Vec<u8>> {
        if self.done < self.rounds {
            return None;
        }
        let f = |i: usize| u32::from(self.c.get(i).copied().unwrap_or(0));
        let mut out = Vec::new();
        let mut put = |v: u32, n: usize| {
            let mut v = v;
            for _ in 0..n {
                out.push(ITOA64.get((v & 0x3f) as usize).copied().unwrap_or(b'.'));
                v >>= 6;
            }
        };
        let groups: &[(usize, usize, usize)] = match self.kind {
            Kind::Md5Crypt | Kind::Apr1 => &MD5_ORDER,
            Kind::Sha256Crypt => &SHA256_ORDER,
            Kind::Sha512Crypt => &SHA512_ORDER,
            Kind::PhpassMd5 => return Some(phpass_encode(&self.c)),
            // Drupal 7 keeps 55 characters of the string: 43 of the hash.
            Kind::PhpassSha512 => {
                let mut text = phpass_encode(&self.c);
                text.truncate(43);
                return Some(text);
            }
        };
        for &(a, b, c) in groups {
            put((f(a) << 16) | (f(b) << 8) | f(c), 4);
        }
        match self.kind {
            Kind::Md5Crypt | Kind::Apr1 => put(f(11), 2),
            Kind::Sha256Crypt => put((f(31) << 8) | f(30), 3),
            _ => put(f(63), 2),
        }
        Some(out)
    }
}

impl Drop for Crypt {
    fn drop(&mut self) {
        for b in self.p.iter_mut().chain(self.s.iter_mut()).chain(self.c.iter_mut()) {
            *b = 0;
        }
    }
}

const MD5_ORDER: [(usize, usize, usize); 5] = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];
const SHA256_ORDER: [(usize, usize, usize); 10] = [
    (0, 10, 20),
    (21, 1, 11),
    (12, 22, 2),
    (3, 13, 23),
    (24, 4, 14),
    (15, 25, 5),
    (6, 16, 26),
    (27, 7, 17),
    (18, 28, 8),
    (9, 19, 29),
];
const SHA512_ORDER: [(usize, usize, usize); 21] = [
    (0, 21, 42),
    (22, 43, 1),
    (44, 2, 23),
    (3, 24, 45),
    (25, 46, 4),
    (47, 5, 26),
    (6, 27, 48),
    (28, 49, 7),
    (50, 8, 29),
    (9, 30, 51),
    (31, 52, 10),
    (53, 11, 32),
    (12, 33, 54),
    (34, 55, 13),
    (56, 14, 35),
    (15, 36, 57),
    (37, 58, 16),
    (59, 17, 38),
    (18, 39, 60),
    (40, 61, 19),
    (62, 20, 41),
];

/// phpass's `encode64`: little-endian groups of three bytes, six bits a character.
pub fn phpass_encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in input.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (k, b)| v | (u32::from(*b) << (8 * k)));
        for k in 0..=chunk.len() {
            out.push(ITOA64.get(((v >> (6 * k)) & 0x3f) as usize).copied().unwrap_or(b'.'));
        }
    }
    out
}
