//! bcrypt and argon2 computed a bounded amount of work at a time.
//!
//! A host that must keep its event loop turning (a Node container running many sign-ins) runs
//! these in slices of a few milliseconds. The state of one computation lives in a [`Bcrypt`] or
//! an [`Argon2`]; `step` advances it by at most the number of units asked for (bcrypt:
//! key-expansion rounds; argon2: memory blocks). The output is exactly that of the one-shot
//! computation. Its own crate so that it can be optimised for speed inside a build optimised
//! for size.
#![no_std]
extern crate alloc;

#[cfg(feature = "crypt")]
pub mod crypt;

/// The iterated-digest hashes of crypt(3) and phpass ([`crypt::Crypt`] computes them, with the
/// `crypt` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptKind {
    /// md5-crypt, `$1$`.
    Md5Crypt,
    /// Apache's md5-crypt, `$apr1$` (the same computation under another magic).
    Apr1,
    /// sha256-crypt, `$5$`.
    Sha256Crypt,
    /// sha512-crypt, `$6$`.
    Sha512Crypt,
    /// phpass over MD5 (`$P$`, `$H$`).
    PhpassMd5,
    /// phpass over SHA-512 (Drupal 7's `$S$`).
    PhpassSha512,
}


use alloc::vec::Vec;
use blake2::digest::{Digest as _, Update, VariableOutput};
use blake2::{Blake2b512, Blake2bVar};
use blowfish::Blowfish;

/// The argon2 variants, numbered as the algorithm numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// argon2d (0).
    D = 0,
    /// argon2i (1).
    I = 1,
    /// argon2id (2).
    Id = 2,
}

/// One bcrypt computation: EksBlowfishSetup's 2^cost rounds, then the 64 encryptions of
/// "OrpheanBeholderScryDoubt".
#[derive(Clone)]
pub struct Bcrypt {
    state: Blowfish,
    key: Vec<u8>,
    salt: [u8; 16],
    rounds_left: u64,
    out: Option<[u8; 24]>,
}

impl Bcrypt {
    /// Sets up the computation, with the password NUL-terminated and cut at 72 bytes as
    /// OpenBSD's `$2b$` does.
    pub fn new(cost: u32, salt: &[u8; 16], password: &[u8]) -> Self {
        let mut key: Vec<u8> = password.iter().copied().take(72).collect();
        if key.len() < 72 {
            key.push(0);
        }
        let mut state = Blowfish::bc_init_state();
        state.salted_expand_key(salt, &key);
        Bcrypt {
            state,
            key,
            salt: *salt,
            rounds_left: 1u64 << cost.min(31),
            out: None,
        }
    }

    /// Runs at most `rounds` (at least one) key-expansion rounds; true once the output is ready.
    pub fn step(&mut self, rounds: u32) -> bool {
        let n = self.rounds_left.min(u64::from(rounds.max(1)));
        for _ in 0..n {
            self.state.bc_expand_key(&self.key);
            self.state.bc_expand_key(&self.salt);
        }
        self.rounds_left -= n;
        if self.rounds_left == 0 && self.out.is_none() {
            self.out = Some(self.encrypt());
            self.key.fill(0);
        }
        self.out.is_some()
    }

    fn encrypt(&self) -> [u8; 24] {
        let mut ctext: [u32; 6] = [
            0x4f72_7068,
            0x6561_6e42,
            0x6568_6f6c,
            0x6465_7253,
            0x6372_7944,
            0x6f75_6274,
        ];
        let mut out = [0u8; 24];
        for (pair, chunk) in ctext.chunks_exact_mut(2).zip(out.chunks_exact_mut(8)) {
            if let [l, r] = pair {
                let mut block = [*l, *r];
                for _ in 0..64 {
                    block = self.state.bc_encrypt(block);
                }
                *l = block[0];
                *r = block[1];
                let bytes = [l.to_be_bytes(), r.to_be_bytes()].concat();
                chunk.copy_from_slice(&bytes);
            }
        }
        out
    }

    /// The salt.
    pub fn salt(&self) -> &[u8; 16] {
        &self.salt
    }

    /// The 24-byte output, once [`Bcrypt::step`] has returned true.
    pub fn output(&self) -> Option<[u8; 24]> {
        self.out
    }
}

impl Drop for Bcrypt {
    fn drop(&mut self) {
        self.key.fill(0);
    }
}

/// One argon2 memory block: 128 words.
type Block = [u64; 128];

/// argon2's synchronisation points per pass (slices).
const SYNC_POINTS: usize = 4;

