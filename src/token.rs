//! HS256 JSON Web Tokens for the merge round trip.
//!
//! Outgoing (post-login → merge service): `iss` = `trickle`, `aud` = `trickle-merge`.
//! Returning (merge service → `/continue`): `iss` = `trickle-merge`, `aud` = `trickle`.
//! Distinct audiences mean a session token reflected back unchanged is refused.
//! Only HS256 is accepted (never `none`, never an asymmetric `alg` that could be confused with
//! the shared secret); the signature is compared in constant time before any claim is read.

use crate::base64::{self, URL_SAFE};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::event::ErrorBody;
use crate::json::{self, Map, Value};

type HmacSha256 = Hmac<Sha256>;

/// The issuer of session tokens sent to the merge service.
pub const ISS_TRICKLE: &str = "trickle";
/// The audience of session tokens sent to the merge service.
pub const AUD_MERGE: &str = "trickle-merge";
/// The issuer of tokens the merge service sends back.
pub const ISS_MERGE: &str = "trickle-merge";
/// The audience of tokens the merge service sends back.
pub const AUD_TRICKLE: &str = "trickle";
/// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;
/// The shortest secret accepted, in bytes (HS256 wants a key of at least 256 bits).
pub const MIN_SECRET_LEN: usize = 32;
/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    WeakSecret,
    /// Not three base64url parts of JSON objects, or too long.
    Malformed,
    /// The header's `alg` is not `HS256`.
    Algorithm,
    /// The signature does not match.
    Signature,
    /// `exp` is missing or in the past (beyond the leeway).
    Expired,
    /// `iat` or `nbf` lies in the future (beyond the leeway).
    NotYetValid,
    /// `iss` differs from the expected issuer.
    Issuer,
    /// `aud` differs from the expected audience.
    Audience,
    /// `sub` differs from the user.
    Subject,
    /// `state` differs from the transaction state.
    State,
    /// `jti` is not the single-use id that was issued (or it was already used).
    Jti,
}

impl TokenError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::WeakSecret => "token.weak_secret",
            TokenError::Malformed => "token.malformed",
            TokenError::Algorithm => "token.algorithm",
            TokenError::Signature => "token.signature",
            TokenError::Expired => "token.expired",
            TokenError::NotYetValid => "token.not_yet_valid",
            TokenError::Issuer => "token.issuer",
            TokenError::Audience => "token.audience",
            TokenError::Subject => "token.subject",
            TokenError::State => "token.state",
            TokenError::Jti => "token.jti",
        }
    }

    /// A message for logs and the denial reason.
    pub fn message(&self) -> &'static str {
        match self {
            TokenError::WeakSecret => "the token secret is shorter than 32 bytes",
            TokenError::Malformed => "the token is not a well-formed JWT",
            TokenError::Algorithm => "the token is not signed with HS256",
            TokenError::Signature => "the token signature is invalid",
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::Issuer => "the token was issued by someone else",
            TokenError::Audience => "the token is meant for someone else",
            TokenError::Subject => "the token belongs to another user",
            TokenError::State => "the token belongs to another login",
            TokenError::Jti => "the token was already used or replaced",
        }
    }

    /// As a boundary error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.message())
    }
}

fn mac(secret: &[u8]) -> Result<HmacSha256, TokenError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(TokenError::WeakSecret);
    }
    HmacSha256::new_from_slice(secret).map_err(|_| TokenError::WeakSecret)
}

