//! The formats outside Auth0's list (src/formats.rs) against values their own frameworks made
//! (`tests/fixtures/formats.json`, written by `scripts/vectors/formats.py`: passlib, Django,
//! Werkzeug, pyca/bcrypt, hashlib transcriptions of WordPress, Drupal and ASP.NET Identity, and
//! Firebase's published vector), and the hostile values each parser must refuse before work.
#![cfg(all(feature = "wasm-digests", feature = "formats-all"))]

use std::time::Instant;

use trickle::json::{self, Value};
use trickle::password::{self, PasswordError};

fn fixtures() -> Vec<Value> {
    let path = format!("{}/tests/fixtures/formats.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| unreachable!("{path}: {e}"));
    match json::parse(&text) {
        Ok(Value::Array(items)) => items,
        other => unreachable!("{path}: {other:?}"),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn d(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| unreachable!("{text}: {e:?}"))
}

fn code(descriptor: &str, pw: &str) -> &'static str {
    match password::verify(&d(descriptor), pw) {
        Ok(m) => unreachable!("{descriptor} verified as {m}"),
        Err(e) => e.code(),
    }
}

#[test]
fn every_vector_matches_its_password_and_no_other() {
    let all = fixtures();
    assert!(all.len() >= 80, "{} vectors", all.len());
    let mut seen = std::collections::BTreeSet::new();
    for v in &all {
        let descriptor = v.get("descriptor").cloned().unwrap_or(Value::Null);
        let pw = text(v, "password");
        let source = text(v, "source");
        seen.insert(text(&descriptor, "algorithm").to_owned());
        // Every framework default fits the time a verification may take at sign-in, as the core
        // estimates it for the login script (which hands PBKDF2 and scrypt to node:crypto).
        let parsed =
            password::parse(&descriptor).unwrap_or_else(|e| unreachable!("{source}: {e:?}"));
        let fits = password::cost_ms_where(&parsed, false) <= password::MAX_VERIFY_MS;
        let framework_default = [
            "Django",
            "WordPress",
            "Drupal",
            "Werkzeug",
            "ASP.NET",
            "glibc",
            "phpBB",
            "Firebase",
        ]
        .iter()
        .any(|f| source.contains(f));
        assert!(
            fits || !framework_default,
            "{source}: a framework default must fit"
        );
        // Beyond a second at sign-in (passlib's own default of 656 000 sha512-crypt rounds), or
        // beyond what the tools' wasm build may spend (Django's scrypt: 80 MiB at 1.5 s per
        // 64 MiB; the login script verifies it natively, tests/node/formats.test.js): refused
        // before any work, whoever asks.
        if !fits || password::cost_ms(&parsed) > password::MAX_VERIFY_MS {
            let started = Instant::now();
            assert_eq!(
                password::verify(&descriptor, pw),
                Err(PasswordError::WorkFactorTooHigh(
                    "cost",
                    password::MAX_VERIFY_MS
                )),
                "{source}"
            );
            assert!(started.elapsed().as_millis() < 50, "{source}");
            continue;
        }
        let started = Instant::now();
        assert_eq!(password::verify(&descriptor, pw), Ok(true), "{source}");
        let took = started.elapsed();
        let mut wrong = pw.to_owned();
        wrong.push('!');
        assert_eq!(
            password::verify(&descriptor, &wrong),
            Ok(false),
            "{source}: wrong password"
        );
        assert_eq!(
            password::verify(&descriptor, ""),
            Ok(false),
            "{source}: empty password"
        );
        eprintln!("{:>6} ms  {source}", took.as_millis());
        // None of these can be imported by Auth0: the export gives their people a forced reset.
        assert!(!password::importable(&descriptor), "{source}");
    }
    for a in [
        "crypt",
        "ldap",
        "phpass",
        "wordpress",
        "drupal7",
        "django",
        "werkzeug",
        "aspnet-identity",
        "firebase-scrypt",
    ] {
        assert!(seen.contains(a), "no vector for {a}");
    }
}

#[test]
fn a_changed_hash_character_never_matches() {
    for v in fixtures().iter().take(30) {
        let descriptor = v.get("descriptor").cloned().unwrap_or(Value::Null);
        let value = text(descriptor.get("hash").unwrap_or(&Value::Null), "value").to_owned();
        // The last character of the hash, changed within its alphabet.
        let mut chars: Vec<char> = value.chars().collect();
        let last = chars.len().saturating_sub(3);
        if let Some(c) = chars.get_mut(last) {
            *c = if *c == 'a' { 'b' } else { 'a' };
        }
        let changed: String = chars.into_iter().collect();
        let descriptor = d(&descriptor.to_json().replace(&value, &changed));
        let source = text(v, "source");
        assert_ne!(
            password::verify(&descriptor, text(v, "password")),
            Ok(true),
            "{source}: {changed}"
        );
    }
}

#[test]
fn work_factors_beyond_a_second_are_refused_before_any_work() {
    let slow = [
        // sha512-crypt at glibc's maximum rounds: days of work.
        r#"{"algorithm":"crypt","hash":{"value":"$6$rounds=999999999$abcdefgh$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
        // Ten digits of rounds are read (and clamped to glibc's maximum, as glibc does).
        r#"{"algorithm":"crypt","hash":{"value":"$5$rounds=1000000000$abc$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
        // phpass at 2^30 iterations.
        r#"{"algorithm":"phpass","hash":{"value":"$P$SabcdefghAAAAAAAAAAAAAAAAAAAAAA"}}"#,
        // Drupal 7 at 2^30.
        r#"{"algorithm":"drupal7","hash":{"value":"$S$SabcdefghAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
    ];
    for s in slow {
        let started = Instant::now();
        assert_eq!(code(s, "pw"), "password.work_factor_too_high", "{s}");
        assert!(started.elapsed().as_millis() < 50, "{s}");
    }
    // Beyond the parsers' own limits.
    let refused = [
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$4000000000$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
            "password.work_factor_too_high",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"argon2$argon2id$v=19$m=1048576,t=2,p=8$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            "password.work_factor_too_high",
        ),
        (
            r#"{"algorithm":"werkzeug","hash":{"value":"scrypt:1048576:8:1$salt$00112233445566778899aabbccddeeff"}}"#,
            "password.work_factor_too_high",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"scrypt$1048576$salt$8$1$AAAAAAAAAAAAAAAAAAAAAA=="}}"#,
            "password.work_factor_too_high",
        ),
        (
            r#"{"algorithm":"firebase-scrypt","hash":{"value":"AAAAAAAAAAAAAAAAAAAAAA=="},"salt":{"value":"AAAA","encoding":"base64"},"firebase":{"signer_key":"AAAAAAAAAAAAAAAAAAAAAA==","salt_separator":"Bw==","rounds":8,"mem_cost":30}}"#,
            "password.invalid_field",
        ),
        // ASP.NET v3 with 4 000 000 000 iterations (0xEE6B2800).
        (
            r#"{"algorithm":"aspnet-identity","hash":{"value":"AQAAAAHuaygAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
            "password.work_factor_too_high",
        ),
    ];
    for (s, want) in refused {
        let started = Instant::now();
        assert_eq!(code(s, "pw"), want, "{s}");
        assert!(started.elapsed().as_millis() < 50, "{s}");
    }
}

