//! The legacy password formats outside Auth0's list, parsed into the same [`Scheme`]s the rest
//! of [`crate::password`] verifies: crypt(3) (`$1$`, `$apr1$`, `$5$`, `$6$`, and `{CRYPT}` in
//! LDAP), phpass (WordPress, phpBB), Drupal 7, WordPress 6.8's bcrypt, Django, Werkzeug,
//! ASP.NET Identity and Firebase's modified scrypt.
//!
//! Each parser is strict: the exact lengths, alphabets and work-factor ranges of the framework
//! that writes the format. A value a framework can write but trickle cannot verify (DES crypt,
//! Django's unsalted digests, Werkzeug's pre-2.0 HMAC forms) is refused with
//! `password.unsupported_variant`, naming it; nothing unknown is ever guessed at.
//!
//! Every family is its own cargo feature (`fmt-crypt`, `fmt-phpass`, `fmt-django`,
//! `fmt-werkzeug`, `fmt-aspnet`, `fmt-firebase`), so a deployment's login script carries only
//! the formats its products hold; a format left out of a build is `password.not_in_build`.

use crate::base64;
use crate::hashes::{self, Digest};
use crate::json::Map;
use crate::limits;
use crate::password::{
    invalid, parse_argon2, parse_bcrypt, CryptKind, PasswordError, PreHash, Scheme, MIN_KEY_LEN,
};

/// The algorithm names trickle verifies beyond Auth0's eleven, with the cargo feature each
/// needs. Auth0's bulk import cannot take these: the export gives such people a forced reset.
pub const EXTRA_ALGORITHMS: [(&str, &str); 8] = [
    ("crypt", "fmt-crypt"),
    ("phpass", "fmt-phpass"),
    ("drupal7", "fmt-phpass"),
    ("wordpress", "fmt-phpass"),
    ("django", "fmt-django"),
    ("werkzeug", "fmt-werkzeug"),
    ("aspnet-identity", "fmt-aspnet"),
    ("firebase-scrypt", "fmt-firebase"),
];

/// True when this build was compiled with the feature.
pub fn built(feature: &str) -> bool {
    matches!(
        feature,
        "fmt-crypt" if cfg!(feature = "fmt-crypt")
    ) || matches!(feature, "fmt-phpass" if cfg!(feature = "fmt-phpass"))
        || matches!(feature, "fmt-django" if cfg!(feature = "fmt-django"))
        || matches!(feature, "fmt-werkzeug" if cfg!(feature = "fmt-werkzeug"))
        || matches!(feature, "fmt-aspnet" if cfg!(feature = "fmt-aspnet"))
        || matches!(feature, "fmt-firebase" if cfg!(feature = "fmt-firebase"))
        || matches!(feature, "fmt-argon2" if cfg!(feature = "fmt-argon2"))
        || matches!(feature, "fmt-digests" if cfg!(feature = "fmt-digests"))
}

fn unsupported(what: &'static str) -> PasswordError {
    PasswordError::UnsupportedVariant(what)
}

/// crypt's and phpass's alphabet.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn itoa(c: u8) -> Option<u32> {
    ITOA64.iter().position(|x| *x == c).map(|i| i as u32)
}

/// The hash characters of a crypt or phpass string: exactly `len` of crypt's alphabet.
fn crypt_chars(text: &str, len: usize) -> Result<Vec<u8>, PasswordError> {
    if text.len() != len || !text.bytes().all(|c| itoa(c).is_some()) {
        return Err(invalid(
            "hash.value",
            format!("the hash part must be {len} characters of ./0-9A-Za-z"),
        ));
    }
    Ok(text.as_bytes().to_vec())
}

/// A crypt salt: 1 to `max` characters, none of them `$`, `:` or a control character.
fn crypt_salt(text: &str, max: usize) -> Result<Vec<u8>, PasswordError> {
    if text.is_empty()
        || !text
            .bytes()
            .all(|c| c.is_ascii_graphic() && c != b'$' && c != b':')
    {
        return Err(invalid("hash.value", "the salt must be printable ASCII"));
    }
    // As crypt(3) does: a longer salt is cut.
    Ok(text.as_bytes().iter().copied().take(max).collect())
}

