//! bcrypt and argon2 computed a bounded amount of work at a time (the `stepwise-hash` crate,
//! optimised for speed), as the work a `compute` answer describes.
//!
//! A host without native modules runs a [`Job`] in slices of a few milliseconds and lets its
//! event loop turn between them, so one verification never stalls every other login in the
//! container. Each job produces exactly the output of the one-shot computation (the tests compare
//! them with the argon2 crate, the reference vectors and the previous one-shot bcrypt).

pub use stepwise_hash::{Argon2, Bcrypt};

use crate::base64::{self, BCRYPT};
use crate::event::ErrorBody;
use crate::fields::Fields;
use crate::hashes::{self, Argon2Variant};
use crate::json::Value;
use crate::limits::{self, MAX_BCRYPT_COST, MAX_PASSWORD_LEN, MIN_BCRYPT_COST};

/// One computation the host asked for: the `bcrypt` or `argon2` work of a `compute` answer.
pub enum Job {
    /// bcrypt; answers with the whole `$2b$` string, as a native bcrypt module does.
    Bcrypt(Box<Bcrypt>, u32),
    /// argon2; answers with the raw output.
    #[cfg(feature = "fmt-argon2")]
    Argon2(Box<Argon2>),
    /// crypt(3) or phpass; answers with the hash characters.
    #[cfg(any(feature = "fmt-crypt", feature = "fmt-phpass"))]
    Crypt(Box<stepwise_hash::crypt::Crypt>),
}

/// Runs a crypt(3) or phpass computation to its end in one call: the hash characters, or
/// `None` in a build without those formats.
pub fn crypt(
    kind: crate::password::CryptKind,
    password: &[u8],
    salt: &[u8],
    rounds: u32,
) -> Option<Vec<u8>> {
    #[cfg(any(feature = "fmt-crypt", feature = "fmt-phpass"))]
    {
        let mut c = stepwise_hash::crypt::Crypt::new(kind, password, salt, rounds);
        while !c.step(1 << 16) {}
        c.output()
    }
    #[cfg(not(any(feature = "fmt-crypt", feature = "fmt-phpass")))]
    {
        let _ = (kind, password, salt, rounds);
        None
    }
}

/// The stepwise crate's name for a variant.
pub fn variant_of(v: Argon2Variant) -> stepwise_hash::Variant {
    match v {
        Argon2Variant::D => stepwise_hash::Variant::D,
        Argon2Variant::I => stepwise_hash::Variant::I,
        Argon2Variant::Id => stepwise_hash::Variant::Id,
    }
}

/// Runs an argon2 computation to its end in one call (`m` in KiB); `None` for parameters
/// argon2 refuses or memory that cannot be had.
#[allow(clippy::too_many_arguments)]
pub fn argon2(
    variant: Argon2Variant,
    version: u32,
    m: u32,
    t: u32,
    p: u32,
    password: &[u8],
    salt: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    stepwise_hash::argon2(variant_of(variant), version, m, t, p, password, salt, len)
}

/// Runs a bcrypt computation to its end in one call.
pub fn bcrypt(cost: u32, salt: &[u8; 16], password: &[u8]) -> [u8; 24] {
    stepwise_hash::bcrypt(cost, salt, password)
}

fn bad(why: impl Into<String>) -> ErrorBody {
    ErrorBody::new("hash.invalid_request", why.into())
}

