//! Legacy password verification against Auth0's `custom_password_hash` descriptor.
//!
//! The descriptor has exactly the JSON shape of Auth0's bulk-import field, so one record serves
//! the login check and the export. Parsing is strict and total: a malformed or unsupported
//! descriptor is a [`PasswordError`] with a stable code naming the field, never a match.
//!
//! Every algorithm of Auth0's list is verified: bcrypt (`$2a$`, `$2b$`, `$2y$`), argon2 (PHC,
//! argon2d/i/id), pbkdf2 (PHC), ldap (RFC 2307 `{MD5}` … `{SSHA512}`), md4, md5, sha1, sha256,
//! sha512 (hex or base64, optional salt), hmac (key with encoding) and scrypt. Parsing validates a
//! descriptor into a [`Descriptor`] before any work is done, refusing work factors beyond
//! [`limits`]; digests are compared in constant time.

use subtle::ConstantTimeEq;

use crate::base64::{self, BCRYPT};
use crate::event::ErrorBody;
use crate::hashes::{self, Argon2Variant, Digest};
use crate::json::{Map, Value};
pub use crate::limits::{self, MAX_BCRYPT_COST, MAX_PASSWORD_LEN, MIN_BCRYPT_COST};

/// Longest password the crypt(3) hashes take: sha-crypt's setup hashes the password as many
/// times as it is long.
pub const MAX_CRYPT_PASSWORD_LEN: usize = 1024;
/// Longest descriptor `hash.value` accepted, in bytes.
pub const MAX_HASH_VALUE_LEN: usize = 1024;
/// Shortest derived key, digest or stored hash compared: a shorter one would match random
/// passwords (1 byte: one in 256), and an empty one would match every password.
pub const MIN_KEY_LEN: usize = 16;
/// The most one verification may cost at sign-in, in estimated milliseconds on one core
/// ([`cost_ms`]); a descriptor above it is "cannot verify", never a match.
pub const MAX_VERIFY_MS: u64 = 1000;
/// The most all verifications of one sign-in may cost together, in estimated milliseconds.
pub const MAX_LOGIN_MS: u64 = 3000;

/// Why a descriptor could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordError {
    /// The descriptor is not a JSON object.
    NotAnObject,
    /// A required field is absent.
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    WrongType(&'static str),
    /// A field's value is not acceptable; the string says why.
    InvalidField(&'static str, String),
    /// `algorithm` is not one of Auth0's names (its content is never repeated: a misplaced
    /// hash may sit in that field, and errors reach the logs).
    UnknownAlgorithm,
    /// `algorithm` is one of Auth0's names but this build cannot verify it.
    UnsupportedAlgorithm(String),
    /// A work factor exceeds the documented limit.
    WorkFactorTooHigh(&'static str, u64),
    /// A digest Auth0 lists (named here from that list) that no runtime trickle runs in can
    /// compute: OpenSSL 3 keeps Whirlpool in its legacy provider only.
    UnsupportedDigest(&'static str),
    /// The typed password is longer than [`MAX_PASSWORD_LEN`] (or, for crypt's
    /// quadratic setup, [`MAX_CRYPT_PASSWORD_LEN`]).
    PasswordTooLong,
    /// A variant the format's framework can write but trickle does not verify (named here).
    UnsupportedVariant(&'static str),
    /// The algorithm is known but this build was made without the cargo feature (named here)
    /// that verifies it: the deployment's login script was built for other formats.
    NotInBuild(&'static str),
}

impl PasswordError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            PasswordError::NotAnObject => "password.not_object",
            PasswordError::MissingField(_) => "password.missing_field",
            PasswordError::WrongType(_) => "password.wrong_type",
            PasswordError::InvalidField(..) => "password.invalid_field",
            PasswordError::UnknownAlgorithm => "password.unknown_algorithm",
            PasswordError::UnsupportedAlgorithm(_) => "password.unsupported_algorithm",
            PasswordError::WorkFactorTooHigh(..) => "password.work_factor_too_high",
            PasswordError::UnsupportedDigest(_) => "password.unsupported_digest",
            PasswordError::PasswordTooLong => "password.too_long",
            PasswordError::UnsupportedVariant(_) => "password.unsupported_variant",
            PasswordError::NotInBuild(_) => "password.not_in_build",
        }
    }

    /// A message naming the field concerned.
    pub fn message(&self) -> String {
        match self {
            PasswordError::NotAnObject => "custom_password_hash must be a JSON object".into(),
            PasswordError::MissingField(f) => format!("{f} is required"),
            PasswordError::WrongType(f) => format!("{f} has the wrong type"),
            PasswordError::InvalidField(f, why) => format!("{f} is invalid: {why}"),
            PasswordError::UnknownAlgorithm => format!(
                "algorithm must be one of {}, {}",
                ALGORITHMS.join(", "),
                crate::formats::EXTRA_ALGORITHMS.map(|(a, _)| a).join(", ")
            ),
            PasswordError::UnsupportedAlgorithm(a) => {
                format!("algorithm \"{a}\" cannot be verified by this build")
            }
            PasswordError::WorkFactorTooHigh(f, max) => {
                format!("{f} exceeds the limit of {max}")
            }
            PasswordError::UnsupportedDigest(d) => {
                format!("the {d} digest is not supported (Node's OpenSSL 3 cannot compute it)")
            }
            PasswordError::PasswordTooLong => "password is longer than this format allows".into(),
            PasswordError::UnsupportedVariant(what) => {
                format!("hash.value: {what} cannot be verified")
            }
            PasswordError::NotInBuild(feature) => format!(
                "this build cannot verify the algorithm: rebuild with its format family ({feature}) \
                 in trickle.json or `node rules/build.js --formats`"
            ),
        }
    }

    /// As a boundary error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.message())
    }
}

/// The algorithm names of Auth0's `custom_password_hash`.
pub const ALGORITHMS: [&str; 11] = [
    "argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2",
    "scrypt",
];

/// How the typed password is turned into bytes before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordEncoding {
    /// UTF-8 (Auth0's default).
    Utf8,
    /// Node's `ascii`/`latin1`/`binary`: the low byte of each UTF-16 code unit.
    Latin1,
    /// UTF-16 little endian (`utf16le`, `ucs2`).
    Utf16Le,
}

impl PasswordEncoding {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "utf8" | "utf-8" => Some(Self::Utf8),
            "ascii" | "latin1" | "binary" => Some(Self::Latin1),
            "utf16le" | "utf-16le" | "ucs2" | "ucs-2" => Some(Self::Utf16Le),
            _ => None,
        }
    }

    /// Encodes a password the way Node's `Buffer.from(password, encoding)` does.
    pub fn encode(self, password: &str) -> Vec<u8> {
        match self {
            Self::Utf8 => password.as_bytes().to_vec(),
            Self::Latin1 => password.encode_utf16().map(|u| (u & 0xff) as u8).collect(),
            Self::Utf16Le => password.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        }
    }
}

/// A validated descriptor, ready to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// How the typed password becomes bytes.
    pub encoding: PasswordEncoding,
    /// The salt added to the password bytes, for the algorithms that take one that way.
    pub salt: Option<Salt>,
    /// The algorithm and its parameters.
    pub scheme: Scheme,
}

/// A salt and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Salt {
    /// The salt's bytes.
    pub bytes: Vec<u8>,
    /// True when the salt goes before the password, false when after.
    pub prefix: bool,
}