#[test]
fn pbkdf2_iterations_are_bounded_at_the_limit_itself() {
    let at = |n: u32| {
        d(&format!(
            r#"{{"algorithm":"django","hash":{{"value":"pbkdf2_sha256${n}$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}}}"#
        ))
    };
    let limit = password::limits::PBKDF2_ITERATIONS;
    assert!(password::parse(&at(limit)).is_ok());
    assert_eq!(
        password::parse(&at(limit + 1)).err(),
        Some(PasswordError::WorkFactorTooHigh(
            "iterations",
            u64::from(limit)
        ))
    );
}

#[test]
fn malformed_values_are_refused_with_stable_codes() {
    let cases = [
        // crypt: DES, unknown ids, bad salt, short hash, bad alphabet.
        (
            r#"{"algorithm":"crypt","hash":{"value":"abJnggxhB/yWI"}}"#,
            "password.unsupported_variant",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$y$j9T$abc$def"}}"#,
            "password.unsupported_variant",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$1$$l3aUB.F3rhpeYRBZCEPf7."}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$1$abc$short"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$1$abc$l3aUB+F3rhpeYRBZCEPf7."}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$5$rounds=12x$abc$def"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$6$rounds=5000"}}"#,
            "password.invalid_field",
        ),
        // A salt with crypt's field separator or a control character; rounds empty or too long.
        (
            r#"{"algorithm":"crypt","hash":{"value":"$1$ab:c$l3aUB.F3rhpeYRBZCEPf7."}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$1$ab\u0001c$l3aUB.F3rhpeYRBZCEPf7."}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$5$rounds=$abc$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"crypt","hash":{"value":"$5$rounds=12345678901$abc$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            "password.invalid_field",
        ),
        // Django's iterations: eleven digits (even of a small number), none, or a sign.
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$00000000001$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$+100$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
            "password.invalid_field",
        ),
        // Drupal's SHA-512 phpass is not phpass as WordPress and phpBB write it.
        (
            r#"{"algorithm":"phpass","hash":{"value":"$S$DabcdefghAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            "password.invalid_field",
        ),
        // phpass: count out of range, short, wrong id.
        (
            r#"{"algorithm":"phpass","hash":{"value":"$P$4abcdefghAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"phpass","hash":{"value":"$P$Babcdefgh"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"phpass","hash":{"value":"$S$Dabcdefgh"}}"#,
            "password.invalid_field",
        ),
        // WordPress: $wp$ without a bcrypt string.
        (
            r#"{"algorithm":"wordpress","hash":{"value":"$wp$2y$99$x"}}"#,
            "password.invalid_field",
        ),
        // Django: unsupported hashers, wrong shapes, a salt outside the value.
        (
            r#"{"algorithm":"django","hash":{"value":"md5$salt$0123"}}"#,
            "password.unsupported_variant",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"unsalted_md5$$0123"}}"#,
            "password.unsupported_variant",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$100$salt"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$100$salt$AAAA"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$-1$salt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"bcrypt_sha256$$2b$99$x"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"django","hash":{"value":"pbkdf2_sha256$1$s$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"salt":{"value":"x"}}"#,
            "password.invalid_field",
        ),
        // Werkzeug: the pre-2.0 HMAC forms, a pbkdf2 without iterations, odd hex.
        (
            r#"{"algorithm":"werkzeug","hash":{"value":"sha256$salt$00112233"}}"#,
            "password.unsupported_variant",
        ),
        (
            r#"{"algorithm":"werkzeug","hash":{"value":"pbkdf2:sha256$salt$00112233"}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"werkzeug","hash":{"value":"pbkdf2:sha256:1000$salt$0g"}}"#,
            "password.invalid_field",
        ),
        // ASP.NET: unknown version, v2 of the wrong length, v3 salt length past the end.
        (
            r#"{"algorithm":"aspnet-identity","hash":{"value":"AgAAAA=="}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"aspnet-identity","hash":{"value":"AAAAAA=="}}"#,
            "password.invalid_field",
        ),
        (
            r#"{"algorithm":"aspnet-identity","hash":{"value":"AQAAAAEAACcQ/////wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}"#,
            "password.invalid_field",
        ),
        // Firebase: the project's parameters are required.
        (
            r#"{"algorithm":"firebase-scrypt","hash":{"value":"AAAAAAAAAAAAAAAAAAAAAA=="},"salt":{"value":"AAAA","encoding":"base64"}}"#,
            "password.missing_field",
        ),
        (
            r#"{"algorithm":"firebase-scrypt","hash":{"value":"AAAAAAAAAAAAAAAAAAAAAA=="},"firebase":{"signer_key":"AAAAAAAAAAAAAAAAAAAAAA==","salt_separator":"Bw==","rounds":8,"mem_cost":14}}"#,
            "password.missing_field",
        ),
        // LDAP {CRYPT} over DES.
        (
            r#"{"algorithm":"ldap","hash":{"value":"{CRYPT}abJnggxhB/yWI"}}"#,
            "password.unsupported_variant",
        ),
        // A password encoding these frameworks never use.
        (
            r#"{"algorithm":"crypt","hash":{"value":"$1$abc$l3aUB.F3rhpeYRBZCEPf7."},"password":{"encoding":"utf16le"}}"#,
            "password.invalid_field",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(code(s, "pw"), want, "{s}");
    }
}

#[test]
fn crypt_bounds_the_password_its_setup_squares() {
    let v = fixtures()
        .into_iter()
        .find(|v| text(v, "source").starts_with("passlib sha512_crypt, glibc"))
        .and_then(|v| v.get("descriptor").cloned())
        .unwrap_or(Value::Null);
    let long = "p".repeat(password::MAX_CRYPT_PASSWORD_LEN + 1);
    let started = Instant::now();
    assert_eq!(
        password::verify(&v, &long),
        Err(PasswordError::PasswordTooLong)
    );
    assert!(started.elapsed().as_millis() < 50);
}