/// A crypt(3) string: md5-crypt (`$1$`), apr1 (`$apr1$`), sha256-crypt (`$5$`),
/// sha512-crypt (`$6$`) with optional `rounds=N$`, or bcrypt (`$2a$`, `$2b$`, `$2y$`).
pub fn parse_crypt(value: &str) -> Result<Scheme, PasswordError> {
    if value.starts_with("$2") {
        return Ok(Scheme::Bcrypt(parse_bcrypt(value)?));
    }
    let (kind, rest) = if let Some(r) = value.strip_prefix("$1$") {
        (CryptKind::Md5Crypt, r)
    } else if let Some(r) = value.strip_prefix("$apr1$") {
        (CryptKind::Apr1, r)
    } else if let Some(r) = value.strip_prefix("$5$") {
        (CryptKind::Sha256Crypt, r)
    } else if let Some(r) = value.strip_prefix("$6$") {
        (CryptKind::Sha512Crypt, r)
    } else if value.starts_with('$') {
        return Err(unsupported(
            "crypt ids other than $1$, $apr1$, $5$, $6$ and $2b$",
        ));
    } else {
        return Err(unsupported("traditional DES crypt"));
    };
    let sha = matches!(kind, CryptKind::Sha256Crypt | CryptKind::Sha512Crypt);
    let mut rounds = if sha { 5000 } else { 1000 };
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix("rounds=").filter(|_| sha) {
        let (n, after) = r
            .split_once('$')
            .ok_or_else(|| invalid("hash.value", "rounds=N must end in $"))?;
        if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("hash.value", "rounds must be a number"));
        }
        // As glibc: below 1000 counts as 1000, above 999 999 999 as that.
        rounds = n
            .parse::<u64>()
            .unwrap_or(u64::MAX)
            .clamp(1000, 999_999_999) as u32;
        rest = after;
    }
    let (salt, hash) = rest
        .split_once('$')
        .ok_or_else(|| invalid("hash.value", "not $id$salt$hash"))?;
    let (max_salt, len) = match kind {
        CryptKind::Md5Crypt | CryptKind::Apr1 => (8, 22),
        CryptKind::Sha256Crypt => (16, 43),
        _ => (16, 86),
    };
    Ok(Scheme::Crypt {
        kind,
        rounds,
        salt: crypt_salt(salt, max_salt)?,
        hash: crypt_chars(hash, len)?,
        pre: None,
    })
}

/// A phpass string: `$P$`/`$H$` (MD5) or Drupal 7's `$S$` (SHA-512, cut to 55 characters), a
/// count character (2^7 to 2^30 iterations), 8 salt characters and the hash.
fn parse_phpass(value: &str, sha512_allowed: bool) -> Result<Scheme, PasswordError> {
    let (kind, len) = match value.get(..3) {
        Some("$P$") | Some("$H$") => (CryptKind::PhpassMd5, 22),
        Some("$S$") if sha512_allowed => (CryptKind::PhpassSha512, 43),
        _ => return Err(invalid("hash.value", "not a phpass string ($P$ or $H$)")),
    };
    let bad = || invalid("hash.value", "the phpass count and salt are malformed");
    let count = value
        .as_bytes()
        .get(3)
        .copied()
        .and_then(itoa)
        .filter(|n| (7..=30).contains(n))
        .ok_or_else(|| invalid("hash.value", "the phpass count must be 2^7 to 2^30"))?;
    let salt = value.get(4..12).ok_or_else(bad)?;
    if !salt.bytes().all(|c| itoa(c).is_some()) {
        return Err(bad());
    }
    Ok(Scheme::Crypt {
        kind,
        rounds: 1u32 << count,
        salt: salt.as_bytes().to_vec(),
        hash: crypt_chars(value.get(12..).ok_or_else(bad)?, len)?,
        pre: None,
    })
}

