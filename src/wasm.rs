//! The only file that knows about JavaScript. Every export takes one JSON string and returns one
//! JSON string; nothing wasm-owned crosses the boundary, so there is nothing to free (except the
//! stepwise hashing jobs, behind numeric handles: see `stepwise_exports`). Unusable
//! input comes back as `{"outcome":"invalid","error":{"code","message"},"events":[]}`.

use wasm_bindgen::prelude::wasm_bindgen;

use crate::event::ErrorBody;
use crate::json::{self, Map, Value};

/// The largest input accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 1 << 20;

fn invalid(error: &ErrorBody) -> Value {
    Map::new()
        .with("outcome", "invalid")
        .with("error", error.to_value())
        .with("events", Vec::<Value>::new())
        .into()
}

/// Parses the input, hands it over by value to `f`, which writes its own answer; any input error
/// becomes an `invalid` answer.
fn run_owned(input: &str, f: impl FnOnce(Value) -> Result<String, ErrorBody>) -> String {
    if input.len() > MAX_INPUT_LEN {
        return invalid(&ErrorBody::new(
            "input.too_large",
            "input is larger than 1 MiB",
        ))
        .to_json();
    }
    match json::parse(input).map_err(ErrorBody::from).and_then(f) {
        Ok(text) => text,
        Err(e) => invalid(&e).to_json(),
    }
}

/// As [`run_owned`], for answers made as values.
fn run(input: &str, f: impl FnOnce(&Value) -> Result<Value, ErrorBody>) -> String {
    run_owned(input, |v| f(&v).map(|answer| answer.to_json()))
}

/// The crate version and the features of this build, as JSON.
#[wasm_bindgen]
pub fn version() -> String {
    Map::new()
        .with("version", env!("CARGO_PKG_VERSION"))
        .with("login", cfg!(feature = "login"))
        .with("lookup", cfg!(feature = "lookup"))
        .with("chain", cfg!(feature = "chain"))
        .with("tools", cfg!(feature = "tools"))
        .into_value()
        .to_json()
}

/// Aborts the instance on purpose. The shims use it to prove that after a trap they drop the
/// instance and the next call succeeds on a fresh one.
#[wasm_bindgen]
pub fn trap() {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
}

#[cfg(feature = "lookup")]
mod login_exports {
    use super::*;
    use crate::login;
    #[cfg(any(not(feature = "login"), feature = "tools"))]
    use crate::login::GetUserInput;
    #[cfg(feature = "login")]
    use crate::login::LoginInput;

    /// Custom-DB `login`: see [`crate::login::login`].
    #[cfg(feature = "login")]
    #[wasm_bindgen]
    pub fn login(input: &str) -> String {
        run(input, |v| {
            Ok(login::login(&LoginInput::from_value(v)?).to_value())
        })
    }

    /// Custom-DB `getUser`: see [`crate::login::get_user`]. The login script's build leaves
    /// it out (its getUser is a script of its own, the `lookup` build).
    #[cfg(any(not(feature = "login"), feature = "tools"))]
    #[wasm_bindgen]
    pub fn get_user(input: &str) -> String {
        run(input, |v| {
            Ok(login::get_user(&GetUserInput::from_value(v)?).to_value())
        })
    }
}

/// bcrypt and argon2 in bounded steps ([`crate::stepwise`]), for a host without native modules:
/// it starts the work a `compute` answer describes, advances it a slice at a time between turns
/// of its event loop, and hands the output to the second `login` call like any host output.
/// The one exception to "nothing wasm-owned crosses": a job's state (up to 64 MiB for argon2)
/// stays in the instance behind a numeric handle, freed when its output is taken or by
/// `hash_free`; a trap discards the instance and every job in it.
#[cfg(feature = "login")]
mod stepwise_exports {
    use super::*;
    use crate::stepwise::Job;
    use std::cell::RefCell;