/// The algorithm of a descriptor, with everything needed to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// A bcrypt string, already split and checked.
    Bcrypt(BcryptHash),
    /// argon2 from a PHC string.
    Argon2 {
        /// argon2d, argon2i or argon2id.
        variant: Argon2Variant,
        /// 0x10 or 0x13.
        version: u32,
        /// Memory in KiB.
        m: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
        /// Salt bytes.
        salt: Vec<u8>,
        /// Expected output.
        hash: Vec<u8>,
    },
    /// PBKDF2-HMAC from a PHC string.
    Pbkdf2 {
        /// The HMAC digest.
        digest: Digest,
        /// Iterations.
        iterations: u32,
        /// Salt bytes.
        salt: Vec<u8>,
        /// Expected output (its length is the key length).
        hash: Vec<u8>,
    },
    /// A plain or salted digest: `md4`, `md5`, `sha1`, `sha256`, `sha512`, and `ldap` schemes
    /// (where the salt comes from the value and goes after the password).
    Digest {
        /// The digest.
        digest: Digest,
        /// Expected output.
        hash: Vec<u8>,
    },
    /// HMAC of the (salted) password under a key.
    Hmac {
        /// The digest.
        digest: Digest,
        /// The key.
        key: Vec<u8>,
        /// Expected output.
        hash: Vec<u8>,
    },
    /// crypt(3) or phpass: the hash part compared as the text the framework wrote.
    Crypt {
        /// Which.
        kind: CryptKind,
        /// Rounds (phpass: iterations).
        rounds: u32,
        /// The salt as written.
        salt: Vec<u8>,
        /// The expected hash characters.
        hash: Vec<u8>,
        /// A framework's transformation of the password first (Drupal's `U$`).
        pre: Option<PreHash>,
    },
    /// bcrypt of a framework's transformation of the password (WordPress 6.8, Django).
    Prehashed {
        /// The transformation.
        pre: PreHash,
        /// The bcrypt string.
        bcrypt: BcryptHash,
    },
    /// Firebase's modified scrypt: the key is scrypt(password, salt ‖ separator, N, r, 1, 32),
    /// the hash the project's signer key encrypted under it with AES-256-CTR (IV zero).
    Firebase {
        /// log2 N (Firebase's mem_cost).
        log_n: u8,
        /// r (Firebase's rounds).
        r: u32,
        /// The user's salt followed by the project's separator.
        salt: Vec<u8>,
        /// The project's signer key.
        signer_key: Vec<u8>,
        /// Expected output.
        hash: Vec<u8>,
    },
    /// scrypt with the salt as its own input.
    Scrypt {
        /// log2 of the cost N.
        log_n: u8,
        /// Block size r.
        r: u32,
        /// Parallelization p.
        p: u32,
        /// Salt bytes.
        salt: Vec<u8>,
        /// Expected output (its length is keylen).
        hash: Vec<u8>,
    },
}

/// The iterated-digest hashes of crypt(3) and phpass, computed a bounded number of rounds at a
/// time in the wasm ([`crate::stepwise`]).
pub use stepwise_hash::CryptKind;

/// The name a `compute` request carries for a crypt kind.
pub fn crypt_name(kind: CryptKind) -> &'static str {
    match kind {
        CryptKind::Md5Crypt => "md5-crypt",
        CryptKind::Apr1 => "apr1",
        CryptKind::Sha256Crypt => "sha256-crypt",
        CryptKind::Sha512Crypt => "sha512-crypt",
        CryptKind::PhpassMd5 => "phpass",
        CryptKind::PhpassSha512 => "phpass-sha512",
    }
}

/// The crypt kind a `compute` request names.
pub fn crypt_named(name: &str) -> Option<CryptKind> {
    [
        CryptKind::Md5Crypt,
        CryptKind::Apr1,
        CryptKind::Sha256Crypt,
        CryptKind::Sha512Crypt,
        CryptKind::PhpassMd5,
        CryptKind::PhpassSha512,
    ]
    .into_iter()
    .find(|k| crypt_name(*k) == name)
}

/// Nanoseconds per round in the login script's wasm, measured on Node 20 with the sliced
/// `hash_step` (md5-crypt 1.07 µs, sha256-crypt 1.37, sha512-crypt 1.90, phpass 0.23,
/// Drupal's SHA-512 phpass 1.09), rounded up.
pub(crate) fn crypt_round_ns(kind: CryptKind) -> u64 {
    match kind {
        CryptKind::Md5Crypt | CryptKind::Apr1 => 1100,
        CryptKind::Sha256Crypt => 1400,
        CryptKind::Sha512Crypt => 1900,
        CryptKind::PhpassMd5 => 250,
        CryptKind::PhpassSha512 => 1100,
    }
}

/// How a framework turns the password into what it hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreHash {
    /// WordPress 6.8: base64 of HMAC-SHA-384 under the key `wp-sha384`.
    WordPress,
    /// Django's bcrypt_sha256: SHA-256 in lower-case hex.
    Sha256Hex,
    /// Drupal 7's `U$`: MD5 in lower-case hex.
    Md5Hex,
}

impl PreHash {
    /// The bytes the framework hashes in place of the password.
    pub fn apply(self, password: &[u8]) -> Vec<u8> {
        // Only the builds with a format that pre-hashes carry SHA-384 and MD5.
        if !cfg!(any(feature = "fmt-phpass", feature = "fmt-django")) {
            return Vec::new();
        }
        use hmac::Mac;
        use sha2::Digest as _;
        match self {
            PreHash::WordPress => {
                let mac = <hmac::Hmac<sha2::Sha384> as hmac::digest::KeyInit>::new_from_slice(
                    b"wp-sha384",
                )
                .map(|m| m.chain_update(password).finalize().into_bytes().to_vec())
                .unwrap_or_default();
                let mut text = base64::encode(&mac, base64::STANDARD);
                while !text.len().is_multiple_of(4) {
                    text.push('=');
                }
                text.into_bytes()
            }
            PreHash::Sha256Hex => hashes::hex_encode(&sha2::Sha256::digest(password)).into_bytes(),
            PreHash::Md5Hex => hashes::hex_encode(&md5::Md5::digest(password)).into_bytes(),
        }
    }
}

/// A parsed bcrypt string: `$2a$`/`$2b$`/`$2y$`, cost, 16-byte salt, 23-byte digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcryptHash {
    /// The cost (log2 of the rounds).
    pub cost: u32,
    /// The raw salt.
    pub salt: [u8; 16],
    /// The raw digest (the first 23 bytes of the 24-byte output, as every bcrypt stores).
    pub digest: [u8; 23],
}

fn field<'a>(obj: &'a Map, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn str_field<'a>(
    obj: &'a Map,
    key: &str,
    path: &'static str,
) -> Result<Option<&'a str>, PasswordError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(PasswordError::WrongType(path)),
    }
}

fn obj_field<'a>(
    obj: &'a Map,
    key: &str,
    path: &'static str,
) -> Result<Option<&'a Map>, PasswordError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(PasswordError::WrongType(path)),
    }
}

fn int_field(obj: &Map, key: &str, path: &'static str) -> Result<Option<u64>, PasswordError> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|n| u64::try_from(n).ok())
            .map(Some)
            .ok_or(PasswordError::WrongType(path)),
    }
}

pub(crate) fn invalid(path: &'static str, why: impl Into<String>) -> PasswordError {
    PasswordError::InvalidField(path, why.into())
}