/// One argon2 computation (RFC 9106, and version 0x10 before it), filled block by block.
pub struct Argon2 {
    /// The blocks, zeroed a bounded number at a time (64 MiB at once would stall the host).
    memory: Vec<Block>,
    /// How many blocks the memory holds once ready.
    blocks: usize,
    /// H0, until the first two blocks of every lane are made from it.
    h0: Option<[u8; 64]>,
    /// 0 (argon2d), 1 (argon2i) or 2 (argon2id), as the algorithm numbers them.
    kind: u32,
    version: u32,
    passes: usize,
    lanes: usize,
    lane_length: usize,
    segment_length: usize,
    out_len: usize,
    pass: usize,
    slice: usize,
    lane: usize,
    /// The block's position in the current segment.
    index: usize,
    /// True once the current segment's addressing state is set up.
    started: bool,
    address: Block,
    input: Block,
    out: Option<Vec<u8>>,
}

/// argon2's variable-length hash H' (RFC 9106 section 3.3).
fn blake2b_long(inputs: &[&[u8]], out: &mut [u8]) -> Option<()> {
    let len = u32::try_from(out.len()).ok()?.to_le_bytes();
    if out.len() <= 64 {
        let mut d = Blake2bVar::new(out.len()).ok()?;
        d.update(&len);
        for i in inputs {
            d.update(i);
        }
        return d.finalize_variable(out).ok();
    }
    let mut d = Blake2b512::new();
    Update::update(&mut d, &len);
    for i in inputs {
        Update::update(&mut d, i);
    }
    let mut last = d.finalize();
    let total = out.len();
    // 32-byte pieces of successive hashes while more than 64 bytes remain, then the rest whole.
    out.get_mut(..32)?.copy_from_slice(last.get(..32)?);
    let mut at = 32;
    while total - at > 64 {
        last = Blake2b512::digest(last);
        out.get_mut(at..at + 32)?.copy_from_slice(last.get(..32)?);
        at += 32;
    }
    let mut d = Blake2bVar::new(total - at).ok()?;
    d.update(&last);
    d.finalize_variable(out.get_mut(at..)?).ok()
}

#[inline(always)]
fn blamka(x: u64, y: u64) -> u64 {
    let m = (x & 0xffff_ffff).wrapping_mul(y & 0xffff_ffff);
    x.wrapping_add(y).wrapping_add(m.wrapping_mul(2))
}

/// BLAKE2b's round function with argon2's multiplications, on 16 words.
#[inline(always)]
fn permute(v: &mut [u64; 16]) {
    macro_rules! g {
        ($a:expr, $b:expr, $c:expr, $d:expr) => {
            v[$a] = blamka(v[$a], v[$b]);
            v[$d] = (v[$d] ^ v[$a]).rotate_right(32);
            v[$c] = blamka(v[$c], v[$d]);
            v[$b] = (v[$b] ^ v[$c]).rotate_right(24);
            v[$a] = blamka(v[$a], v[$b]);
            v[$d] = (v[$d] ^ v[$a]).rotate_right(16);
            v[$c] = blamka(v[$c], v[$d]);
            v[$b] = (v[$b] ^ v[$c]).rotate_right(63);
        };
    }
    g!(0, 4, 8, 12);
    g!(1, 5, 9, 13);
    g!(2, 6, 10, 14);
    g!(3, 7, 11, 15);
    g!(0, 5, 10, 15);
    g!(1, 6, 11, 12);
    g!(2, 7, 8, 13);
    g!(3, 4, 9, 14);
}

/// The compression function G: rows of 16 words, then columns of pairs, xored with its input.
fn compress(x: &Block, y: &Block) -> Block {
    let mut r = [0u64; 128];
    for ((o, a), b) in r.iter_mut().zip(x.iter()).zip(y.iter()) {
        *o = a ^ b;
    }
    let mut q = r;
    for row in q.chunks_exact_mut(16) {
        if let Ok(v) = <&mut [u64; 16]>::try_from(row) {
            permute(v);
        }
    }
    // Column i holds words 2i and 2i + 1 of every row.
    for i in 0..8 {
        let mut v = [0u64; 16];
        for (pair, row) in v.chunks_exact_mut(2).zip(q.chunks_exact(16)) {
            if let (Some(dst), Some(src)) = (pair.get_mut(..2), row.get(2 * i..2 * i + 2)) {
                dst.copy_from_slice(src);
            }
        }
        permute(&mut v);
        for (pair, row) in v.chunks_exact(2).zip(q.chunks_exact_mut(16)) {
            if let Some(dst) = row.get_mut(2 * i..2 * i + 2) {
                dst.copy_from_slice(pair);
            }
        }
    }
    for (o, a) in q.iter_mut().zip(r.iter()) {
        *o ^= a;
    }
    q
}