impl Job {
    /// Sets up the work described by a `compute` request (`op`, `data` in hex, and `setting`
    /// for bcrypt or `salt`, `m`, `t`, `p`, `variant`, `version`, `length` for argon2). Work
    /// factors beyond [`limits`] are refused here too: the request may come from anywhere.
    pub fn from_request(request: &Value) -> Result<Job, ErrorBody> {
        let f = Fields::of(request, "request")?;
        let hex =
            |k: &str| hashes::hex_decode(f.str(k)?).ok_or_else(|| bad(format!("{k} must be hex")));
        let data = hex("data")?;
        if data.len() > 2 * MAX_PASSWORD_LEN {
            return Err(bad("data is too long"));
        }
        match f.str("op")? {
            "bcrypt" => {
                let setting = f.str("setting")?;
                let cost = setting
                    .strip_prefix("$2b$")
                    .and_then(|rest| rest.get(..2))
                    .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|c| c.parse::<u32>().ok())
                    .filter(|c| (MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(c))
                    .ok_or_else(|| bad("setting must be $2b$ and a cost of 04 to 14"))?;
                let salt: [u8; 16] = (setting.len() == 29 && setting.get(6..7) == Some("$"))
                    .then(|| setting.get(7..))
                    .flatten()
                    .and_then(|t| base64::decode(t, BCRYPT))
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("setting must end in a 22-character salt"))?;
                Ok(Job::Bcrypt(Box::new(Bcrypt::new(cost, &salt, &data)), cost))
            }
            #[cfg(feature = "fmt-argon2")]
            "argon2" => {
                let num = |k: &str, max: u32| {
                    u32::try_from(f.int(k)?)
                        .ok()
                        .filter(|n| *n <= max)
                        .ok_or_else(|| bad(format!("{k} must be 0 to {max}")))
                };
                let variant = match num("variant", 2)? {
                    0 => Argon2Variant::D,
                    1 => Argon2Variant::I,
                    _ => Argon2Variant::Id,
                };
                let variant = variant_of(variant);
                let (m, t, p) = (
                    num("m", limits::ARGON2_M)?,
                    num("t", limits::ARGON2_T)?,
                    num("p", limits::ARGON2_P)?,
                );
                let version = num("version", 0x13)?;
                let length = num("length", limits::LENGTH as u32)? as usize;
                let salt = hex("salt")?;
                Argon2::new(variant, version, m, t, p, &data, &salt, length)
                    .map(|a| Job::Argon2(Box::new(a)))
                    .ok_or_else(|| {
                        bad("argon2 parameters rejected, or its memory is not available")
                    })
            }
            #[cfg(any(feature = "fmt-crypt", feature = "fmt-phpass"))]
            "crypt" => {
                let kind = crate::password::crypt_named(f.str("kind")?)
                    .ok_or_else(|| bad("kind must name a crypt or phpass hash"))?;
                if data.len() > crate::password::MAX_CRYPT_PASSWORD_LEN {
                    return Err(bad("data is too long"));
                }
                let salt = hex("salt")?;
                // No more rounds than one verification may take, whoever asks.
                let most = crate::password::MAX_VERIFY_MS * 1_000_000
                    / crate::password::crypt_round_ns(kind).max(1);
                let rounds = u32::try_from(f.int("rounds")?)
                    .ok()
                    .filter(|r| *r >= 1 && u64::from(*r) <= most)
                    .ok_or_else(|| bad(format!("rounds must be 1 to {most}")))?;
                if salt.len() > 16 {
                    return Err(bad("salt is too long"));
                }
                Ok(Job::Crypt(Box::new(stepwise_hash::crypt::Crypt::new(
                    kind, &data, &salt, rounds,
                ))))
            }
            _ => Err(bad("op must be bcrypt, argon2 or crypt")),
        }
    }

    /// Advances the work by at most `units` (bcrypt rounds or argon2 blocks); true once done.
    pub fn step(&mut self, units: u32) -> Option<bool> {
        match self {
            Job::Bcrypt(b, _) => Some(b.step(units)),
            #[cfg(feature = "fmt-argon2")]
            Job::Argon2(a) => a.step(units),
            #[cfg(any(feature = "fmt-crypt", feature = "fmt-phpass"))]
            Job::Crypt(c) => Some(c.step(units)),
        }
    }

    /// The answer for the host, once done: the bcrypt string's bytes, or argon2's output.
    pub fn output(&self) -> Option<Vec<u8>> {
        match self {
            Job::Bcrypt(b, cost) => {
                let out = b.output()?;
                Some(
                    format!(
                        "$2b${cost:02}${}{}",
                        base64::encode(b.salt(), BCRYPT),
                        base64::encode(out.get(..23)?, BCRYPT)
                    )
                    .into_bytes(),
                )
            }
            #[cfg(feature = "fmt-argon2")]
            Job::Argon2(a) => a.output().map(<[u8]>::to_vec),
            #[cfg(any(feature = "fmt-crypt", feature = "fmt-phpass"))]
            Job::Crypt(c) => c.output(),
        }
    }

    /// The memory a request would hold, in KiB, read without setting it up (at least what
    /// [`Job::memory_kib`] will say once it is).
    pub fn memory_needed(request: &Value) -> usize {
        match request.get("op").and_then(Value::as_str) {
            Some("argon2") => request
                .get("m")
                .and_then(Value::as_i64)
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(0)
                .clamp(1, limits::ARGON2_M as usize),
            _ => 1,
        }
    }

    /// The memory this job holds, in KiB (bcrypt's few KiB count as one).
    pub fn memory_kib(&self) -> usize {
        match self {
            Job::Bcrypt(..) => 1,
            #[cfg(feature = "fmt-argon2")]
            Job::Argon2(a) => a.memory_kib(),
            #[cfg(any(feature = "fmt-crypt", feature = "fmt-phpass"))]
            Job::Crypt(..) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// argon2's parameters: variant, version, m, t, p, output length.
    type Params = (Argon2Variant, u32, u32, u32, u32, usize);

    /// The argon2 crate's answer.
    fn crate_argon2(q: Params, pw: &[u8], salt: &[u8]) -> Option<Vec<u8>> {
        let (v, version, m, t, p, len) = q;
        hashes::argon2(v, version, m, t, p, pw, salt, len)
    }

    /// The stepwise answer, `blocks` at a time, checking that the work really was split.
    fn stepped_argon2(q: Params, pw: &[u8], salt: &[u8], blocks: u32) -> Option<Vec<u8>> {
        let (v, version, m, t, p, len) = q;
        let mut job = Argon2::new(variant_of(v), version, m, t, p, pw, salt, len)?;
        let mut steps = 0u64;
        while !job.step(blocks)? {
            steps += 1;
        }
        // Zeroing the memory counts too (four blocks a unit), then every block filled.
        let memory = u64::from(m / (4 * p) * 4 * p);
        let work = memory * u64::from(t) - 2 * u64::from(p) + memory / 4;
        assert!(
            steps + 1 >= work.div_ceil(u64::from(blocks)),
            "{q:?} by {blocks}: {steps} steps"
        );
        job.output().map(<[u8]>::to_vec)
    }

    const VARIANTS: [Argon2Variant; 3] = [Argon2Variant::D, Argon2Variant::I, Argon2Variant::Id];

    #[test]
    fn argon2_matches_the_crate_for_every_variant_version_and_lane_count() {
        let cases: &[(u32, u32, u32, usize)] = &[
            (8, 1, 1, 32),
            (16, 3, 2, 16),
            (64, 2, 4, 64),
            (96, 1, 3, 65),
            (256, 4, 8, 128),
            (1024, 2, 1, 1024),
            (37, 2, 1, 20), // m not a multiple of 4p
            (65, 3, 2, 33),
        ];
        for v in VARIANTS {
            for version in [0x10, 0x13] {
                for &(m, t, p, len) in cases {
                    let q = (v, version, m, t, p, len);
                    let want = crate_argon2(q, b"password", b"somesalt");
                    assert!(want.is_some());
                    for blocks in [1, 7, 128, 100_000] {
                        assert_eq!(
                            stepped_argon2(q, b"password", b"somesalt", blocks),
                            want,
                            "{q:?} by {blocks}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn argon2_reference_vectors_in_slices() {
        let run = |v| stepped_argon2((v, 0x13, 65536, 2, 1, 32), b"password", b"somesalt", 1000);
        assert_eq!(
            run(Argon2Variant::I)
                .map(|o| hashes::hex_encode(&o))
                .as_deref(),
            Some("c1628832147d9720c5bd1cfd61367078729f6dfb6f8fea9ff98158e0d7816ed0")
        );
        assert_eq!(
            run(Argon2Variant::Id)
                .map(|o| hashes::hex_encode(&o))
                .as_deref(),
            Some("09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7")
        );
        // The reference's argon2d vector uses a secret and associated data; compare with the crate.
        assert_eq!(
            run(Argon2Variant::D),
            crate_argon2(
                (Argon2Variant::D, 0x13, 65536, 2, 1, 32),
                b"password",
                b"somesalt"
            )
        );
    }

    #[test]
    fn argon2_at_the_documented_limit_matches_the_crate() {
        for v in VARIANTS {
            for version in [0x10, 0x13] {
                let q = (v, version, limits::ARGON2_M, 2, limits::ARGON2_P, 32);
                let want = crate_argon2(q, b"correct horse", b"saltsaltsalt");
                assert!(want.is_some());
                assert_eq!(
                    stepped_argon2(q, b"correct horse", b"saltsaltsalt", 3000),
                    want,
                    "{q:?}"
                );
            }
        }
    }

    #[test]
    fn argon2_refuses_what_argon2_refuses() {
        let new = |version, m, t, p, salt: &[u8], len| {
            Argon2::new(
                stepwise_hash::Variant::Id,
                version,
                m,
                t,
                p,
                b"pw",
                salt,
                len,
            )
            .is_none()
        };
        assert!(new(0x14, 64, 1, 1, b"somesalt", 32), "unknown version");
        assert!(new(0x13, 7, 1, 1, b"somesalt", 32), "m < 8p");
        assert!(new(0x13, 64, 0, 1, b"somesalt", 32), "t = 0");
        assert!(new(0x13, 64, 1, 0, b"somesalt", 32), "p = 0");
        assert!(new(0x13, 64, 1, 1, b"short", 32), "salt < 8 bytes");
        assert!(new(0x13, 64, 1, 1, b"somesalt", 3), "output < 4 bytes");
        assert!(!new(0x13, 64, 1, 1, b"somesalt", 4));
    }

    #[test]
    fn bcrypt_in_slices_matches_one_shot_at_the_edge_costs() {
        let salt = *b"0123456789abcdef";
        for cost in [4, 5, 10, 13] {
            for pw in [&b""[..], b"U*U", &[0xffu8; 80][..]] {
                let want = crate::password::reference::one_shot_bcrypt(cost, &salt, pw);
                let mut job = Bcrypt::new(cost, &salt, pw);
                let mut steps = 0u64;
                while !job.step(37) {
                    steps += 1;
                }
                assert_eq!(steps, (1u64 << cost) / 37, "cost {cost}");
                assert_eq!(job.output(), Some(want), "cost {cost}");
            }
        }
    }

    fn request(json: &str) -> Result<Job, ErrorBody> {
        let v = crate::json::parse(json).map_err(|_| bad("test input"))?;
        Job::from_request(&v)
    }

    fn finish(mut job: Job, units: u32) -> Option<Vec<u8>> {
        while !job.step(units)? {}
        job.output()
    }

    #[test]
    fn a_bcrypt_request_answers_as_a_native_module_does() {
        // "U*U" with the salt of OpenBSD's test vector, cost 5.
        let job = request(
            r#"{"op":"bcrypt","data":"552a55","setting":"$2b$05$CCCCCCCCCCCCCCCCCCCCC.","length":60}"#,
        );
        let out = job.ok().and_then(|j| finish(j, 3));
        assert_eq!(
            out.as_deref(),
            Some(&b"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"[..])
        );
    }

    #[test]
    fn an_argon2_request_answers_with_the_raw_output() {
        let job = request(
            r#"{"op":"argon2","data":"70617373776f7264","salt":"736f6d6573616c74","m":64,"t":2,"p":2,"variant":2,"version":19,"length":32}"#,
        );
        let want = crate_argon2(
            (Argon2Variant::Id, 0x13, 64, 2, 2, 32),
            b"password",
            b"somesalt",
        );
        assert_eq!(job.ok().and_then(|j| finish(j, 5)), want);
    }

    #[test]
    fn hostile_requests_are_refused_with_a_stable_code() {
        for bad_request in [
            r#"{"op":"md5","data":"00"}"#,
            r#"{"op":"bcrypt","data":"zz","setting":"$2b$05$CCCCCCCCCCCCCCCCCCCCC."}"#,
            r#"{"op":"bcrypt","data":"00","setting":"$2b$31$CCCCCCCCCCCCCCCCCCCCC."}"#,
            r#"{"op":"bcrypt","data":"00","setting":"$2b$03$CCCCCCCCCCCCCCCCCCCCC."}"#,
            r#"{"op":"bcrypt","data":"00","setting":"$2a$05$CCCCCCCCCCCCCCCCCCCCC."}"#,
            r#"{"op":"bcrypt","data":"00","setting":"$2b$05$CCCC"}"#,
            r#"{"op":"argon2","data":"00","salt":"736f6d6573616c74","m":131072,"t":1,"p":1,"variant":2,"version":19,"length":32}"#,
            r#"{"op":"argon2","data":"00","salt":"736f6d6573616c74","m":64,"t":11,"p":1,"variant":2,"version":19,"length":32}"#,
            r#"{"op":"argon2","data":"00","salt":"736f6d6573616c74","m":64,"t":1,"p":9,"variant":2,"version":19,"length":32}"#,
            r#"{"op":"argon2","data":"00","salt":"736f6d6573616c74","m":64,"t":1,"p":1,"variant":3,"version":19,"length":32}"#,
            r#"{"op":"argon2","data":"00","salt":"736f6d6573616c74","m":64,"t":1,"p":1,"variant":2,"version":18,"length":32}"#,
            r#"{"op":"argon2","data":"00","salt":"00","m":64,"t":1,"p":1,"variant":2,"version":19,"length":32}"#,
        ] {
            let code = request(bad_request).err().map(|e| e.code);
            assert_eq!(code, Some("hash.invalid_request"), "{bad_request}");
        }
    }
}