/// Decodes `text` as `hex`, `base64` (standard or URL-safe, padded or not) or `utf8`.
fn decode(text: &str, encoding: &str, path: &'static str) -> Result<Vec<u8>, PasswordError> {
    let bytes = match encoding.to_ascii_lowercase().as_str() {
        "hex" => hashes::hex_decode(text),
        "base64" | "base64url" => {
            let t = text.trim_end_matches('=');
            let alphabet = if t.contains(['-', '_']) {
                base64::URL_SAFE
            } else {
                base64::STANDARD
            };
            base64::decode(t, alphabet)
        }
        "utf8" | "utf-8" => Some(text.as_bytes().to_vec()),
        _ => {
            return Err(invalid(
                path,
                format!(
                    "unknown encoding \"{}\"",
                    encoding
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .take(16)
                        .collect::<String>()
                ),
            ))
        }
    };
    match bytes {
        Some(b) if b.len() <= limits::LENGTH => Ok(b),
        Some(_) => Err(invalid(path, "too long")),
        None => Err(invalid(path, format!("is not valid {encoding}"))),
    }
}

fn parse_salt(obj: &Map) -> Result<Option<Salt>, PasswordError> {
    let Some(salt) = obj_field(obj, "salt", "salt")? else {
        return Ok(None);
    };
    let value =
        str_field(salt, "value", "salt.value")?.ok_or(PasswordError::MissingField("salt.value"))?;
    let encoding = str_field(salt, "encoding", "salt.encoding")?.unwrap_or("utf8");
    let prefix = match str_field(salt, "position", "salt.position")? {
        Some("prefix") => true,
        Some("suffix") => false,
        Some(_) => return Err(invalid("salt.position", "must be prefix or suffix")),
        // Auth0's default when the field is left out.
        None => true,
    };
    Ok(Some(Salt {
        bytes: decode(value, encoding, "salt.value")?,
        prefix,
    }))
}

/// Splits a PHC string `$id$[v=N$]params$salt$hash` into its parts.
/// The parts of a PHC string: id, version, parameters, salt, hash.
type PhcParts<'a> = (
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
    &'a str,
    &'a str,
);

fn phc(value: &str) -> Result<PhcParts<'_>, PasswordError> {
    let bad = || invalid("hash.value", "not a PHC string ($id$params$salt$hash)");
    let mut parts = value.strip_prefix('$').ok_or_else(bad)?.split('$');
    let id = parts.next().ok_or_else(bad)?;
    let mut rest: Vec<&str> = parts.collect();
    let version = match rest.first() {
        Some(v) if v.starts_with("v=") => Some(rest.remove(0).trim_start_matches("v=")),
        _ => None,
    };
    let [params, salt, hash] = rest.as_slice() else {
        return Err(bad());
    };
    let params = params
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').ok_or_else(bad))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((id, version, params, salt, hash))
}

fn phc_b64(text: &str, path: &'static str) -> Result<Vec<u8>, PasswordError> {
    base64::decode(text, base64::STANDARD)
        .filter(|b| b.len() <= limits::LENGTH)
        .ok_or_else(|| invalid(path, "is not unpadded base64"))
}

fn phc_int(params: &[(&str, &str)], key: &str) -> Result<Option<u64>, PasswordError> {
    match params.iter().find(|(k, _)| *k == key) {
        None => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| invalid("hash.value", format!("PHC parameter {key} is not a number"))),
    }
}

pub(crate) fn parse_argon2(value: &str) -> Result<Scheme, PasswordError> {
    let (id, version, params, salt, hash) = phc(value)?;
    let variant = match id {
        "argon2d" => Argon2Variant::D,
        "argon2i" => Argon2Variant::I,
        "argon2id" => Argon2Variant::Id,
        _ => {
            return Err(invalid(
                "hash.value",
                "PHC id must be argon2d, argon2i or argon2id",
            ))
        }
    };
    let version = match version {
        None => 0x10,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|v| *v == 0x10 || *v == 0x13)
            .ok_or_else(|| invalid("hash.value", "argon2 version must be 16 or 19"))?,
    };
    if let Some((k, _)) = params.iter().find(|(k, _)| !matches!(*k, "m" | "t" | "p")) {
        return Err(invalid(
            "hash.value",
            format!("argon2 parameter {k} is not supported"),
        ));
    }
    let need = |k: &str| {
        phc_int(&params, k)?
            .ok_or_else(|| invalid("hash.value", format!("argon2 parameter {k} is missing")))
    };
    let (m, t, p) = (need("m")?, need("t")?, need("p")?);
    if m > u64::from(limits::ARGON2_M) {
        return Err(PasswordError::WorkFactorTooHigh(
            "m",
            u64::from(limits::ARGON2_M),
        ));
    }
    if t > u64::from(limits::ARGON2_T) {
        return Err(PasswordError::WorkFactorTooHigh(
            "t",
            u64::from(limits::ARGON2_T),
        ));
    }
    if p > u64::from(limits::ARGON2_P) {
        return Err(PasswordError::WorkFactorTooHigh(
            "p",
            u64::from(limits::ARGON2_P),
        ));
    }
    let (m, t, p) = (m as u32, t as u32, p as u32);
    let hash = phc_b64(hash, "hash.value")?;
    let salt = phc_b64(salt, "hash.value")?;
    if t < 1 || p < 1 || m < 8 * p || salt.len() < 8 || hash.len() < MIN_KEY_LEN {
        return Err(invalid(
            "hash.value",
            "argon2 parameters out of range (t ≥ 1, p ≥ 1, m ≥ 8p, salt ≥ 8 bytes, hash ≥ 16 bytes)",
        ));
    }
    Ok(Scheme::Argon2 {
        variant,
        version,
        m,
        t,
        p,
        salt,
        hash,
    })
}

/// The digest a descriptor names: one of Auth0's list, or a stable refusal naming it.
fn digest_named(name: &str, path: &'static str) -> Result<Digest, PasswordError> {
    if let Some(d) = Digest::parse(name) {
        return Ok(d);
    }
    if name.eq_ignore_ascii_case("whirlpool") {
        return Err(PasswordError::UnsupportedDigest("whirlpool"));
    }
    Err(invalid(
        path,
        "must be md4, md5, ripemd160, sha1, sha224, sha256, sha384 or sha512",
    ))
}

fn parse_pbkdf2(value: &str) -> Result<Scheme, PasswordError> {
    let (id, _, params, salt, hash) = phc(value)?;
    let digest = match id.strip_prefix("pbkdf2-") {
        Some(d) => digest_named(d, "hash.value")?,
        None if id == "pbkdf2" => Digest::Sha1,
        None => return Err(invalid("hash.value", "PHC id must be pbkdf2-<digest>")),
    };
    // Auth0's documented defaults: i=100000 iterations, l=64 bytes.
    let iterations = phc_int(&params, "i")?.unwrap_or(100_000);
    let keylen = phc_int(&params, "l")?.unwrap_or(64);
    if iterations > u64::from(limits::PBKDF2_ITERATIONS) {
        return Err(PasswordError::WorkFactorTooHigh(
            "i",
            u64::from(limits::PBKDF2_ITERATIONS),
        ));
    }
    let hash = phc_b64(hash, "hash.value")?;
    if iterations < 1 || keylen != hash.len() as u64 || hash.len() < MIN_KEY_LEN {
        return Err(invalid(
            "hash.value",
            "pbkdf2 needs i ≥ 1, l ≥ 16 and l equal to the hash length",
        ));
    }
    Ok(Scheme::Pbkdf2 {
        digest,
        iterations: iterations as u32,
        salt: phc_b64(salt, "hash.value")?,
        hash,
    })
}