fn load(bytes: &[u8; 1024]) -> Block {
    let mut b = [0u64; 128];
    for (w, c) in b.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(c);
        *w = u64::from_le_bytes(le);
    }
    b
}

impl Argon2 {
    /// Sets up the computation (`m` in KiB): H0, then the first two blocks of every lane.
    /// `None` when the parameters are outside argon2's ranges or the memory cannot be had.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        variant: Variant,
        version: u32,
        m: u32,
        t: u32,
        p: u32,
        password: &[u8],
        salt: &[u8],
        len: usize,
    ) -> Option<Self> {
        let kind = variant as u32;
        if !(version == 0x10 || version == 0x13)
            || t < 1
            || !(1..=0x00ff_ffff).contains(&p)
            || u64::from(m) < 8 * u64::from(p)
            || !(4..=1024).contains(&len)
            || salt.len() < 8
        {
            return None;
        }
        let lanes = p as usize;
        let segment_length = (m as usize) / (lanes * SYNC_POINTS);
        let lane_length = segment_length * SYNC_POINTS;
        let blocks = lane_length * lanes;
        let mut memory: Vec<Block> = Vec::new();
        memory.try_reserve_exact(blocks).ok()?;

        let mut h0 = Blake2b512::new();
        for word in [p, len as u32, m, t, version, kind] {
            Update::update(&mut h0, &word.to_le_bytes());
        }
        for part in [password, salt] {
            Update::update(&mut h0, &u32::try_from(part.len()).ok()?.to_le_bytes());
            Update::update(&mut h0, part);
        }
        // No secret and no associated data.
        Update::update(&mut h0, &0u32.to_le_bytes());
        Update::update(&mut h0, &0u32.to_le_bytes());
        let mut seed = [0u8; 64];
        seed.copy_from_slice(&h0.finalize());
        Some(Argon2 {
            memory,
            blocks,
            h0: Some(seed),
            kind,
            version,
            passes: t as usize,
            lanes,
            lane_length,
            segment_length,
            out_len: len,
            pass: 0,
            slice: 0,
            lane: 0,
            index: 0,
            started: false,
            address: [0; 128],
            input: [0; 128],
            out: None,
        })
    }

    /// The memory this computation holds, in KiB.
    pub fn memory_kib(&self) -> usize {
        self.memory.capacity()
    }

    /// Makes the first two blocks of every lane from H0, once the memory is all there.
    fn seed(&mut self, h0: &[u8; 64]) -> Option<()> {
        for lane in 0..self.lanes {
            for i in 0..2u32 {
                let mut bytes = [0u8; 1024];
                blake2b_long(
                    &[h0, &i.to_le_bytes(), &(lane as u32).to_le_bytes()],
                    &mut bytes,
                )?;
                *self.memory.get_mut(lane * self.lane_length + i as usize)? = load(&bytes);
                bytes.fill(0);
            }
        }
        Some(())
    }

    fn data_independent(&self) -> bool {
        self.kind == 1 || (self.kind == 2 && self.pass == 0 && self.slice < SYNC_POINTS / 2)
    }

    fn next_addresses(&mut self) {
        if let Some(counter) = self.input.get_mut(6) {
            *counter += 1;
        }
        let zero = [0u64; 128];
        let once = compress(&zero, &self.input);
        self.address = compress(&zero, &once);
    }

    fn begin_segment(&mut self) {
        self.started = true;
        self.input = [0; 128];
        self.address = [0; 128];
        let independent = self.data_independent();
        if independent {
            let words = [
                self.pass as u64,
                self.lane as u64,
                self.slice as u64,
                self.memory.len() as u64,
                self.passes as u64,
                u64::from(self.kind),
            ];
            for (w, v) in self.input.iter_mut().zip(words) {
                *w = v;
            }
        }
        if self.pass == 0 && self.slice == 0 {
            // The first two blocks of each lane are already made.
            if independent {
                self.next_addresses();
            }
            self.index = 2;
        } else {
            self.index = 0;
        }
    }

    /// Fills the block at the current position.
    fn fill_one(&mut self) -> Option<()> {
        let (seg, lane_len) = (self.segment_length, self.lane_length);
        let (pass, slice, lane, index) = (self.pass, self.slice, self.lane, self.index);
        let cur = lane * lane_len + slice * seg + index;
        let prev = if slice == 0 && index == 0 {
            lane * lane_len + lane_len - 1
        } else {
            cur - 1
        };
        let rand = if self.data_independent() {
            let at = index % 128;
            if at == 0 {
                self.next_addresses();
            }
            *self.address.get(at)?
        } else {
            *self.memory.get(prev)?.first()?
        };
        let ref_lane = if pass == 0 && slice == 0 {
            lane
        } else {
            ((rand >> 32) as usize) % self.lanes
        };
        let area = if pass == 0 {
            if slice == 0 {
                index - 1
            } else if ref_lane == lane {
                slice * seg + index - 1
            } else {
                slice * seg - usize::from(index == 0)
            }
        } else if ref_lane == lane {
            lane_len - seg + index - 1
        } else {
            lane_len - seg - usize::from(index == 0)
        };
        let low = rand & 0xffff_ffff;
        let map = (low * low) >> 32;
        let relative = area - 1 - (((area as u64) * map) >> 32) as usize;
        let start = if pass != 0 && slice != SYNC_POINTS - 1 {
            (slice + 1) * seg
        } else {
            0
        };
        let reference = ref_lane * lane_len + (start + relative) % lane_len;
        let next = compress(self.memory.get(prev)?, self.memory.get(reference)?);
        let block = self.memory.get_mut(cur)?;
        if self.version == 0x10 || pass == 0 {
            *block = next;
        } else {
            for (w, n) in block.iter_mut().zip(next.iter()) {
                *w ^= n;
            }
        }
        Some(())
    }

    fn finalize(&mut self) -> Option<Vec<u8>> {
        let mut acc = [0u64; 128];
        for lane in 0..self.lanes {
            let last = self
                .memory
                .get(lane * self.lane_length + self.lane_length - 1)?;
            for (a, w) in acc.iter_mut().zip(last.iter()) {
                *a ^= w;
            }
        }
        let mut bytes = [0u8; 1024];
        for (c, w) in bytes.chunks_exact_mut(8).zip(acc.iter()) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        let mut out = alloc::vec![0u8; self.out_len];
        blake2b_long(&[&bytes], &mut out)?;
        bytes.fill(0);
        Some(out)
    }

    /// Fills at most `blocks` (at least one) memory blocks; true once the output is ready.
    /// `None` only on an internal inconsistency (never with parameters [`Argon2::new`] took).
    pub fn step(&mut self, blocks: u32) -> Option<bool> {
        let mut budget = blocks.max(1);
        let missing = self.blocks - self.memory.len();
        if missing > 0 {
            // Zeroing a block costs about a quarter of filling one.
            let n = missing.min(budget as usize * 4);
            self.memory.resize(self.memory.len() + n, [0u64; 128]);
            budget = budget.saturating_sub((n / 4) as u32);
            if budget == 0 || self.memory.len() < self.blocks {
                return Some(false);
            }
        }
        if let Some(mut h0) = self.h0.take() {
            self.seed(&h0)?;
            h0.fill(0);
        }
        while self.out.is_none() {
            if self.pass == self.passes {
                self.out = Some(self.finalize()?);
                // The memory is no longer needed: give it back now, not when the job is freed.
                self.memory = Vec::new();
                break;
            }
            if budget == 0 {
                break;
            }
            if !self.started {
                self.begin_segment();
            }
            if self.index < self.segment_length {
                self.fill_one()?;
                self.index += 1;
                budget -= 1;
            }
            if self.index >= self.segment_length {
                self.started = false;
                self.lane += 1;
                if self.lane == self.lanes {
                    self.lane = 0;
                    self.slice += 1;
                    if self.slice == SYNC_POINTS {
                        self.slice = 0;
                        self.pass += 1;
                    }
                }
            }
        }
        Some(self.out.is_some())
    }

    /// The output, once [`Argon2::step`] has returned true.
    pub fn output(&self) -> Option<&[u8]> {
        self.out.as_deref()
    }
}

/// Runs an argon2 computation to its end in one call.
#[allow(clippy::too_many_arguments)]
pub fn argon2(
    variant: Variant,
    version: u32,
    m: u32,
    t: u32,
    p: u32,
    password: &[u8],
    salt: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let mut job = Argon2::new(variant, version, m, t, p, password, salt, len)?;
    while !job.step(u32::MAX)? {}
    job.out.take()
}

/// Runs a bcrypt computation to its end in one call.
pub fn bcrypt(cost: u32, salt: &[u8; 16], password: &[u8]) -> [u8; 24] {
    let mut job = Bcrypt::new(cost, salt, password);
    while !job.step(u32::MAX) {}
    job.output().unwrap_or([0; 24])
}
