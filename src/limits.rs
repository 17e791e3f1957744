//! The work-factor and size limits of password verification, in a module of their own: the
//! descriptor parser ([`crate::password`]) and the stepwise hashing ([`crate::stepwise`]) both
//! read them, and neither depends on the other for them.

/// Highest bcrypt cost accepted. Cost 14 takes about a second in wasm; a login may hold a few
/// accounts and must finish inside Auth0's 20 s limit, so anything above is refused as hostile
/// rather than allowed to pin the login container (cost 31 would run for days).
pub const MAX_BCRYPT_COST: u32 = 14;
/// Lowest bcrypt cost that exists.
pub const MIN_BCRYPT_COST: u32 = 4;
/// Longest password accepted, in bytes (far above any real one; bounds the work per call).
pub const MAX_PASSWORD_LEN: usize = 4096;
// The work-factor limits. A descriptor beyond them is refused before any work is done, so a
// hostile or mistaken record cannot pin the login container (Auth0 allows 20 s per login,
// shared by every account verified): each limit keeps one verification to about a second or
// less in the wasm on one core, and memory to 100 MiB.

/// PBKDF2 iterations (OWASP's 2023 advice for SHA-256 is 600 000; Django 5.2 writes 1 000 000,
/// Django 6.0 1 200 000). The estimated time ([`crate::password::cost_ms`]) bounds it further.
pub const PBKDF2_ITERATIONS: u32 = 2_000_000;
/// scrypt memory, 128 · N · r bytes.
pub const SCRYPT_MEMORY: u64 = 64 << 20;
/// scrypt parallelization.
pub const SCRYPT_P: u32 = 16;
/// scrypt work, 128 · N · r · p bytes passed through (the passes run one after another): Django's
/// default (N = 2^14, r = 8, p = 5) passes 80 MiB. The estimated time bounds it further.
pub const SCRYPT_WORK: u64 = 128 << 20;
/// argon2 memory, in KiB: 100 MiB, Django's default (m = 102 400, t = 2, p = 8).
pub const ARGON2_M: u32 = 100 << 10;
/// argon2 passes.
pub const ARGON2_T: u32 = 10;
/// argon2 lanes (computed one after another in the wasm).
pub const ARGON2_P: u32 = 8;
/// Derived key, digest or salt length in bytes.
pub const LENGTH: usize = 1024;