    /// The most jobs alive at once in one instance.
    const MAX_JOBS: usize = 256;
    /// The most memory all live jobs may hold, in KiB: 128 MiB (two argon2 computations of
    /// 64 MiB, or one at the limit, Django's 100 MiB, while the others wait).
    const MAX_LIVE_KIB: usize = 128 << 10;

    thread_local! {
        static JOBS: RefCell<Vec<Option<Job>>> = const { RefCell::new(Vec::new()) };
    }

    fn with_job<T>(handle: u32, f: impl FnOnce(&mut Option<Job>) -> T) -> Option<T> {
        JOBS.with(|jobs| {
            let mut jobs = jobs.borrow_mut();
            let slot = jobs.get_mut((handle as usize).checked_sub(1)?)?;
            slot.is_some().then(|| f(slot))
        })
    }

    /// `{op, data, …}` (one request of a `compute` answer) → `{"outcome":"ok","handle"}`, or
    /// `invalid` with `hash.invalid_request`, or `hash.busy` while too much memory is held.
    #[wasm_bindgen]
    pub fn hash_start(input: &str) -> String {
        run(input, |v| {
            JOBS.with(|jobs| {
                let mut jobs = jobs.borrow_mut();
                let live: usize = jobs.iter().flatten().map(Job::memory_kib).sum();
                let busy = || {
                    ErrorBody::new(
                        "hash.busy",
                        "too much hashing in progress; retry when some finishes",
                    )
                };
                // Checked before the job takes its memory, so a refused start costs nothing.
                if live > 0 && live + Job::memory_needed(v) > MAX_LIVE_KIB {
                    return Err(busy());
                }
                let job = Job::from_request(v)?;
                let at = match jobs.iter().position(Option::is_none) {
                    Some(i) => i,
                    None if jobs.len() < MAX_JOBS => {
                        jobs.push(None);
                        jobs.len() - 1
                    }
                    None => return Err(busy()),
                };
                if let Some(slot) = jobs.get_mut(at) {
                    *slot = Some(job);
                }
                Ok(Map::new()
                    .with("outcome", "ok")
                    .with("handle", (at + 1) as i64)
                    .into())
            })
        })
    }

    /// Advances a job by at most `units` (bcrypt rounds, argon2 blocks): 1 when its output is
    /// ready, 0 when more work remains, -1 for an unknown handle or a failed job (then freed).
    #[wasm_bindgen]
    pub fn hash_step(handle: u32, units: u32) -> i32 {
        with_job(handle, |slot| {
            match slot.as_mut().and_then(|j| j.step(units)) {
                Some(true) => 1,
                Some(false) => 0,
                None => {
                    *slot = None;
                    -1
                }
            }
        })
        .unwrap_or(-1)
    }

    /// A finished job's output → `{"outcome":"ok","output": hex}`, freeing the job.
    #[wasm_bindgen]
    pub fn hash_output(handle: u32) -> String {
        let out = with_job(handle, |slot| {
            let out = slot.as_ref().and_then(Job::output);
            if out.is_some() {
                *slot = None;
            }
            out
        })
        .flatten();
        match out {
            Some(bytes) => Map::new()
                .with("outcome", "ok")
                .with("output", crate::hashes::hex_encode(&bytes))
                .into_value()
                .to_json(),
            None => invalid(&ErrorBody::new(
                "hash.not_ready",
                "no finished job has this handle",
            ))
            .to_json(),
        }
    }

    /// Frees a job, finished or not (an unknown handle is ignored).
    #[wasm_bindgen]
    pub fn hash_free(handle: u32) {
        with_job(handle, |slot| *slot = None);
    }
}

#[cfg(any(feature = "lookup", feature = "chain"))]
mod email_exports {
    use super::*;