/// phpass as WordPress and phpBB write it.
pub fn parse_phpass_only(value: &str) -> Result<Scheme, PasswordError> {
    parse_phpass(value, false)
}

/// Drupal 7: `$S$` (SHA-512 phpass), the `$P$`/`$H$` it kept from imports, and `U$…` for
/// passwords upgraded from Drupal 6's MD5 (the phpass of the password's MD5 in hex).
pub fn parse_drupal7(value: &str) -> Result<Scheme, PasswordError> {
    match value.strip_prefix('U') {
        Some(rest) => match parse_phpass(rest, true)? {
            Scheme::Crypt {
                kind,
                rounds,
                salt,
                hash,
                ..
            } => Ok(Scheme::Crypt {
                kind,
                rounds,
                salt,
                hash,
                pre: Some(PreHash::Md5Hex),
            }),
            other => Ok(other),
        },
        None => parse_phpass(value, true),
    }
}

/// WordPress: 6.8's `$wp$2y$…` (bcrypt of the base64 HMAC-SHA-384 of the password under the key
/// `wp-sha384`), phpass `$P$` before it, a plain `$2y$` from `password_hash`, and the unsalted
/// MD5 hex of WordPress before 2.5.
pub fn parse_wordpress(value: &str) -> Result<Scheme, PasswordError> {
    if let Some(bcrypt) = value.strip_prefix("$wp") {
        return Ok(Scheme::Prehashed {
            pre: PreHash::WordPress,
            bcrypt: parse_bcrypt(bcrypt)?,
        });
    }
    if value.starts_with("$2") {
        return Ok(Scheme::Bcrypt(parse_bcrypt(value)?));
    }
    if value.len() == 32 {
        let hash = hashes::hex_decode(value)
            .ok_or_else(|| invalid("hash.value", "a 32-character WordPress hash is MD5 hex"))?;
        return Ok(Scheme::Digest {
            digest: Digest::Md5,
            hash,
        });
    }
    parse_phpass(value, false)
}

fn parse_u32(text: &str, what: &'static str) -> Result<u32, PasswordError> {
    // Digits only (no sign, no space), at most ten: the empty text fails to parse.
    if text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("hash.value", format!("{what} must be a number")));
    }
    text.parse()
        .map_err(|_| invalid("hash.value", format!("{what} is not a number below 2^32")))
}

fn pbkdf2(
    digest: Digest,
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
) -> Result<Scheme, PasswordError> {
    if iterations > limits::PBKDF2_ITERATIONS {
        return Err(PasswordError::WorkFactorTooHigh(
            "iterations",
            u64::from(limits::PBKDF2_ITERATIONS),
        ));
    }
    if iterations < 1 || hash.len() < MIN_KEY_LEN || salt.len() > limits::LENGTH {
        return Err(invalid(
            "hash.value",
            "PBKDF2 needs at least 1 iteration and a 16-byte key",
        ));
    }
    Ok(Scheme::Pbkdf2 {
        digest,
        iterations,
        salt,
        hash,
    })
}

fn scrypt(n: u64, r: u64, p: u64, salt: Vec<u8>, hash: Vec<u8>) -> Result<Scheme, PasswordError> {
    if n < 2 || !n.is_power_of_two() || r < 1 || p < 1 || hash.len() < MIN_KEY_LEN {
        return Err(invalid(
            "hash.value",
            "scrypt needs N a power of two, r and p ≥ 1 and a 16-byte key",
        ));
    }
    if p > u64::from(limits::SCRYPT_P)
        || n.saturating_mul(r).saturating_mul(128) > limits::SCRYPT_MEMORY
        || n.saturating_mul(r).saturating_mul(p).saturating_mul(128) > limits::SCRYPT_WORK
    {
        return Err(PasswordError::WorkFactorTooHigh(
            "N",
            limits::SCRYPT_MEMORY / 128 / r.max(1),
        ));
    }
    Ok(Scheme::Scrypt {
        log_n: n.trailing_zeros() as u8,
        r: r as u32,
        p: p as u32,
        salt,
        hash,
    })
}