/// An RFC 2307 value: the digest, and for salted schemes the salt that follows the password.
fn parse_ldap(value: &str) -> Result<(Scheme, Option<Salt>), PasswordError> {
    let bad = || invalid("hash.value", "not an RFC 2307 {SCHEME}base64 value");
    let rest = value.strip_prefix('{').ok_or_else(bad)?;
    let (scheme, b64) = rest.split_once('}').ok_or_else(bad)?;
    let (digest, salted) = match scheme.to_ascii_uppercase().as_str() {
        "CRYPT" if cfg!(feature = "fmt-crypt") => {
            return Ok((crate::formats::parse_crypt(b64)?, None))
        }
        "CRYPT" => return Err(PasswordError::NotInBuild("fmt-crypt")),
        "MD5" => (Digest::Md5, false),
        "SMD5" => (Digest::Md5, true),
        "SHA" | "SHA1" => (Digest::Sha1, false),
        "SSHA" | "SSHA1" => (Digest::Sha1, true),
        "SHA256" => (Digest::Sha256, false),
        "SSHA256" => (Digest::Sha256, true),
        "SHA512" => (Digest::Sha512, false),
        "SSHA512" => (Digest::Sha512, true),
        _ => return Err(invalid(
            "hash.value",
            "LDAP scheme must be MD5, SMD5, SHA, SSHA, SHA256, SSHA256, SHA512, SSHA512 or CRYPT",
        )),
    };
    let bytes = decode(b64, "base64", "hash.value")?;
    let n = digest.output_len();
    if (!salted && bytes.len() != n) || (salted && bytes.len() <= n) {
        return Err(invalid(
            "hash.value",
            "LDAP value has the wrong length for its scheme",
        ));
    }
    let (hash, salt) = bytes.split_at(n);
    let salt = salted.then(|| Salt {
        bytes: salt.to_vec(),
        prefix: false,
    });
    Ok((
        Scheme::Digest {
            digest,
            hash: hash.to_vec(),
        },
        salt,
    ))
}

/// Validates a descriptor on its own, without a password (used by the export).
pub fn parse(descriptor: &Value) -> Result<Descriptor, PasswordError> {
    let obj = descriptor.as_object().ok_or(PasswordError::NotAnObject)?;
    let algorithm = str_field(obj, "algorithm", "algorithm")?
        .ok_or(PasswordError::MissingField("algorithm"))?;
    if let Some(feature) = family(algorithm) {
        if !crate::formats::built(feature) {
            return Err(PasswordError::NotInBuild(feature));
        }
    } else if !ALGORITHMS.contains(&algorithm) {
        return Err(PasswordError::UnknownAlgorithm);
    }
    let hash = obj_field(obj, "hash", "hash")?.ok_or(PasswordError::MissingField("hash"))?;
    let value =
        str_field(hash, "value", "hash.value")?.ok_or(PasswordError::MissingField("hash.value"))?;
    if value.len() > MAX_HASH_VALUE_LEN {
        return Err(invalid("hash.value", "too long"));
    }
    let encoding = match obj_field(obj, "password", "password")? {
        None => PasswordEncoding::Utf8,
        Some(p) => match str_field(p, "encoding", "password.encoding")? {
            None => PasswordEncoding::Utf8,
            Some(enc) => PasswordEncoding::parse(enc)
                .ok_or_else(|| invalid("password.encoding", "unknown encoding"))?,
        },
    };
    let mut salt = parse_salt(obj)?;
    let hash_encoding = str_field(hash, "encoding", "hash.encoding")?;
    let extra = crate::formats::EXTRA_ALGORITHMS
        .iter()
        .any(|(a, _)| *a == algorithm);
    let phc_like = extra || matches!(algorithm, "bcrypt" | "argon2" | "pbkdf2" | "ldap");
    if phc_like && salt.is_some() && !matches!(algorithm, "bcrypt" | "firebase-scrypt") {
        return Err(invalid(
            "salt",
            format!("{algorithm} carries its salt in hash.value"),
        ));
    }
    if phc_like && hash_encoding.is_some_and(|e| !e.eq_ignore_ascii_case("utf8")) {
        return Err(invalid(
            "hash.encoding",
            format!("{algorithm} values are utf8 strings"),
        ));
    }
    let digest_value =
        |default: &str| decode(value, hash_encoding.unwrap_or(default), "hash.value");
    if extra && encoding != PasswordEncoding::Utf8 {
        return Err(invalid(
            "password.encoding",
            format!("{algorithm} hashes the password as utf8"),
        ));
    }
    let scheme = match algorithm {
        "crypt" if cfg!(feature = "fmt-crypt") => crate::formats::parse_crypt(value)?,
        "phpass" if cfg!(feature = "fmt-phpass") => crate::formats::parse_phpass_only(value)?,
        "drupal7" if cfg!(feature = "fmt-phpass") => crate::formats::parse_drupal7(value)?,
        "wordpress" if cfg!(feature = "fmt-phpass") => crate::formats::parse_wordpress(value)?,
        "django" if cfg!(feature = "fmt-django") => crate::formats::parse_django(value)?,
        "werkzeug" if cfg!(feature = "fmt-werkzeug") => crate::formats::parse_werkzeug(value)?,
        "aspnet-identity" if cfg!(feature = "fmt-aspnet") => crate::formats::parse_aspnet(value)?,
        "firebase-scrypt" if cfg!(feature = "fmt-firebase") => {
            crate::formats::parse_firebase(obj, value, salt.take().map(|s| s.bytes))?
        }
        "bcrypt" => {
            if encoding != PasswordEncoding::Utf8 {
                return Err(invalid("password.encoding", "bcrypt accepts utf8 only"));
            }
            Scheme::Bcrypt(parse_bcrypt(value)?)
        }
        "argon2" if cfg!(feature = "fmt-argon2") => parse_argon2(value)?,
        "pbkdf2" if cfg!(feature = "fmt-digests") => parse_pbkdf2(value)?,
        "ldap" if cfg!(feature = "fmt-digests") => {
            let (scheme, ldap_salt) = parse_ldap(value)?;
            salt = ldap_salt;
            scheme
        }
        "md4" | "md5" | "sha1" | "sha256" | "sha512" if cfg!(feature = "fmt-digests") => {
            let digest = Digest::parse(algorithm).ok_or(PasswordError::UnknownAlgorithm)?;
            let hash = digest_value("hex")?;
            if hash.len() != digest.output_len() {
                return Err(invalid(
                    "hash.value",
                    format!("a {algorithm} digest is {} bytes", digest.output_len()),
                ));
            }
            Scheme::Digest { digest, hash }
        }
        "hmac" if cfg!(feature = "fmt-digests") => {
            let name = str_field(hash, "digest", "hash.digest")?
                .ok_or(PasswordError::MissingField("hash.digest"))?;
            let digest = digest_named(name, "hash.digest")?;
            let key = obj_field(hash, "key", "hash.key")?
                .ok_or(PasswordError::MissingField("hash.key"))?;
            let key_value = str_field(key, "value", "hash.key.value")?
                .ok_or(PasswordError::MissingField("hash.key.value"))?;
            let key_encoding = str_field(key, "encoding", "hash.key.encoding")?.unwrap_or("utf8");
            let hash = digest_value("hex")?;
            if hash.len() != digest.output_len() {
                return Err(invalid(
                    "hash.value",
                    format!("an HMAC-{name} is {} bytes", digest.output_len()),
                ));
            }
            Scheme::Hmac {
                digest,
                key: decode(key_value, key_encoding, "hash.key.value")?,
                hash,
            }
        }
        "scrypt" if cfg!(feature = "fmt-digests") => {
            let keylen =
                int_field(obj, "keylen", "keylen")?.ok_or(PasswordError::MissingField("keylen"))?;
            let n = int_field(obj, "cost", "cost")?.unwrap_or(16384);
            let r = int_field(obj, "blockSize", "blockSize")?.unwrap_or(8);
            let p = int_field(obj, "parallelization", "parallelization")?.unwrap_or(1);
            if n < 2 || !n.is_power_of_two() {
                return Err(invalid("cost", "must be a power of two ≥ 2"));
            }
            if r < 1 || p < 1 || keylen < MIN_KEY_LEN as u64 || keylen > limits::LENGTH as u64 {
                return Err(invalid(
                    "blockSize",
                    "blockSize and parallelization must be ≥ 1, keylen 16 to 1024",
                ));
            }
            if p > u64::from(limits::SCRYPT_P) {
                return Err(PasswordError::WorkFactorTooHigh(
                    "parallelization",
                    u64::from(limits::SCRYPT_P),
                ));
            }
            if n.saturating_mul(r).saturating_mul(128) > limits::SCRYPT_MEMORY
                || n.saturating_mul(r).saturating_mul(p).saturating_mul(128) > limits::SCRYPT_WORK
            {
                return Err(PasswordError::WorkFactorTooHigh(
                    "cost",
                    limits::SCRYPT_MEMORY / 128 / r.max(1),
                ));
            }
            let scrypt_salt = salt.take().ok_or(PasswordError::MissingField("salt"))?;
            let hash = digest_value("hex")?;
            if hash.len() as u64 != keylen {
                return Err(invalid("keylen", "must equal the length of hash.value"));
            }
            Scheme::Scrypt {
                log_n: n.trailing_zeros() as u8,
                r: r as u32,
                p: p as u32,
                salt: scrypt_salt.bytes,
                hash,
            }
        }
        other => return Err(PasswordError::UnsupportedAlgorithm(other.to_owned())),
    };
    Ok(Descriptor {
        encoding,
        salt,
        scheme,
    })
}