    /// The canonical address ([`crate::email::canonical`]): `{"email"}` →
    /// `{"outcome":"ok","email"}` or `{"outcome":"invalid","error"}`. The custom-DB scripts look
    /// the products up with it, and the Node tools compare addresses with it.
    #[wasm_bindgen]
    pub fn normalize_email(input: &str) -> String {
        run(input, |v| {
            let f = crate::fields::Fields::of(v, "")?;
            let out = match crate::email::canonical(f.str("email")?) {
                Ok(e) => Map::new().with("outcome", "ok").with("email", e),
                Err(e) => Map::new()
                    .with("outcome", "invalid")
                    .with("error", e.body().to_value()),
            };
            Ok(out.into())
        })
    }
}

#[cfg(feature = "chain")]
mod chain_exports {
    use super::*;
    use crate::chain::{self, ApplyInput, StepInput};

    /// The post-login chain as a step machine: see [`crate::chain::step`].
    #[wasm_bindgen]
    pub fn chain_step(input: &str) -> String {
        run_owned(input, |v| {
            chain::step(&StepInput::from_owned(v)?).map(|a| a.to_json())
        })
    }

    /// Records fan-out results (the support console's fan-out): see [`crate::chain::apply`].
    #[wasm_bindgen]
    pub fn chain_apply(input: &str) -> String {
        run_owned(input, |v| {
            Ok(chain::apply(&ApplyInput::from_value(&v)?).to_json())
        })
    }
}

#[cfg(feature = "tools")]
mod tool_exports {
    use super::*;
    use crate::fields::Fields;
    use crate::{password, token};

    fn outcome(o: &str) -> Map {
        Map::new().with("outcome", o)
    }

    fn refused(e: ErrorBody) -> Value {
        outcome("invalid").with("error", e.to_value()).into()
    }

    /// `{"descriptor"}` → `{"outcome":"ok"}` or `{"outcome":"invalid","error"}`.
    #[wasm_bindgen]
    pub fn validate_password_hash(input: &str) -> String {
        run(input, |v| {
            let d = v.get("descriptor").cloned().unwrap_or_default();
            Ok(match password::parse(&d) {
                Ok(_) => outcome("ok").into(),
                Err(e) => refused(e.body()),
            })
        })
    }