fn b64(text: &str) -> Result<Vec<u8>, PasswordError> {
    base64::decode(text.trim_end_matches('='), base64::STANDARD)
        .filter(|b| b.len() <= limits::LENGTH)
        .ok_or_else(|| invalid("hash.value", "the hash is not base64"))
}

fn hex(text: &str) -> Result<Vec<u8>, PasswordError> {
    hashes::hex_decode(text)
        .filter(|b| b.len() <= limits::LENGTH)
        .ok_or_else(|| invalid("hash.value", "the hash is not hex"))
}

/// Django's `algorithm$…` strings: `pbkdf2_sha256`, `pbkdf2_sha1`, `bcrypt_sha256`, `bcrypt`,
/// `argon2` and `scrypt`.
pub fn parse_django(value: &str) -> Result<Scheme, PasswordError> {
    let (algorithm, rest) = value
        .split_once('$')
        .ok_or_else(|| invalid("hash.value", "not a Django algorithm$… string"))?;
    match algorithm {
        "pbkdf2_sha256" | "pbkdf2_sha1" => {
            let digest = if algorithm == "pbkdf2_sha1" {
                Digest::Sha1
            } else {
                Digest::Sha256
            };
            let parts: Vec<&str> = rest.split('$').collect();
            let [iterations, salt, hash] = parts.as_slice() else {
                return Err(invalid("hash.value", "not pbkdf2_…$iterations$salt$hash"));
            };
            let hash = b64(hash)?;
            if hash.len() != digest.output_len() {
                return Err(invalid("hash.value", "the key length is the digest's"));
            }
            pbkdf2(
                digest,
                parse_u32(iterations, "iterations")?,
                salt.as_bytes().to_vec(),
                hash,
            )
        }
        "bcrypt_sha256" | "bcrypt" => {
            // Django writes `bcrypt$` then the whole bcrypt string, itself starting with `$`.
            let bcrypt = parse_bcrypt(rest)?;
            Ok(if algorithm == "bcrypt" {
                Scheme::Bcrypt(bcrypt)
            } else {
                Scheme::Prehashed {
                    pre: PreHash::Sha256Hex,
                    bcrypt,
                }
            })
        }
        "argon2" => {
            if !cfg!(feature = "fmt-argon2") {
                return Err(PasswordError::NotInBuild("fmt-argon2"));
            }
            parse_argon2(&format!("${rest}"))
        }
        "scrypt" => {
            let parts: Vec<&str> = rest.split('$').collect();
            let [n, salt, r, p, hash] = parts.as_slice() else {
                return Err(invalid("hash.value", "not scrypt$N$salt$r$p$hash"));
            };
            scrypt(
                u64::from(parse_u32(n, "N")?),
                u64::from(parse_u32(r, "r")?),
                u64::from(parse_u32(p, "p")?),
                salt.as_bytes().to_vec(),
                b64(hash)?,
            )
        }
        "md5" | "sha1" | "unsalted_md5" | "unsalted_sha1" | "crypt" => Err(unsupported(
            "Django's md5, sha1, unsalted and crypt hashers",
        )),
        _ => Err(invalid(
            "hash.value",
            "the Django algorithm must be pbkdf2_sha256, pbkdf2_sha1, bcrypt_sha256, bcrypt, argon2 or scrypt",
        )),
    }
}