/// The cargo feature that verifies an algorithm (bcrypt is in every build: the dummy every
/// unknown address is checked against is bcrypt).
fn family(algorithm: &str) -> Option<&'static str> {
    match algorithm {
        "argon2" => Some("fmt-argon2"),
        "hmac" | "ldap" | "md4" | "md5" | "sha1" | "sha256" | "sha512" | "pbkdf2" | "scrypt" => {
            Some("fmt-digests")
        }
        _ => crate::formats::EXTRA_ALGORITHMS
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, f)| *f),
    }
}

/// True when Auth0's bulk import can take the descriptor as `custom_password_hash` (one of its
/// eleven algorithms, and valid); the formats only trickle verifies cannot be imported.
pub fn importable(descriptor: &Value) -> bool {
    descriptor
        .get("algorithm")
        .and_then(Value::as_str)
        .is_some_and(|a| ALGORITHMS.contains(&a))
        && matches!(
            parse(descriptor).map(|d| d.scheme),
            Ok(Scheme::Bcrypt(_)
                | Scheme::Argon2 { .. }
                | Scheme::Pbkdf2 { .. }
                | Scheme::Digest { .. }
                | Scheme::Hmac { .. }
                | Scheme::Scrypt { .. })
        )
        && !descriptor
            .get("hash")
            .and_then(|h| h.get("value"))
            .and_then(Value::as_str)
            .is_some_and(|v| {
                v.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("{crypt}"))
            })
}

/// Work this build leaves to the host's native crypto (node:crypto), with every input it needs.
/// The host answers with the output bytes, which [`finish`] compares in constant time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostWork {
    /// `hash`, `hmac`, `pbkdf2` or `scrypt`.
    pub op: &'static str,
    /// The digest, for all but scrypt.
    pub digest: Option<Digest>,
    /// The password bytes (already salted for `hash` and `hmac`).
    pub data: Vec<u8>,
    /// The HMAC key.
    pub key: Vec<u8>,
    /// The PBKDF2 or scrypt salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// scrypt N, r, p.
    pub n: u64,
    /// scrypt r.
    pub r: u32,
    /// scrypt p.
    pub p: u32,
    /// Output length in bytes.
    pub length: usize,
    /// bcrypt: the setting (`$2b$NN$` and the salt) the host's bcrypt hashes with.
    pub setting: String,
    /// argon2: 0 (d), 1 (i) or 2 (id), and the version (16 or 19).
    pub variant: u32,
    /// argon2: the version.
    pub version: u32,
}

/// What the host offers beyond digests, HMAC, PBKDF2 and scrypt: a native, asynchronous bcrypt
/// (the `bcrypt` module custom-database scripts can require) and argon2. Work handed to it never
/// blocks the container's event loop; without it the wasm computes, the fallback that always works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCaps {
    /// `bcrypt.hash(data, setting)` is available.
    pub bcrypt: bool,
    /// `argon2.hash(data, {raw: true, …})` is available.
    pub argon2: bool,
}

impl HostWork {
    fn new(op: &'static str, digest: Option<Digest>, data: Vec<u8>, length: usize) -> Self {
        HostWork {
            op,
            digest,
            data,
            key: vec![],
            salt: vec![],
            iterations: 0,
            n: 0,
            r: 0,
            p: 0,
            length,
            setting: String::new(),
            variant: 0,
            version: 0,
        }
    }

    /// As JSON for the shim: byte strings in hex.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new()
            .with("op", self.op)
            .with_opt("digest", self.digest.map(Digest::name))
            .with("data", hashes::hex_encode(&self.data))
            .with("length", self.length as i64);
        match self.op {
            "hmac" => m.insert("key", hashes::hex_encode(&self.key)),
            "pbkdf2" => {
                m.insert("salt", hashes::hex_encode(&self.salt));
                m.insert("iterations", i64::from(self.iterations));
            }
            "scrypt" => {
                m.insert("salt", hashes::hex_encode(&self.salt));
                m.insert("n", self.n as i64);
                m.insert("r", i64::from(self.r));
                m.insert("p", i64::from(self.p));
            }
            "bcrypt" => m.insert("setting", self.setting.as_str()),
            "crypt" => {
                m.insert("kind", self.setting.as_str());
                m.insert("salt", hashes::hex_encode(&self.salt));
                m.insert("rounds", i64::from(self.iterations));
            }
            "firebase-scrypt" => {
                m.insert("salt", hashes::hex_encode(&self.salt));
                m.insert("key", hashes::hex_encode(&self.key));
                m.insert("n", self.n as i64);
                m.insert("r", i64::from(self.r));
                m.insert("p", 1i64);
            }
            "argon2" => {
                m.insert("salt", hashes::hex_encode(&self.salt));
                m.insert("m", self.n as i64);
                m.insert("t", i64::from(self.iterations));
                m.insert("p", i64::from(self.p));
                m.insert("variant", i64::from(self.variant));
                m.insert("version", i64::from(self.version));
            }
            _ => {}
        }
        m.into()
    }
}

/// The outcome of [`check`]: verified here, or work for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Verified: match or not.
    Done(bool),
    /// The host must compute this; then call [`finish`].
    Host(HostWork),
}