/// Signs `claims` (a JSON object) as an HS256 JWT.
pub fn sign(claims: &Map, secret: &[u8]) -> Result<String, TokenError> {
    let header = base64::encode(br#"{"alg":"HS256","typ":"JWT"}"#, URL_SAFE);
    let payload = Value::Object(claims.clone()).to_json();
    let signing_input = format!("{header}.{}", base64::encode(payload.as_bytes(), URL_SAFE));
    let mut m = mac(secret)?;
    m.update(signing_input.as_bytes());
    let sig = base64::encode(&m.finalize().into_bytes(), URL_SAFE);
    Ok(format!("{signing_input}.{sig}"))
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The shared secret.
    pub secret: &'a [u8],
    /// Required `iss`.
    pub iss: &'a str,
    /// Required `aud` (a string, or an array containing it).
    pub aud: &'a str,
    /// Required `sub`.
    pub sub: &'a str,
    /// Required `state`, when the transaction has one.
    pub state: Option<&'a str>,
    /// Required `jti`; `None` means no token is outstanding, so every token is refused.
    pub jti: Option<&'a str>,
    /// The current time, in Unix seconds.
    pub now: i64,
}

fn decode_json(part: &str) -> Result<Map, TokenError> {
    let bytes = base64::decode(part, URL_SAFE).ok_or(TokenError::Malformed)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| TokenError::Malformed)?;
    match json::parse(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed),
    }
}

/// Checks signature, then expiry, issuer, audience, subject, state and jti, in that order.
/// Returns the claims on success.
pub fn verify(token: &str, want: &Expected<'_>) -> Result<Map, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header = decode_json(h)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(TokenError::Algorithm);
    }
    let sig = base64::decode(s, URL_SAFE).ok_or(TokenError::Signature)?;
    let mut m = mac(want.secret)?;
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::Signature)?;
    let claims = decode_json(p)?;
    let int = |k: &str| claims.get(k).and_then(Value::as_i64);
    match int("exp") {
        Some(exp) if exp.saturating_add(LEEWAY_SECONDS) >= want.now => {}
        _ => return Err(TokenError::Expired),
    }
    for k in ["iat", "nbf"] {
        if int(k).is_some_and(|t| t > want.now.saturating_add(LEEWAY_SECONDS)) {
            return Err(TokenError::NotYetValid);
        }
    }
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("iss") != Some(want.iss) {
        return Err(TokenError::Issuer);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == want.aud,
        // Our tokens name one audience; an array is accepted only when it names nobody else.
        Some(Value::Array(a)) => !a.is_empty() && a.iter().all(|x| x.as_str() == Some(want.aud)),
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::Audience);
    }
    if text("sub") != Some(want.sub) {
        return Err(TokenError::Subject);
    }
    if let Some(state) = want.state {
        if text("state") != Some(state) {
            return Err(TokenError::State);
        }
    }
    match (want.jti, text("jti")) {
        (Some(expected), Some(got)) if ct_str_eq(expected, got) => Ok(claims),
        _ => Err(TokenError::Jti),
    }
}

/// Constant-time equality of two strings (length is not hidden).
pub fn ct_str_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Builds the standard claims of a token.
#[allow(clippy::too_many_arguments)]
pub fn claims(iss: &str, aud: &str, sub: &str, jti: &str, now: i64, ttl: i64, extra: Map) -> Map {
    let mut c = extra;
    c.extend(
        Map::new()
            .with("iss", iss)
            .with("aud", aud)
            .with("sub", sub)
            .with("jti", jti)
            .with("iat", now)
            .with("exp", now.saturating_add(ttl)),
    );
    c
}

#[cfg(test)]
mod tests {