/// Werkzeug's `method$salt$hash`: `pbkdf2:<digest>:<iterations>` and `scrypt:<N>:<r>:<p>`, the
/// salt as text, the hash in hex.
pub fn parse_werkzeug(value: &str) -> Result<Scheme, PasswordError> {
    let parts: Vec<&str> = value.split('$').collect();
    let [method, salt, hash] = parts.as_slice() else {
        return Err(invalid("hash.value", "not Werkzeug's method$salt$hash"));
    };
    let salt = salt.as_bytes().to_vec();
    let hash = hex(hash)?;
    let args: Vec<&str> = method.split(':').collect();
    match args.as_slice() {
        ["pbkdf2", digest, iterations] => {
            let digest = match *digest {
                "sha1" => Digest::Sha1,
                "sha224" => Digest::Sha224,
                "sha256" => Digest::Sha256,
                "sha384" => Digest::Sha384,
                "sha512" => Digest::Sha512,
                _ => {
                    return Err(invalid(
                        "hash.value",
                        "the PBKDF2 digest must be sha1 … sha512",
                    ))
                }
            };
            if hash.len() != digest.output_len() {
                return Err(invalid("hash.value", "the key length is the digest's"));
            }
            pbkdf2(digest, parse_u32(iterations, "iterations")?, salt, hash)
        }
        ["pbkdf2", ..] => Err(invalid(
            "hash.value",
            "pbkdf2 must name its digest and iterations (pbkdf2:sha256:600000)",
        )),
        ["scrypt", n, r, p] => scrypt(
            u64::from(parse_u32(n, "N")?),
            u64::from(parse_u32(r, "r")?),
            u64::from(parse_u32(p, "p")?),
            salt,
            hash,
        ),
        _ => Err(unsupported("Werkzeug methods other than pbkdf2 and scrypt")),
    }
}

/// ASP.NET Identity's base64 blob: v2 (`0x00`, 16-byte salt, 32-byte PBKDF2-HMAC-SHA1 key,
/// 1000 iterations) or v3 (`0x01`, PRF, iterations and salt length as big-endian u32s, salt,
/// key).
pub fn parse_aspnet(value: &str) -> Result<Scheme, PasswordError> {
    let bytes = b64(value)?;
    let be = |at: usize| -> Result<u32, PasswordError> {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| invalid("hash.value", "the v3 header is cut short"))
    };
    match bytes.first() {
        Some(0) => {
            if bytes.len() != 49 {
                return Err(invalid("hash.value", "a v2 hash is 49 bytes"));
            }
            let salt = bytes.get(1..17).unwrap_or_default().to_vec();
            let key = bytes.get(17..).unwrap_or_default().to_vec();
            pbkdf2(Digest::Sha1, 1000, salt, key)
        }
        Some(1) => {
            let digest = match be(1)? {
                0 => Digest::Sha1,
                1 => Digest::Sha256,
                2 => Digest::Sha512,
                _ => return Err(invalid("hash.value", "the v3 PRF must be 0, 1 or 2")),
            };
            let iterations = be(5)?;
            // The salt length is the blob's own word: checked against its size before any use,
            // without arithmetic that could wrap.
            let salt_len = be(9)? as usize;
            let end = bytes.len().saturating_sub(13);
            if salt_len < 16 || salt_len > end {
                return Err(invalid("hash.value", "the v3 salt length is wrong"));
            }
            let (salt, key) = bytes.get(13..).unwrap_or_default().split_at(salt_len);
            let (salt, key) = (salt.to_vec(), key.to_vec());
            pbkdf2(digest, iterations, salt, key)
        }
        _ => Err(invalid(
            "hash.value",
            "an ASP.NET Identity hash starts with 0x00 (v2) or 0x01 (v3)",
        )),
    }
}