/// Constant-time equality that refuses short and empty comparisons: whoever computed `a` (this
/// build or the host), an empty or truncated answer never matches.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && b.len() >= MIN_KEY_LEN && bool::from(a.ct_eq(b))
}

/// The estimated cost of one verification in milliseconds on one core of the machine the limits
/// were measured on (bcrypt 14: 1.5 s; PBKDF2: 0.4 µs per iteration and output block; scrypt:
/// 175 ms per 64 MiB pass natively, 1 s in the wasm; argon2: 0.8 s for 64 MiB × 10 passes).
pub fn cost_ms(d: &Descriptor) -> u64 {
    cost_ms_where(d, cfg!(feature = "wasm-digests"))
}

/// [`cost_ms`] for a build that computes digests, PBKDF2 and scrypt in the wasm (`wasm`: the
/// Node tools' build) or hands them to node:crypto (the login script).
pub fn cost_ms_where(d: &Descriptor, wasm: bool) -> u64 {
    match &d.scheme {
        Scheme::Bcrypt(h) | Scheme::Prehashed { bcrypt: h, .. } => {
            (1500u64 << h.cost.min(31)) >> 14
        }
        Scheme::Crypt { kind, rounds, .. } => {
            u64::from(*rounds) * crypt_round_ns(*kind) / 1_000_000
        }
        Scheme::Firebase { log_n, r, .. } => {
            let bytes = 128u64
                .saturating_mul(1u64 << (*log_n).min(40))
                .saturating_mul(u64::from(*r));
            bytes.saturating_mul(if wasm { 1500 } else { 175 }) / (64 << 20)
        }
        Scheme::Argon2 { m, t, .. } => u64::from(*m) * u64::from(*t) * 800 / (65_536 * 10),
        Scheme::Pbkdf2 {
            digest,
            iterations,
            hash,
            ..
        } => {
            let blocks = hash.len().div_ceil(digest.output_len().max(1)) as u64;
            u64::from(*iterations) * blocks * 4 / 10_000
        }
        Scheme::Scrypt { log_n, r, p, .. } => {
            let bytes = 128u64
                .saturating_mul(1u64 << (*log_n).min(40))
                .saturating_mul(u64::from(*r))
                .saturating_mul(u64::from(*p));
            // Measured: 1.5 s per 64 MiB in the wasm (`verify_password` of the full build).
            let per_pass = if wasm { 1500 } else { 175 };
            bytes.saturating_mul(per_pass) / (64 << 20)
        }
        Scheme::Digest { .. } | Scheme::Hmac { .. } => 1,
    }
}

/// The descriptor every unknown address is checked against, so that an address with no
/// account costs a sign-in as long as one with an account (bcrypt, cost 10; nothing matches
/// it, since its digest is not the output of any password).
pub fn dummy() -> Descriptor {
    Descriptor {
        encoding: PasswordEncoding::Utf8,
        salt: None,
        scheme: Scheme::Bcrypt(BcryptHash {
            cost: 10,
            salt: [0x5a; 16],
            digest: [0; 23],
        }),
    }
}

/// True when this build computes `digest` itself.
fn in_wasm(digest: Digest) -> bool {
    cfg!(feature = "wasm-digests") || (cfg!(feature = "fmt-digests") && digest == Digest::Md4)
}

/// True when [`check`] would hand this descriptor to the host (so calling it costs nothing).
pub fn runs_on_host(d: &Descriptor, host: HostCaps) -> bool {
    match &d.scheme {
        Scheme::Bcrypt(_) | Scheme::Prehashed { .. } => host.bcrypt,
        Scheme::Argon2 { .. } => host.argon2,
        // The wasm's own stepwise work, always off the login call.
        Scheme::Crypt { .. } => !cfg!(feature = "wasm-digests"),
        Scheme::Firebase { .. } => !cfg!(feature = "wasm-digests"),
        Scheme::Digest { digest, .. }
        | Scheme::Hmac { digest, .. }
        | Scheme::Pbkdf2 { digest, .. } => !in_wasm(*digest),
        Scheme::Scrypt { .. } => !cfg!(feature = "wasm-digests"),
    }
}

/// Verifies what this build can verify itself, and describes the rest for the host.
pub fn check(d: &Descriptor, password: &str) -> Result<Check, PasswordError> {
    check_with(d, password, HostCaps::default())
}

/// [`check`], handing bcrypt and argon2 to the host when it offers them.
pub fn check_with(d: &Descriptor, password: &str, host: HostCaps) -> Result<Check, PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::PasswordTooLong);
    }
    if cost_ms(d) > MAX_VERIFY_MS {
        return Err(PasswordError::WorkFactorTooHigh("cost", MAX_VERIFY_MS));
    }
    let pw = d.encoding.encode(password);
    if matches!(d.scheme, Scheme::Crypt { .. }) && pw.len() > MAX_CRYPT_PASSWORD_LEN {
        return Err(PasswordError::PasswordTooLong);
    }
    // The salted input: salt before or after the password bytes.
    let input: Vec<u8> = match &d.salt {
        None => pw.clone(),
        Some(s) if s.prefix => [s.bytes.as_slice(), &pw].concat(),
        Some(s) => [pw.as_slice(), &s.bytes].concat(),
    };
    Ok(match &d.scheme {
        Scheme::Prehashed { pre, bcrypt } => {
            let bcrypt = Scheme::Bcrypt(bcrypt.clone());
            let inner = Descriptor {
                encoding: PasswordEncoding::Utf8,
                salt: None,
                scheme: bcrypt,
            };
            return check_bytes(&inner, pre.apply(&pw), host);
        }
        Scheme::Crypt {
            kind,
            rounds,
            salt,
            hash,
            pre,
        } => {
            let data = match pre {
                Some(p) => p.apply(&pw),
                None => pw,
            };
            if cfg!(feature = "wasm-digests") {
                let out = crate::stepwise::crypt(*kind, &data, salt, *rounds);
                Check::Done(out.is_some_and(|o| same(&o, hash)))
            } else {
                Check::Host(HostWork {
                    salt: salt.clone(),
                    iterations: *rounds,
                    setting: crypt_name(*kind).to_owned(),
                    ..HostWork::new("crypt", None, data, hash.len())
                })
            }
        }
        #[cfg(feature = "wasm-digests")]
        Scheme::Firebase {
            log_n,
            r,
            salt,
            signer_key,
            hash,
        } => {
            let out = hashes::scrypt(&pw, salt, *log_n, *r, 1, 32)
                .map(|key| hashes::aes256_ctr(&key, signer_key));
            Check::Done(out.is_some_and(|o| same(&o, hash)))
        }
        #[cfg(not(feature = "wasm-digests"))]
        Scheme::Firebase {
            log_n,
            r,
            salt,
            signer_key,
            hash,
        } => Check::Host(HostWork {
            salt: salt.clone(),
            key: signer_key.clone(),
            n: 1u64 << log_n,
            r: *r,
            p: 1,
            ..HostWork::new("firebase-scrypt", None, pw, hash.len())
        }),
        _ => return check_bytes(d, input, host),
    })
}

