//! The only file that knows about JavaScript. Every export takes one JSON string and returns one
//! JSON string; nothing wasm-owned crosses the boundary, so there is nothing to free. Unusable
//! input comes back as `{"outcome":"invalid","error":{"code","message"}}`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::event::ErrorBody;

/// The largest input accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 1 << 20;

fn invalid(error: ErrorBody) -> String {
    json!({"outcome": "invalid", "error": error, "events": []}).to_string()
}

fn run<I: DeserializeOwned, O: Serialize>(input: &str, f: impl FnOnce(&I) -> O) -> String {
    if input.len() > MAX_INPUT_LEN {
        return invalid(ErrorBody::new(
            "input.too_large",
            "input is larger than 1 MiB",
        ));
    }
    match serde_json::from_str::<I>(input) {
        Ok(i) => serde_json::to_string(&f(&i)).unwrap_or_else(|_| {
            invalid(ErrorBody::new(
                "output.serialize",
                "could not serialise the decision",
            ))
        }),
        Err(e) => invalid(ErrorBody::new(
            "input.invalid",
            format!("input is not usable: {e}"),
        )),
    }
}

/// The crate version and the features of this build, as JSON.
#[wasm_bindgen]
pub fn version() -> String {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "login": cfg!(feature = "login"),
        "chain": cfg!(feature = "chain"),
    })
    .to_string()
}

#[cfg(feature = "tools")]
/// Normalises an email: `{"email": …}` → `{"outcome":"ok","email": …}`.
#[wasm_bindgen]
pub fn normalize_email(input: &str) -> String {
    #[derive(serde::Deserialize)]
    struct In {
        email: String,
    }
    run(input, |i: &In| match crate::email::normalize(&i.email) {
        Ok(e) => json!({"outcome": "ok", "email": e}),
        Err(e) => json!({"outcome": "invalid", "error": e.body()}),
    })
}

/// Aborts the instance on purpose. The shims use it to prove that after a trap they drop the
/// instance and the next call succeeds on a fresh one.
#[wasm_bindgen]
pub fn trap() {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
}

#[cfg(feature = "login")]
mod login_exports {
    use super::*;
    use crate::login;
    #[cfg(feature = "tools")]
    use crate::password;

    /// Custom-DB `login`: see [`crate::login::login`].
    #[wasm_bindgen]
    pub fn login(input: &str) -> String {
        run(input, login::login)
    }

    /// Custom-DB `getUser`: see [`crate::login::get_user`].
    #[wasm_bindgen]
    pub fn get_user(input: &str) -> String {
        run(input, login::get_user)
    }

    #[cfg(feature = "tools")]
    /// `{"descriptor": …}` → `{"outcome":"ok"}` or `{"outcome":"invalid","error":…}`.
    #[wasm_bindgen]
    pub fn validate_password_hash(input: &str) -> String {
        #[derive(serde::Deserialize)]
        struct In {
            descriptor: serde_json::Value,
        }
        run(input, |i: &In| match password::parse(&i.descriptor) {
            Ok(_) => json!({"outcome": "ok"}),
            Err(e) => json!({"outcome": "invalid", "error": e.body()}),
        })
    }

    #[cfg(feature = "tools")]
    /// `{"descriptor": …, "password": …}` → `{"outcome":"match"|"mismatch"}` or an error.
    #[wasm_bindgen]
    pub fn verify_password(input: &str) -> String {
        #[derive(serde::Deserialize)]
        struct In {
            descriptor: serde_json::Value,
            password: String,
        }
        run(input, |i: &In| {
            match password::verify(&i.descriptor, &i.password) {
                Ok(true) => json!({"outcome": "match"}),
                Ok(false) => json!({"outcome": "mismatch"}),
                Err(e) => json!({"outcome": "invalid", "error": e.body()}),
            }
        })
    }
}

#[cfg(feature = "chain")]
mod chain_exports {
    use super::*;
    use crate::chain;
    #[cfg(feature = "tools")]
    use crate::token;

    /// The post-login chain's decision: see [`crate::chain::plan`].
    #[wasm_bindgen]
    pub fn chain_plan(input: &str) -> String {
        run(input, chain::plan)
    }

    /// Records fan-out and look-up results: see [`crate::chain::apply`].
    #[wasm_bindgen]
    pub fn chain_apply(input: &str) -> String {
        run(input, chain::apply)
    }
    #[cfg(feature = "tools")]
    #[derive(serde::Deserialize)]
    struct SignIn {
        claims: serde_json::Map<String, serde_json::Value>,
        secret: String,
    }

    #[cfg(feature = "tools")]
    /// `{"claims": {…}, "secret": …}` → `{"outcome":"ok","token": …}` (used by the merge service).
    #[wasm_bindgen]
    pub fn sign_token(input: &str) -> String {
        run(input, |i: &SignIn| {
            match token::sign(&i.claims, i.secret.as_bytes()) {
                Ok(t) => json!({"outcome": "ok", "token": t}),
                Err(e) => json!({"outcome": "invalid", "error": e.body()}),
            }
        })
    }

    #[cfg(feature = "tools")]
    #[derive(serde::Deserialize)]
    struct VerifyIn {
        token: String,
        secret: String,
        iss: String,
        aud: String,
        sub: String,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        jti: Option<String>,
        now: i64,
    }

    #[cfg(feature = "tools")]
    /// Verifies a token with every check of [`crate::token::verify`] (used by the merge service).
    #[wasm_bindgen]
    pub fn verify_token(input: &str) -> String {
        run(input, |i: &VerifyIn| {
            let want = token::Expected {
                secret: i.secret.as_bytes(),
                iss: &i.iss,
                aud: &i.aud,
                sub: &i.sub,
                state: i.state.as_deref(),
                jti: i.jti.as_deref(),
                now: i.now,
            };
            match token::verify(&i.token, &want) {
                Ok(claims) => json!({"outcome": "ok", "claims": claims}),
                Err(e) => json!({"outcome": "invalid", "error": e.body()}),
            }
        })
    }
}