    fn good(now: i64) -> Expected<'static> {
        Expected {
            secret: b"0123456789abcdef0123456789abcdef",
            iss: ISS_MERGE,
            aud: AUD_TRICKLE,
            sub: "auth0|u",
            state: Some("st"),
            jti: Some("jti-0123456789abcdef"),
            now,
        }
    }

    /// The claims of a merge result for `auth0|u`, as the merge service issues them, plus `extra`.
    fn ours_with(now: i64, extra: Map) -> Map {
        claims(
            ISS_MERGE,
            AUD_TRICKLE,
            "auth0|u",
            "jti-0123456789abcdef",
            now,
            300,
            extra.with("state", "st"),
        )
    }

    fn ours(now: i64) -> Map {
        ours_with(now, Map::new())
    }

    fn signed(extra: Map, now: i64) -> String {
        let c = ours_with(now, extra);
        sign(&c, good(now).secret).unwrap_or_default()
    }

    #[test]
    fn an_audience_array_naming_anyone_else_is_refused() {
        let now = 1_800_000_000;
        for (aud, ok) in [
            (Value::from(vec![AUD_TRICKLE]), true),
            (Value::from(vec![AUD_TRICKLE, AUD_TRICKLE]), true),
            (Value::from(vec!["evil", AUD_TRICKLE]), false),
            (Value::from(vec![AUD_TRICKLE, "evil"]), false),
            (Value::Array(vec![]), false),
            (Value::Array(vec![Value::Bool(true)]), false),
        ] {
            let mut c = ours(now);
            c.insert("aud", aud.clone());
            let t = sign(&c, good(now).secret).unwrap_or_default();
            assert_eq!(verify(&t, &good(now)).is_ok(), ok, "{}", aud.to_json());
        }
    }

    #[test]
    fn the_length_cap_is_exactly_8192_bytes() {
        let now = 1_800_000_000;
        let base = signed(Map::new(), now);
        assert!(verify(&base, &good(now)).is_ok());
        // Padding the payload keeps the token well-formed up to the cap: at the cap the
        // signature is checked (and fails), one byte over it is refused unread.
        let (h, rest) = base.split_once('.').unwrap_or_default();
        let (p, sig) = rest.split_once('.').unwrap_or_default();
        let at_cap = format!("{h}.{p}{}.{sig}", "A".repeat(MAX_TOKEN_LEN - base.len()));
        assert_eq!(at_cap.len(), MAX_TOKEN_LEN);
        assert_eq!(
            verify(&at_cap, &good(now)).err(),
            Some(TokenError::Signature)
        );
        let over = format!(
            "{h}.{p}{}.{sig}",
            "A".repeat(MAX_TOKEN_LEN + 1 - base.len())
        );
        assert_eq!(verify(&over, &good(now)).err(), Some(TokenError::Malformed));
    }

    #[test]
    fn every_refusal_has_its_own_message() {
        let all = [
            TokenError::WeakSecret,
            TokenError::Malformed,
            TokenError::Algorithm,
            TokenError::Signature,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::Issuer,
            TokenError::Audience,
            TokenError::Subject,
            TokenError::State,
            TokenError::Jti,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for e in &all {
            assert!(e.message().starts_with("the token"), "{e:?}");
            assert!(seen.insert(e.message()), "{e:?}");
            assert_eq!(e.body().message, e.message());
        }
    }

    #[test]
    fn the_leeway_is_exactly_thirty_seconds_each_way() {
        let now = 1_800_000_000;
        let with = |k: &'static str, t: i64| {
            let mut c = ours(now);
            c.insert(k, t);
            verify(&sign(&c, good(now).secret).unwrap_or_default(), &good(now)).err()
        };
        assert_eq!(with("exp", now - LEEWAY_SECONDS), None);
        assert_eq!(
            with("exp", now - LEEWAY_SECONDS - 1),
            Some(TokenError::Expired)
        );
        for k in ["iat", "nbf"] {
            assert_eq!(with(k, now + LEEWAY_SECONDS), None, "{k}");
            assert_eq!(
                with(k, now + LEEWAY_SECONDS + 1),
                Some(TokenError::NotYetValid),
                "{k}"
            );
        }
    }

    #[test]
    fn extreme_times_fail_closed_without_overflow() {
        let now = 1_800_000_000;
        let mut c = ours(now);
        c.insert("exp", i64::MAX);
        let t = sign(&c, good(now).secret).unwrap_or_default();
        assert!(verify(&t, &good(now)).is_ok());
        assert_eq!(
            verify(&t, &good(i64::MAX)).err(),
            None,
            "exp at the end of time is not expired"
        );
        c.insert("exp", i64::MIN);
        let t = sign(&c, good(now).secret).unwrap_or_default();
        assert_eq!(verify(&t, &good(now)).err(), Some(TokenError::Expired));
        let far = claims(
            ISS_MERGE,
            AUD_TRICKLE,
            "s",
            "j",
            i64::MAX - 1,
            300,
            Map::new(),
        );
        assert_eq!(far.get("exp").and_then(Value::as_i64), Some(i64::MAX));
    }

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn returning(extra: Map, now: i64) -> String {
        let c = claims(ISS_MERGE, AUD_TRICKLE, "auth0|p1", "j1", now, 300, extra);
        sign(&c, SECRET).unwrap_or_default()
    }

    fn want(now: i64) -> Expected<'static> {
        Expected {
            secret: SECRET,
            iss: ISS_MERGE,
            aud: AUD_TRICKLE,
            sub: "auth0|p1",
            state: Some("st"),
            jti: Some("j1"),
            now,
        }
    }

    #[test]
    fn round_trip() {
        let t = returning(
            Map::new().with("state", "st").with("outcome", "merged"),
            1000,
        );
        let c = verify(&t, &want(1000));
        assert_eq!(
            c.ok().and_then(|c| c.get("outcome").cloned()),
            Some(Value::from("merged"))
        );
    }

    // RFC 7515 appendix A.1 is HS256 with a 64-byte key; this checks the signing input layout.
    #[test]
    fn rfc7515_a1_signature() {
        let key = base64::decode(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
            URL_SAFE,
        )
        .unwrap_or_default();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let w = Expected {
            secret: &key,
            iss: "joe",
            aud: "x",
            sub: "x",
            state: None,
            jti: None,
            now: 1_300_819_000,
        };
        // Signature and expiry pass; the audience is what fails.
        assert_eq!(verify(token, &w).err(), Some(TokenError::Audience));
        let tampered = token.replace("dBjft", "dBjfu");
        assert_eq!(verify(&tampered, &w).err(), Some(TokenError::Signature));
    }

    #[test]
    fn refusals() {
        let now = 10_000;
        let good = returning(Map::new().with("state", "st"), now);
        assert_eq!(
            verify(
                &good,
                &Expected {
                    now: now + 300 + 31,
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Expired)
        );
        assert!(verify(
            &good,
            &Expected {
                now: now + 300 + 30,
                ..want(now)
            }
        )
        .is_ok());
        assert_eq!(
            verify(
                &good,
                &Expected {
                    sub: "auth0|p2",
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Subject)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    state: Some("other"),
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::State)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    jti: Some("j2"),
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Jti)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    jti: None,
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Jti)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    aud: AUD_MERGE,
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Audience)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    iss: ISS_TRICKLE,
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Issuer)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    secret: b"another-secret-of-32-bytes-long!!",
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::Signature)
        );
        assert_eq!(
            verify(
                &good,
                &Expected {
                    secret: b"short",
                    ..want(now)
                }
            )
            .err(),
            Some(TokenError::WeakSecret)
        );
        let future = returning(Map::new().with("state", "st"), now + 100);
        assert_eq!(
            verify(&future, &want(now)).err(),
            Some(TokenError::NotYetValid)
        );
        // alg=none with the same claims
        let parts: Vec<&str> = good.split('.').collect();
        let none = format!(
            "{}.{}.",
            base64::encode(br#"{"alg":"none"}"#, URL_SAFE),
            parts.get(1).copied().unwrap_or("")
        );
        assert_eq!(verify(&none, &want(now)).err(), Some(TokenError::Algorithm));
        for junk in ["", "a.b", "a.b.c.d", "!!.??.##", &"x".repeat(9000)] {
            assert_eq!(
                verify(junk, &want(now)).err(),
                Some(TokenError::Malformed),
                "{junk}"
            );
        }
    }
}