/// [`check_with`] for the schemes that take the password's (salted) bytes as they are.
fn check_bytes(d: &Descriptor, input: Vec<u8>, host: HostCaps) -> Result<Check, PasswordError> {
    let pw = input.clone();
    // Only builds with a format that parses into digests, HMAC, PBKDF2 or scrypt carry that work.
    let digests = cfg!(any(
        feature = "fmt-digests",
        feature = "fmt-phpass",
        feature = "fmt-django",
        feature = "fmt-werkzeug",
        feature = "fmt-aspnet"
    ));
    Ok(match &d.scheme {
        Scheme::Digest { .. }
        | Scheme::Hmac { .. }
        | Scheme::Pbkdf2 { .. }
        | Scheme::Scrypt { .. }
            if !digests =>
        {
            return Err(PasswordError::NotInBuild("fmt-digests"))
        }
        Scheme::Bcrypt(h) if host.bcrypt => Check::Host(HostWork {
            setting: format!("$2b${:02}${}", h.cost, base64::encode(&h.salt, BCRYPT)),
            ..HostWork::new("bcrypt", None, input, 60)
        }),
        Scheme::Argon2 {
            variant,
            version,
            m,
            t,
            p,
            salt,
            hash,
        } if host.argon2 => Check::Host(HostWork {
            salt: salt.clone(),
            n: u64::from(*m),
            iterations: *t,
            p: *p,
            variant: match variant {
                hashes::Argon2Variant::D => 0,
                hashes::Argon2Variant::I => 1,
                hashes::Argon2Variant::Id => 2,
            },
            version: *version,
            ..HostWork::new("argon2", None, pw.clone(), hash.len())
        }),
        Scheme::Argon2 { .. } if !cfg!(feature = "fmt-argon2") => {
            return Err(PasswordError::NotInBuild("fmt-argon2"))
        }
        // bcrypt sees only the first 72 bytes of salt and password together, as Auth0 applies it.
        Scheme::Bcrypt(h) => {
            let out = bcrypt_raw(h.cost, &h.salt, &input);
            Check::Done(same(out.get(..23).unwrap_or(&[]), &h.digest))
        }
        Scheme::Argon2 {
            variant,
            version,
            m,
            t,
            p,
            salt,
            hash,
        } => {
            let out =
                crate::stepwise::argon2(*variant, *version, *m, *t, *p, &pw, salt, hash.len())
                    .ok_or_else(|| invalid("hash.value", "argon2 parameters rejected"))?;
            Check::Done(same(&out, hash))
        }
        Scheme::Digest { digest, hash } if in_wasm(*digest) => {
            Check::Done(same(&digest.hash(&[&input]), hash))
        }
        Scheme::Digest { digest, hash } => {
            Check::Host(HostWork::new("hash", Some(*digest), input, hash.len()))
        }
        Scheme::Hmac { digest, key, hash } if in_wasm(*digest) => {
            Check::Done(same(&digest.hmac(key, &input), hash))
        }
        Scheme::Hmac { digest, key, hash } => Check::Host(HostWork {
            key: key.clone(),
            ..HostWork::new("hmac", Some(*digest), input, hash.len())
        }),
        Scheme::Pbkdf2 {
            digest,
            iterations,
            salt,
            hash,
        } if in_wasm(*digest) => {
            let mut out = vec![0u8; hash.len()];
            digest.pbkdf2(&pw, salt, *iterations, &mut out);
            Check::Done(same(&out, hash))
        }
        Scheme::Pbkdf2 {
            digest,
            iterations,
            salt,
            hash,
        } => Check::Host(HostWork {
            salt: salt.clone(),
            iterations: *iterations,
            ..HostWork::new("pbkdf2", Some(*digest), pw, hash.len())
        }),
        #[cfg(feature = "wasm-digests")]
        Scheme::Scrypt {
            log_n,
            r,
            p,
            salt,
            hash,
        } => {
            let out = hashes::scrypt(&pw, salt, *log_n, *r, *p, hash.len())
                .ok_or_else(|| invalid("cost", "scrypt parameters rejected"))?;
            Check::Done(same(&out, hash))
        }
        #[cfg(not(feature = "wasm-digests"))]
        Scheme::Scrypt {
            log_n,
            r,
            p,
            salt,
            hash,
        } => Check::Host(HostWork {
            salt: salt.clone(),
            n: 1u64 << log_n,
            r: *r,
            p: *p,
            ..HostWork::new("scrypt", None, pw, hash.len())
        }),
        Scheme::Prehashed { .. } | Scheme::Crypt { .. } | Scheme::Firebase { .. } => {
            return Err(invalid("hash.value", "not a plain scheme"))
        }
    })
}

/// Compares the host's output for a descriptor with the expected digest, in constant time.
pub fn finish(d: &Descriptor, output: &[u8]) -> bool {
    match &d.scheme {
        Scheme::Digest { hash, .. }
        | Scheme::Hmac { hash, .. }
        | Scheme::Pbkdf2 { hash, .. }
        | Scheme::Scrypt { hash, .. }
        | Scheme::Argon2 { hash, .. }
        | Scheme::Crypt { hash, .. }
        | Scheme::Firebase { hash, .. } => same(output, hash),
        // The host's bcrypt answers with its whole string: the same cost and salt, and the digest
        // compared in constant time.
        Scheme::Bcrypt(h) | Scheme::Prehashed { bcrypt: h, .. } => std::str::from_utf8(output)
            .ok()
            .and_then(|text| parse_bcrypt(text).ok())
            .is_some_and(|got| {
                got.cost == h.cost && got.salt == h.salt && same(&got.digest, &h.digest)
            }),
    }
}

/// Verifies `password` against a descriptor. `Ok(false)` is a clean mismatch; an error means the
/// descriptor cannot be used, which a login treats as "cannot verify", never as a match. In a
/// build without `wasm-digests` the algorithms left to the host are refused here; use
/// [`check`] and [`finish`].
pub fn verify(descriptor: &Value, password: &str) -> Result<bool, PasswordError> {
    match check(&parse(descriptor)?, password)? {
        Check::Done(m) => Ok(m),
        Check::Host(w) => Err(PasswordError::UnsupportedAlgorithm(format!(
            "{} (needs the host's crypto)",
            w.op
        ))),
    }
}

/// A bcrypt string (`$2b$`, cost 10, as the import schema's `password_hash` requires) of a
/// secret nobody keeps: no password can match it, so the person must reset (which proves the
/// inbox). `secret` is 32 random bytes and `salt` 16, both drawn by the caller; one per export
/// run is enough.
pub fn forced_reset_hash(secret: &[u8; 32], salt: &[u8; 16]) -> Option<String> {
    bcrypt_format(10, salt, hashes::hex_encode(secret).as_bytes())
}

fn invalid_bcrypt(why: &str) -> PasswordError {
    PasswordError::InvalidField("hash.value", format!("not a bcrypt string: {why}"))
}