/// Firebase's modified scrypt: `hash.value` and `salt.value` in base64 as Firebase exports
/// them, and the project's parameters in `firebase`: `signer_key` and `salt_separator`
/// (base64), `rounds` (1 to 8) and `mem_cost` (1 to 14).
pub fn parse_firebase(
    obj: &Map,
    value: &str,
    salt: Option<Vec<u8>>,
) -> Result<Scheme, PasswordError> {
    let fb = match obj.get("firebase") {
        Some(crate::json::Value::Object(m)) => m,
        Some(_) => return Err(PasswordError::WrongType("firebase")),
        None => return Err(PasswordError::MissingField("firebase")),
    };
    let text = |key: &str, path: &'static str| match fb.get(key) {
        Some(crate::json::Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(PasswordError::WrongType(path)),
        None => Err(PasswordError::MissingField(path)),
    };
    let int = |key: &str, path: &'static str, max: u64| match fb.get(key) {
        None => Err(PasswordError::MissingField(path)),
        Some(v) => v
            .as_i64()
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| invalid(path, format!("must be 1 to {max}"))),
    };
    let decode = |t: &str, path: &'static str| {
        base64::decode(t.trim_end_matches('='), base64::STANDARD)
            .filter(|b| b.len() <= limits::LENGTH)
            .ok_or_else(|| invalid(path, "is not base64"))
    };
    let signer_key = decode(
        text("signer_key", "firebase.signer_key")?,
        "firebase.signer_key",
    )?;
    let separator = decode(
        text("salt_separator", "firebase.salt_separator")?,
        "firebase.salt_separator",
    )?;
    let rounds = int("rounds", "firebase.rounds", 8)?;
    let mem_cost = int("mem_cost", "firebase.mem_cost", 14)?;
    let salt = salt.ok_or(PasswordError::MissingField("salt"))?;
    let hash = b64(value)?;
    if hash.len() != signer_key.len() || hash.len() < MIN_KEY_LEN {
        return Err(invalid(
            "hash.value",
            "the hash is as long as the signer key (at least 16 bytes)",
        ));
    }
    match scrypt(1 << mem_cost, rounds, 1, [salt, separator].concat(), hash)? {
        Scheme::Scrypt {
            log_n,
            r,
            salt,
            hash,
            ..
        } => Ok(Scheme::Firebase {
            log_n,
            r,
            salt,
            signer_key,
            hash,
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(not(feature = "fmt-phpass"))]
    use crate::json;
    use crate::password;
    #[cfg(not(feature = "fmt-phpass"))]
    use crate::password::PasswordError;

    #[cfg(not(feature = "fmt-phpass"))]
    fn code(text: &str) -> Result<bool, PasswordError> {
        password::verify(&json::parse(text).unwrap_or_default(), "pw")
    }

    /// A login script built for other formats names the feature it lacks, before any work.
    #[test]
    #[cfg(not(feature = "fmt-phpass"))]
    fn a_format_left_out_of_the_build_is_refused_by_name() {
        assert_eq!(
            code(
                r#"{"algorithm":"wordpress","hash":{"value":"$P$Babcdefgh0123456789012345678901"}}"#
            ),
            Err(PasswordError::NotInBuild("fmt-phpass"))
        );
        #[cfg(not(feature = "fmt-argon2"))]
        assert_eq!(
            code(
                r#"{"algorithm":"argon2","hash":{"value":"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAA"}}"#
            ),
            Err(PasswordError::NotInBuild("fmt-argon2"))
        );
        #[cfg(not(feature = "fmt-digests"))]
        assert_eq!(
            code(r#"{"algorithm":"ldap","hash":{"value":"{CRYPT}$1$abc$l3aUB.F3rhpeYRBZCEPf7."}}"#),
            Err(PasswordError::NotInBuild("fmt-digests"))
        );
        assert_eq!(
            PasswordError::NotInBuild("fmt-phpass").code(),
            "password.not_in_build"
        );
    }

    #[test]
    fn every_extra_algorithm_names_a_feature_the_build_knows() {
        for (algorithm, feature) in super::EXTRA_ALGORITHMS {
            assert!(feature.starts_with("fmt-"), "{algorithm}");
            assert!(
                !password::ALGORITHMS.contains(&algorithm),
                "{algorithm} is not Auth0's"
            );
            #[cfg(feature = "formats-all")]
            assert!(super::built(feature), "{feature}");
        }
    }
}