    /// `{"descriptor", "password"}` → `{"outcome":"match"|"mismatch"}` or an error.
    #[wasm_bindgen]
    pub fn verify_password(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let d = f.any("descriptor").cloned().unwrap_or_default();
            Ok(match password::verify(&d, f.str("password")?) {
                Ok(true) => outcome("match").into(),
                Ok(false) => outcome("mismatch").into(),
                Err(e) => refused(e.body()),
            })
        })
    }

    /// `{"secret": 64 hex, "salt": 32 hex}` → `{"outcome":"ok","hash"}`: the export's
    /// forced-reset bcrypt string (both values drawn at random by the caller, the secret then
    /// thrown away).
    #[wasm_bindgen]
    pub fn forced_reset_hash(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let bytes = |k: &str, n: usize| {
                crate::hashes::hex_decode(f.str(k)?)
                    .filter(|b| b.len() == n)
                    .ok_or_else(|| {
                        ErrorBody::new(
                            "input.invalid_value",
                            format!("{k} must be {} hex digits", n * 2),
                        )
                    })
            };
            let secret: [u8; 32] = bytes("secret", 32)?.try_into().unwrap_or([0; 32]);
            let salt: [u8; 16] = bytes("salt", 16)?.try_into().unwrap_or([0; 16]);
            if secret == [0; 32] {
                return Err(ErrorBody::new(
                    "input.invalid_value",
                    "secret must be random, not zero",
                ));
            }
            Ok(match password::forced_reset_hash(&secret, &salt) {
                Some(h) => outcome("ok").with("hash", h).into(),
                None => refused(ErrorBody::new(
                    "password.internal",
                    "could not make the hash",
                )),
            })
        })
    }

    /// `{products: [...], accounts: [{product, …}]}` → `{"outcome":"ok","person_id","events"}`:
    /// the prelinked id (smallest on conflict, reported) or the derived one.
    #[wasm_bindgen]
    pub fn person_id(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let products = f.strings("products")?;
            let mut accounts = vec![];
            for a in f.array("accounts")? {
                let product = a.get("product").and_then(Value::as_str).unwrap_or("");
                accounts.push(crate::person::Account::from_json(product, a)?);
            }
            crate::person::canonical_order(&mut accounts, &products);
            let mut events = vec![];
            let id = crate::person::person_id(&accounts, &mut events);
            Ok(outcome("ok")
                .with("person_id", id)
                .with("events", crate::event::events_value(&events))
                .into())
        })
    }

    /// A support fix, planned: see [`crate::support::plan`].
    #[wasm_bindgen]
    pub fn support_plan(input: &str) -> String {
        run_owned(input, |v| crate::support::plan_from_value(&v))
    }

    /// `{"trickle": record, "user_id", "checked"}` → `{"outcome":"ok","provenance":{"product:id":
    /// text},"held_by":{"product:id": holders}}`: where each account's claim came from and who
    /// else holds it, for the console's page (see [`crate::support::provenance`] and
    /// [`crate::support::held_by`]).
    #[wasm_bindgen]
    pub fn support_view(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let meta =
                crate::person::PersonMeta::from_value(f.any("trickle").unwrap_or(&Value::Null))?;
            let checked =
                crate::support::Checked::from_value(f.any("checked").unwrap_or(&Value::Null))?;
            Ok(outcome("ok")
                .with("provenance", crate::support::provenance(&meta))
                .with(
                    "held_by",
                    crate::support::held_by(&meta, f.str("user_id")?, &checked),
                )
                .into())
        })
    }

    /// The accounts backfill tells of one import record: see [`crate::bulk::told_from_value`].
    #[wasm_bindgen]
    pub fn backfill_told(input: &str) -> String {
        run(input, crate::bulk::told_from_value)
    }

    /// One person's import record: see [`crate::bulk::export_from_value`].
    #[wasm_bindgen]
    pub fn export_person(input: &str) -> String {
        run(input, crate::bulk::export_from_value)
    }

    /// `{"errors": [{user, errors: [{code}]}]}` → `{"fates": ["already_present"|"retry"|"permanent", …]}`.
    #[wasm_bindgen]
    pub fn classify_import_errors(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let fates: Vec<Value> = f
                .array("errors")?
                .iter()
                .map(|e| {
                    let codes: Vec<&str> = e
                        .get("errors")
                        .and_then(Value::as_array)
                        .map(|list| {
                            list.iter()
                                .filter_map(|x| x.get("code").and_then(Value::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    Value::from(crate::bulk::classify(&codes).name())
                })
                .collect();
            Ok(outcome("ok").with("fates", fates).into())
        })
    }

    /// `{"claims", "secret"}` → `{"outcome":"ok","token"}` (used by the merge service).
    #[wasm_bindgen]
    pub fn sign_token(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let claims = f
                .any("claims")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            Ok(match token::sign(&claims, f.str("secret")?.as_bytes()) {
                Ok(t) => outcome("ok").with("token", t).into(),
                Err(e) => refused(e.body()),
            })
        })
    }

    /// `{"token","secret","iss","aud","sub","state"?,"jti"?,"now"}` → `{"outcome":"ok","claims"}`
    /// after every check of [`crate::token::verify`] (used by the merge service).
    #[wasm_bindgen]
    pub fn verify_token(input: &str) -> String {
        run(input, |v| {
            let f = Fields::of(v, "")?;
            let want = token::Expected {
                secret: f.str("secret")?.as_bytes(),
                iss: f.str("iss")?,
                aud: f.str("aud")?,
                sub: f.str("sub")?,
                state: f.opt_str("state")?,
                jti: f.opt_str("jti")?,
                now: f.int("now")?,
            };
            Ok(match token::verify(f.str("token")?, &want) {
                Ok(claims) => outcome("ok").with("claims", claims).into(),
                Err(e) => refused(e.body()),
            })
        })
    }
}