/// Parses and checks a bcrypt string: `$2a$`/`$2b$`/`$2y$`, two-digit cost, 53 characters of
/// salt and digest in bcrypt's base64 alphabet, canonical.
pub fn parse_bcrypt(s: &str) -> Result<BcryptHash, PasswordError> {
    if s.len() != 60 || !s.is_ascii() {
        return Err(invalid_bcrypt("length is not 60"));
    }
    let prefix = s.get(..4).unwrap_or("");
    if !matches!(prefix, "$2a$" | "$2b$" | "$2y$") {
        return Err(invalid_bcrypt("prefix must be $2a$, $2b$ or $2y$"));
    }
    let cost_text = s.get(4..6).unwrap_or("");
    if s.get(6..7) != Some("$") || !cost_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_bcrypt("cost must be two digits"));
    }
    let cost: u32 = cost_text
        .parse()
        .map_err(|_| invalid_bcrypt("cost must be two digits"))?;
    if !(MIN_BCRYPT_COST..=31).contains(&cost) {
        return Err(invalid_bcrypt("cost must be 04 to 31"));
    }
    if cost > MAX_BCRYPT_COST {
        return Err(PasswordError::WorkFactorTooHigh(
            "cost",
            u64::from(MAX_BCRYPT_COST),
        ));
    }
    let salt_text = s.get(7..29).unwrap_or("");
    let digest_text = s.get(29..60).unwrap_or("");
    // Canonical only: unused trailing bits must be zero, so a string no bcrypt could produce
    // never matches.
    let salt_bytes =
        base64::decode(salt_text, BCRYPT).ok_or_else(|| invalid_bcrypt("salt is not canonical"))?;
    let digest_bytes = base64::decode(digest_text, BCRYPT)
        .ok_or_else(|| invalid_bcrypt("digest is not canonical"))?;
    let salt: [u8; 16] = salt_bytes
        .try_into()
        .map_err(|_| invalid_bcrypt("salt length"))?;
    let digest: [u8; 23] = digest_bytes
        .try_into()
        .map_err(|_| invalid_bcrypt("digest length"))?;
    Ok(BcryptHash { cost, salt, digest })
}

/// bcrypt's core (EksBlowfishSetup + 64 encryptions of "OrpheanBeholderScryDoubt"), with the
/// password NUL-terminated and cut at 72 bytes as OpenBSD's `$2b$` does. One call runs it to
/// the end; [`crate::stepwise::Bcrypt`] is the same computation in bounded steps.
pub fn bcrypt_raw(cost: u32, salt: &[u8; 16], password: &[u8]) -> [u8; 24] {
    crate::stepwise::bcrypt(cost, salt, password)
}

/// Formats a bcrypt string (`$2b$`) from its parts.
pub fn bcrypt_format(cost: u32, salt: &[u8; 16], password: &[u8]) -> Option<String> {
    if !(MIN_BCRYPT_COST..=31).contains(&cost) {
        return None;
    }
    let out = bcrypt_raw(cost, salt, password);
    Some(format!(
        "$2b${cost:02}${}{}",
        base64::encode(salt, BCRYPT),
        base64::encode(out.get(..23)?, BCRYPT)
    ))
}

#[cfg(test)]
pub(crate) mod reference {
    use blowfish::Blowfish;

    /// The one-shot bcrypt this crate shipped before the stepwise one, kept as the reference the
    /// stepwise one is compared with.
    pub(crate) fn one_shot_bcrypt(cost: u32, salt: &[u8; 16], password: &[u8]) -> [u8; 24] {
        let mut key: Vec<u8> = password.iter().copied().take(72).collect();
        if key.len() < 72 {
            key.push(0);
        }
        let mut state = Blowfish::bc_init_state();
        state.salted_expand_key(salt, &key);
        for _ in 0..(1u64 << cost.min(31)) {
            state.bc_expand_key(&key);
            state.bc_expand_key(salt);
        }
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
                    block = state.bc_encrypt(block);
                }
                *l = block[0];
                *r = block[1];
                let bytes = [l.to_be_bytes(), r.to_be_bytes()].concat();
                chunk.copy_from_slice(&bytes);
            }
        }
        key.fill(0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(text: &str) -> Value {
        crate::json::parse(text).unwrap_or_else(|e| unreachable!("{e:?}"))
    }

    fn bcrypt(value: &str) -> Value {
        Map::new()
            .with("algorithm", "bcrypt")
            .with("hash", Map::new().with("value", value))
            .into()
    }

    // Vectors from OpenBSD's regress/lib/libc/bcrypt and the OpenWall crypt_blowfish test set.
    #[test]
    fn known_vectors() {
        let cases = [
            ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
            ("U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
            ("", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"),
            ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored",
             "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"),
        ];
        for (pw, h) in cases {
            assert_eq!(verify(&bcrypt(h), pw), Ok(true), "{h}");
            assert_eq!(
                verify(&bcrypt(h), &format!("{pw}x")),
                Ok(pw.len() >= 72),
                "{h}"
            );
        }
    }

    // OpenWall crypt_blowfish wrapper.c vectors with 8-bit bytes (not UTF-8), $2y$/$2b$ prefixes.
    #[test]
    fn raw_byte_vectors() {
        let cases: [(&str, &[u8]); 2] = [
            (
                "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq",
                &[0xa3],
            ),
            (
                "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e",
                &[0xff, 0xff, 0xa3],
            ),
        ];
        for (hash, pw) in cases {
            let h = parse_bcrypt(hash).unwrap_or_else(|e| unreachable!("{e:?}"));
            assert_eq!(
                &bcrypt_raw(h.cost, &h.salt, pw)[..23],
                &h.digest[..],
                "{hash}"
            );
        }
    }

    #[test]
    fn format_round_trips() {
        let salt = [7u8; 16];
        let s = bcrypt_format(4, &salt, b"hunter2").unwrap_or_default();
        assert_eq!(s.len(), 60);
        assert_eq!(verify(&bcrypt(&s), "hunter2"), Ok(true));
        assert_eq!(verify(&bcrypt(&s), "hunter3"), Ok(false));
    }

    #[test]
    fn refuses_malformed_bcrypt() {
        let good = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        let bad = [
            &good[..59],                                                    // short
            "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", // prefix
            "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", // cost
            "$2a$5x$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", // cost digits
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe+", // alphabet
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeX", // low bits set
        ];
        for b in bad {
            let e = verify(&bcrypt(b), "U*U");
            assert!(
                matches!(e, Err(PasswordError::InvalidField("hash.value", _))),
                "{b}: {e:?}"
            );
        }
        let hostile = "$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        assert_eq!(
            verify(&bcrypt(hostile), "x"),
            Err(PasswordError::WorkFactorTooHigh("cost", 14))
        );
    }

    #[test]
    fn refuses_malformed_descriptors() {
        let cases: [(Value, &str); 8] = [
            (j(r#""x""#), "password.not_object"),
            (j(r#"{}"#), "password.missing_field"),
            (
                j(r#"{"algorithm": 5, "hash": {"value": "x"}}"#),
                "password.wrong_type",
            ),
            (
                j(r#"{"algorithm": "rot13", "hash": {"value": "x"}}"#),
                "password.unknown_algorithm",
            ),
            (j(r#"{"algorithm": "bcrypt"}"#), "password.missing_field"),
            (
                j(r#"{"algorithm": "bcrypt", "hash": "x"}"#),
                "password.wrong_type",
            ),
            (
                j(r#"{"algorithm": "bcrypt", "hash": {"value": 1}}"#),
                "password.wrong_type",
            ),
            (
                j(
                    r#"{"algorithm": "bcrypt", "hash": {"value": "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}, "password": {"encoding": "utf16le"}}"#,
                ),
                "password.invalid_field",
            ),
        ];
        for (d, code) in cases {
            let e = parse(&d).err().map(|e| e.code());
            assert_eq!(e, Some(code), "{d:?}");
        }
    }

    #[test]
    fn encodings_match_node_buffer() {
        assert_eq!(PasswordEncoding::Latin1.encode("é€"), vec![0xe9, 0xac]);
        assert_eq!(
            PasswordEncoding::Utf16Le.encode("aé"),
            vec![0x61, 0, 0xe9, 0]
        );
        assert_eq!(PasswordEncoding::Utf8.encode("é"), vec![0xc3, 0xa9]);
    }
}
