//! Legacy password verification against Auth0's `custom_password_hash` descriptor.
//!
//! The descriptor has exactly the JSON shape of Auth0's bulk-import field, so one record serves
//! the login check and the export. Parsing is strict and total: a malformed or unsupported
//! descriptor is a [`PasswordError`] with a stable code naming the field, never a match.
//!
//! Algorithms are added behind [`Scheme`]: parsing validates a descriptor into a `Scheme`, and
//! `verify` dispatches on it. This build verifies bcrypt; the other names of Auth0's list parse
//! as known but are refused as `password.unsupported_algorithm` ("cannot verify": the person can
//! still reset the password).

use blowfish::Blowfish;
use subtle::ConstantTimeEq;

use crate::base64::{self, BCRYPT};
use crate::event::ErrorBody;
use crate::json::{Map, Value};

/// Highest bcrypt cost accepted. Cost 14 takes about a second in wasm; a login may hold a few
/// accounts and must finish inside Auth0's 20 s limit, so anything above is refused as hostile
/// rather than allowed to pin the login container (cost 31 would run for days).
pub const MAX_BCRYPT_COST: u32 = 14;
/// Lowest bcrypt cost that exists.
pub const MIN_BCRYPT_COST: u32 = 4;
/// Longest descriptor `hash.value` accepted, in bytes.
pub const MAX_HASH_VALUE_LEN: usize = 1024;
/// Longest password accepted, in bytes (far above any real one; bounds the work per call).
pub const MAX_PASSWORD_LEN: usize = 4096;

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
    /// `algorithm` is not one of Auth0's names.
    UnknownAlgorithm(String),
    /// `algorithm` is one of Auth0's names but this build cannot verify it.
    UnsupportedAlgorithm(String),
    /// A work factor exceeds the documented limit.
    WorkFactorTooHigh(&'static str, u64),
    /// The typed password is longer than [`MAX_PASSWORD_LEN`].
    PasswordTooLong,
}

impl PasswordError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            PasswordError::NotAnObject => "password.not_object",
            PasswordError::MissingField(_) => "password.missing_field",
            PasswordError::WrongType(_) => "password.wrong_type",
            PasswordError::InvalidField(..) => "password.invalid_field",
            PasswordError::UnknownAlgorithm(_) => "password.unknown_algorithm",
            PasswordError::UnsupportedAlgorithm(_) => "password.unsupported_algorithm",
            PasswordError::WorkFactorTooHigh(..) => "password.work_factor_too_high",
            PasswordError::PasswordTooLong => "password.too_long",
        }
    }

    /// A message naming the field concerned.
    pub fn message(&self) -> String {
        match self {
            PasswordError::NotAnObject => "custom_password_hash must be a JSON object".into(),
            PasswordError::MissingField(f) => format!("{f} is required"),
            PasswordError::WrongType(f) => format!("{f} has the wrong type"),
            PasswordError::InvalidField(f, why) => format!("{f} is invalid: {why}"),
            PasswordError::UnknownAlgorithm(a) => {
                format!("algorithm {a:?} is not one of Auth0's custom_password_hash algorithms")
            }
            PasswordError::UnsupportedAlgorithm(a) => {
                format!("algorithm {a:?} cannot be verified by this build")
            }
            PasswordError::WorkFactorTooHigh(f, max) => {
                format!("{f} exceeds the limit of {max}")
            }
            PasswordError::PasswordTooLong => {
                format!("password is longer than {MAX_PASSWORD_LEN} bytes")
            }
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
pub enum Scheme {
    /// A bcrypt string, already split and checked.
    Bcrypt(BcryptHash),
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

/// Validates a descriptor on its own, without a password (used by the export).
pub fn parse(descriptor: &Value) -> Result<Scheme, PasswordError> {
    let obj = descriptor.as_object().ok_or(PasswordError::NotAnObject)?;
    let algorithm = str_field(obj, "algorithm", "algorithm")?
        .ok_or(PasswordError::MissingField("algorithm"))?;
    if !ALGORITHMS.contains(&algorithm) {
        return Err(PasswordError::UnknownAlgorithm(
            algorithm.chars().take(32).collect(),
        ));
    }
    let hash = match field(obj, "hash") {
        None => return Err(PasswordError::MissingField("hash")),
        Some(Value::Object(h)) => h,
        Some(_) => return Err(PasswordError::WrongType("hash")),
    };
    let value =
        str_field(hash, "value", "hash.value")?.ok_or(PasswordError::MissingField("hash.value"))?;
    if value.len() > MAX_HASH_VALUE_LEN {
        return Err(PasswordError::InvalidField("hash.value", "too long".into()));
    }
    let password_encoding = match field(obj, "password") {
        None => PasswordEncoding::Utf8,
        Some(Value::Object(p)) => match str_field(p, "encoding", "password.encoding")? {
            None => PasswordEncoding::Utf8,
            Some(enc) => PasswordEncoding::parse(enc).ok_or_else(|| {
                PasswordError::InvalidField("password.encoding", "unknown encoding".into())
            })?,
        },
        Some(_) => return Err(PasswordError::WrongType("password")),
    };
    match algorithm {
        "bcrypt" => {
            if password_encoding != PasswordEncoding::Utf8 {
                return Err(PasswordError::InvalidField(
                    "password.encoding",
                    "bcrypt accepts utf8 only".into(),
                ));
            }
            parse_bcrypt(value).map(Scheme::Bcrypt)
        }
        other => Err(PasswordError::UnsupportedAlgorithm(other.to_owned())),
    }
}

/// Verifies `password` against a descriptor. `Ok(false)` is a clean mismatch; an error means the
/// descriptor cannot be used, which a login treats as "cannot verify", never as a match.
pub fn verify(descriptor: &Value, password: &str) -> Result<bool, PasswordError> {
    let scheme = parse(descriptor)?;
    verify_scheme(&scheme, password)
}

/// Verifies `password` against an already validated scheme.
pub fn verify_scheme(scheme: &Scheme, password: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::PasswordTooLong);
    }
    match scheme {
        Scheme::Bcrypt(h) => {
            let out = bcrypt_raw(h.cost, &h.salt, password.as_bytes());
            let computed = out.get(..23).unwrap_or(&[]);
            Ok(computed.ct_eq(&h.digest[..]).into())
        }
    }
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
/// password NUL-terminated and cut at 72 bytes as OpenBSD's `$2b$` does.
pub fn bcrypt_raw(cost: u32, salt: &[u8; 16], password: &[u8]) -> [u8; 24] {
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
