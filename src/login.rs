//! The custom-database decisions: `login` (lazy migration at sign-in) and `get_user` (password
//! reset, sign-up checks). Both build the same profile for the same person.

use crate::email;
use crate::event::{events_value, ErrorBody, Event};
use crate::fields::Fields;
use crate::json::{Map, Value};
use crate::ownership;
#[cfg(feature = "login")]
use crate::ownership::LoginVerdict;
#[cfg(feature = "login")]
use crate::password;
use crate::person::{self, proof, Account, AccountRef, PersonMeta};

pub use crate::person::ProductAnswer;

/// Input of [`login`].
#[cfg(feature = "login")]
#[derive(Debug, Clone)]
pub struct LoginInput {
    /// The email typed.
    pub email: String,
    /// The password typed.
    pub password: String,
    /// Every configured product's answer, in priority order.
    pub products: Vec<ProductAnswer>,
    /// Outputs the host computed for an earlier `compute` answer: (product, account id, bytes,
    /// or `None` when the host failed).
    pub computed: Vec<(String, String, Option<Vec<u8>>)>,
    /// What the host computes natively besides digests, PBKDF2 and scrypt (`"host": ["bcrypt",
    /// "argon2"]`): handed to it, that work never blocks the container's event loop.
    pub host: password::HostCaps,
}

/// Input of [`get_user`].
#[derive(Debug, Clone)]
pub struct GetUserInput {
    /// The email asked for.
    pub email: String,
    /// Every configured product's answer, in priority order.
    pub products: Vec<ProductAnswer>,
}

/// The profile handed to Auth0's callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The person id; Auth0 stores the user as `auth0|<user_id>`.
    pub user_id: String,
    /// The normalised email.
    pub email: String,
    /// True only when a proven account had the address verified.
    pub email_verified: bool,
    /// Display name from a proven account.
    pub name: Option<String>,
    /// Given name from a proven account.
    pub given_name: Option<String>,
    /// Family name from a proven account.
    pub family_name: Option<String>,
    /// Picture from a proven account.
    pub picture: Option<String>,
    /// TOTP factors from proven accounts, in the bulk-import schema.
    pub mfa_factors: Vec<Value>,
    /// `{trickle: PersonMeta}`.
    pub app_metadata: Map,
}

/// The decision of `login` or `get_user`.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Sign the person in (or, for `get_user`, the person exists) with this profile.
    Profile {
        /// The profile.
        profile: Profile,
        /// Log events.
        events: Vec<Event>,
    },
    /// Some legacy hashes need the host's native crypto: compute these and call again with
    /// `computed`.
    Compute {
        /// `{product, id, op, digest?, data, key?, salt?, iterations?, n?, r?, p?, length}`.
        requests: Vec<Value>,
        /// Log events.
        events: Vec<Event>,
    },
    /// The password matched only accounts whose product never verified the address while other
    /// accounts hold it (`UnauthorizedError` with the message): the owner must reset the password.
    ResetRequired {
        /// The message shown to the person.
        error: ErrorBody,
        /// Log events.
        events: Vec<Event>,
    },
    /// The password matched no account (`WrongUsernameOrPasswordError`).
    WrongCredentials {
        /// Log events.
        events: Vec<Event>,
    },
    /// No product has an account for the email (`get_user`: `callback(null)`).
    NotFound {
        /// Log events.
        events: Vec<Event>,
    },
    /// Infrastructure trouble: the person should try again (`callback(new Error(…))`).
    Retry {
        /// Why.
        error: ErrorBody,
        /// Log events.
        events: Vec<Event>,
    },
    /// The input itself is unusable.
    Invalid {
        /// Why.
        error: ErrorBody,
        /// Log events.
        events: Vec<Event>,
    },
}

#[cfg(feature = "login")]
impl LoginInput {
    /// Reads `{"email", "password", "products"}`.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "")?;
        let mut computed = vec![];
        for c in f.array("computed")? {
            let cf = Fields::of(c, "computed[]")?;
            // A host failure is `{"error"}`, never an empty output (which could be mistaken for
            // an empty key); a failed computation never matches.
            let output = match cf.opt_str("error")? {
                Some(_) => None,
                None => Some(crate::hashes::hex_decode(cf.str("output")?).ok_or_else(|| {
                    ErrorBody::new("input.invalid_value", "computed[].output must be hex")
                })?),
            };
            computed.push((
                cf.str("product")?.to_owned(),
                cf.str("id")?.to_owned(),
                output,
            ));
        }
        let host = f.strings("host")?;
        Ok(LoginInput {
            host: password::HostCaps {
                bcrypt: host.iter().any(|h| h == "bcrypt"),
                argon2: host.iter().any(|h| h == "argon2"),
            },
            email: f.str("email")?.to_owned(),
            password: f.opt_str("password")?.unwrap_or("").to_owned(),
            products: ProductAnswer::list(f.array("products")?, "products[]")?,
            computed,
        })
    }
}

impl GetUserInput {
    /// Reads `{"email", "products"}`.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "")?;
        Ok(GetUserInput {
            email: f.str("email")?.to_owned(),
            products: ProductAnswer::list(f.array("products")?, "products[]")?,
        })
    }
}

impl Profile {
    /// The profile as Auth0's callback takes it.
    pub fn to_value(&self) -> Value {
        let m = Map::new()
            .with("user_id", self.user_id.as_str())
            .with("email", self.email.as_str())
            .with("email_verified", self.email_verified)
            .with_opt("name", self.name.as_deref())
            .with_opt("given_name", self.given_name.as_deref())
            .with_opt("family_name", self.family_name.as_deref())
            .with_opt("picture", self.picture.as_deref());
        let m = if self.mfa_factors.is_empty() {
            m
        } else {
            m.with("mfa_factors", self.mfa_factors.clone())
        };
        m.with("app_metadata", self.app_metadata.clone()).into()
    }
}

impl Decision {
    /// `{"outcome": "profile"|"wrong_credentials"|"not_found"|"retry"|"invalid", …, "events"}`.
    pub fn to_value(&self) -> Value {
        let (outcome, events, extra) = match self {
            Decision::Profile { profile, events } => {
                ("profile", events, Some(("profile", profile.to_value())))
            }
            Decision::Compute { requests, events } => (
                "compute",
                events,
                Some(("requests", Value::Array(requests.clone()))),
            ),
            Decision::WrongCredentials { events } => ("wrong_credentials", events, None),
            Decision::ResetRequired { error, events } => {
                ("reset_required", events, Some(("error", error.to_value())))
            }
            Decision::NotFound { events } => ("not_found", events, None),
            Decision::Retry { error, events } => {
                ("retry", events, Some(("error", error.to_value())))
            }
            Decision::Invalid { error, events } => {
                ("invalid", events, Some(("error", error.to_value())))
            }
        };
        let mut m = Map::new().with("outcome", outcome);
        if let Some((k, v)) = extra {
            m.insert(k, v);
        }
        m.with("events", events_value(events)).into()
    }
}

/// The log event of a legacy hash that cannot be verified (the account then never matches).
#[cfg(feature = "login")]
fn unverifiable(a: &Account, e: &password::PasswordError) -> Event {
    unverifiable_code(a, e.code()).detail(e.message())
}

/// The same event for a reason that is not a descriptor error (budget, host failure).
#[cfg(feature = "login")]
fn unverifiable_code(a: &Account, code: &'static str) -> Event {
    Event::new("password_unverifiable")
        .product(&a.product)
        .account(&a.id)
        .code(code)
}

/// Accounts gathered from every product's answer, filtered to the email asked for.
struct Gathered {
    accounts: Vec<Account>,
    errored: Vec<String>,
    order: Vec<String>,
    events: Vec<Event>,
}

fn gather(email: &str, products: &[ProductAnswer]) -> Gathered {
    let mut g = Gathered {
        accounts: vec![],
        errored: vec![],
        order: vec![],
        events: vec![],
    };
    for p in products {
        g.order.push(p.name.clone());
        match (&p.accounts, &p.error) {
            (Some(list), None) => {
                for raw in list {
                    match Account::from_json(&p.name, raw) {
                        // A product that answers with someone else's address is not trusted for it.
                        Ok(a) if a.email == email => g.accounts.push(a),
                        Ok(a) => g.events.push(
                            Event::new("account_email_mismatch")
                                .product(&p.name)
                                .account(&a.id)
                                .code("account.email_mismatch"),
                        ),
                        Err(e) => g.events.push(
                            Event::new("account_malformed")
                                .product(&p.name)
                                .code(e.code)
                                .detail(e.message),
                        ),
                    }
                }
            }
            (_, err) => {
                g.errored.push(p.name.clone());
                g.events.push(
                    Event::new("product_unavailable")
                        .product(&p.name)
                        .code("product.unavailable")
                        .detail(
                            err.clone()
                                .unwrap_or_else(|| "no answer".into())
                                .chars()
                                .take(120)
                                .collect::<String>(),
                        ),
                );
            }
        }
    }
    if g.accounts.len() > person::MAX_ACCOUNTS {
        g.events
            .push(Event::new("accounts_truncated").code("person.too_many_accounts"));
    }
    person::canonical_order(&mut g.accounts, &g.order);
    g.accounts.truncate(person::MAX_ACCOUNTS);
    g
}

fn build_profile(
    email: &str,
    g: &Gathered,
    proven: &[bool],
    proof_kind: &str,
    events: &mut Vec<Event>,
) -> Option<Profile> {
    let user_id = person::person_id(&g.accounts, events)?;
    let proven_accounts: Vec<&Account> = g
        .accounts
        .iter()
        .zip(proven)
        .filter(|(_, p)| **p)
        .map(|(a, _)| a)
        .collect();
    let pick =
        |f: fn(&Account) -> Option<&String>| proven_accounts.iter().find_map(|a| f(a).cloned());
    let mut mfa: Vec<Value> = vec![];
    for a in &proven_accounts {
        if let Some(raw) = a.totp_secret.as_deref() {
            match person::totp_secret(raw) {
                Some(s) => {
                    let f: Value = Map::new().with("totp", Map::new().with("secret", s)).into();
                    if !mfa.contains(&f) && mfa.len() < 10 {
                        mfa.push(f);
                    }
                }
                None => events.push(
                    Event::new("totp_secret_invalid")
                        .product(&a.product)
                        .account(&a.id)
                        .code("mfa.invalid_totp_secret"),
                ),
            }
        }
    }
    let email_verified = proven_accounts.iter().any(|a| a.email_verified);
    let meta = PersonMeta {
        v: PersonMeta::VERSION,
        person_id: user_id.clone(),
        accounts: g
            .accounts
            .iter()
            .zip(proven)
            .map(|(a, p)| AccountRef {
                product: a.product.clone(),
                id: a.id.clone(),
                proof: p.then(|| proof_kind.to_owned()),
                verified: a.email_verified,
                fanout: false,
                // Only a proven account may show whom its product told (the rest: that it did).
                linked: if *p { a.auth0_user_id.clone() } else { None },
                held: !*p && a.auth0_user_id.is_some(),
                stale: None,
            })
            .collect(),
        pending: g.errored.clone(),
        merge: None,
        unverified: !email_verified,
        // The candidates belong to this address: if the user's changes, they are dropped.
        address: Some(email.to_owned()),
        address_from: None,
    };
    let mut app_metadata = Map::new();
    app_metadata.insert("trickle", meta.to_value());
    Some(Profile {
        user_id,
        email: email.to_owned(),
        email_verified,
        name: pick(|a| a.name.as_ref()),
        given_name: pick(|a| a.given_name.as_ref()),
        family_name: pick(|a| a.family_name.as_ref()),
        picture: pick(|a| a.picture.as_ref()),
        mfa_factors: mfa,
        app_metadata,
    })
}

/// The account id of the dummy verification handed to the host.
#[cfg(feature = "login")]
const DUMMY: &str = "dummy";

/// Lazy migration at sign-in. A password that matches no account is wrong credentials; accounts
/// it did not match still belong to the profile, unproven; a product that errored while another
/// matched is recorded as pending (no downtime); no match while some product errored is a retry,
/// never "wrong password" (the password may belong to the account we could not see).
#[cfg(feature = "login")]
pub fn login(input: &LoginInput) -> Decision {
    let email = match email::canonical(&input.email) {
        Ok(e) => e,
        Err(e) => {
            return Decision::Invalid {
                error: e.body(),
                events: vec![],
            }
        }
    };
    if input.password.is_empty() {
        return Decision::WrongCredentials {
            events: vec![Event::new("password_empty")],
        };
    }
    let mut g = gather(&email, &input.products);
    let mut events = std::mem::take(&mut g.events);
    // Parse every descriptor once; an unusable one is "cannot verify", never a match.
    let mut descriptors = Vec::with_capacity(g.accounts.len());
    for a in &g.accounts {
        let d = match &a.password {
            None => None,
            Some(raw) => match password::parse(raw) {
                Ok(d) => Some(d),
                Err(e) => {
                    events.push(unverifiable(a, &e));
                    None
                }
            },
        };
        descriptors.push(d);
    }
    // One sign-in verifies within a total budget whatever the products hold: accounts whose
    // product verified the address first (a squatter's sign-ups cannot crowd the owner's out),
    // then in canonical order; whatever does not fit is "cannot verify", never a match.
    let mut order: Vec<usize> = (0..g.accounts.len()).collect();
    let unverified = |i: &usize| !g.accounts.get(*i).is_some_and(|a| a.email_verified);
    person::sort_small(&mut order, |a, b| unverified(a).cmp(&unverified(b)));
    let mut spent = 0u64;
    for i in order {
        let (Some(slot), Some(a)) = (descriptors.get_mut(i), g.accounts.get(i)) else {
            continue;
        };
        let Some(cost) = slot.as_ref().map(password::cost_ms) else {
            continue;
        };
        if cost > password::MAX_VERIFY_MS || spent.saturating_add(cost) > password::MAX_LOGIN_MS {
            events.push(unverifiable_code(
                a,
                if cost > password::MAX_VERIFY_MS {
                    "password.work_factor_too_high"
                } else {
                    "password.login_budget"
                },
            ));
            *slot = None;
        } else {
            spent += cost;
        }
    }
    let computed_for = |a: &Account| {
        input
            .computed
            .iter()
            .find(|(p, id, _)| *p == a.product && *id == a.id)
            .map(|(_, _, out)| out)
    };
    // First the host's share, before any costly work here: ask for what has not been computed.
    let mut requests = vec![];
    for (a, d) in g.accounts.iter().zip(&descriptors) {
        let Some(d) = d.as_ref().filter(|d| password::runs_on_host(d, input.host)) else {
            continue;
        };
        if computed_for(a).is_some() {
            continue;
        }
        match password::check_with(d, &input.password, input.host) {
            Ok(password::Check::Host(work)) => {
                let mut v = work.to_value();
                if let Value::Object(m) = &mut v {
                    m.insert("product", a.product.as_str());
                    m.insert("id", a.id.as_str());
                }
                requests.push(v);
            }
            Ok(password::Check::Done(_)) => {}
            Err(e) => events.push(unverifiable(a, &e)),
        }
    }
    // With nothing to verify, the dummy verification (below) goes to the host's bcrypt when it
    // offers one, so an unknown address neither answers faster nor blocks the event loop.
    let dummy_done = input
        .computed
        .iter()
        .any(|(p, id, _)| p.is_empty() && id == DUMMY);
    // Whether any real verification runs (else a dummy one keeps the timing of a known address).
    let attempted = descriptors.iter().any(Option::is_some);
    if !attempted && input.host.bcrypt && !dummy_done {
        if let Ok(password::Check::Host(work)) =
            password::check_with(&password::dummy(), &input.password, input.host)
        {
            let mut v = work.to_value();
            if let Value::Object(m) = &mut v {
                m.insert("product", "");
                m.insert("id", DUMMY);
            }
            requests.push(v);
        }
    }
    if !requests.is_empty() {
        return Decision::Compute { requests, events };
    }
    let mut proven = Vec::with_capacity(g.accounts.len());
    // A host that could not compute (a native module failing, the sliced wasm trapping twice) is
    // no answer: when nothing else matched, the person is asked to try again, never told "wrong".
    let mut host_failed = false;
    for (a, d) in g.accounts.iter().zip(&descriptors) {
        let ok = match d {
            None => false,
            Some(d) if password::runs_on_host(d, input.host) => match computed_for(a) {
                Some(Some(out)) => password::finish(d, out),
                Some(None) => {
                    events.push(unverifiable_code(a, "password.host_failed"));
                    host_failed = true;
                    false
                }
                None => false,
            },
            Some(d) => match password::check(d, &input.password) {
                Ok(password::Check::Done(m)) => m,
                Ok(password::Check::Host(_)) => false,
                Err(e) => {
                    events.push(unverifiable(a, &e));
                    false
                }
            },
        };
        proven.push(ok);
    }
    let retry = |events: Vec<Event>| {
        let error = ErrorBody::new(
            "login.products_unavailable",
            format!("could not reach {}; try again", g.errored.join(", ")),
        );
        Decision::Retry { error, events }
    };
    match ownership::login_verdict(&g.accounts, &proven, !g.errored.is_empty()) {
        LoginVerdict::NoMatch => {
            if !g.errored.is_empty() {
                return retry(events);
            }
            if host_failed {
                return Decision::Retry {
                    error: ErrorBody::new(
                        "login.verification_failed",
                        "could not check the password right now; try again",
                    ),
                    events,
                };
            }
            if !attempted && !dummy_done {
                // The same work as a real verification, so an unknown address answers as slowly
                // as a known one.
                let _ = password::check(&password::dummy(), &input.password);
            }
            events.push(Event::new(if g.accounts.is_empty() {
                "login_unknown_user"
            } else {
                "login_wrong_password"
            }));
            return Decision::WrongCredentials { events };
        }
        LoginVerdict::RetryLater => {
            events.push(Event::new("login_unverified_match").code("login.unverified_retry"));
            return retry(events);
        }
        LoginVerdict::ResetRequired => {
            for (a, p) in g.accounts.iter().zip(&proven) {
                if *p {
                    events.push(
                        Event::new("login_unverified_match")
                            .product(&a.product)
                            .account(&a.id)
                            .code("login.reset_required"),
                    );
                }
            }
            return Decision::ResetRequired {
                error: ErrorBody::new(
                    "login.reset_required",
                    "This address has other accounts that must be confirmed first. \
                     Please reset your password: we will send a link to this address.",
                ),
                events,
            };
        }
        LoginVerdict::Create { .. } => {}
    }
    match build_profile(&email, &g, &proven, proof::PASSWORD, &mut events) {
        Some(profile) => {
            events.push(Event::new("login_migrated").detail(format!(
                "{} account(s), {} proven",
                g.accounts.len(),
                proven.iter().filter(|p| **p).count()
            )));
            Decision::Profile { profile, events }
        }
        None => Decision::Retry {
            error: ErrorBody::new("login.internal", "could not build the profile"),
            events,
        },
    }
}

/// The profile for a password reset: the profile is stored only once the person completes the
/// reset through the inbox, which proves the accounts whose product verified the address
/// ([`ownership::reset_proves`]); the others stay unproven.
pub fn get_user(input: &GetUserInput) -> Decision {
    let email = match email::canonical(&input.email) {
        Ok(e) => e,
        Err(e) => {
            return Decision::Invalid {
                error: e.body(),
                events: vec![],
            }
        }
    };
    let mut g = gather(&email, &input.products);
    let mut events = std::mem::take(&mut g.events);
    if g.accounts.is_empty() {
        if !g.errored.is_empty() {
            let error = ErrorBody::new(
                "login.products_unavailable",
                format!("could not reach {}; try again", g.errored.join(", ")),
            );
            return Decision::Retry { error, events };
        }
        return Decision::NotFound { events };
    }
    // The reset proves the mailbox, so only the accounts whose product verified this address.
    let proven = ownership::reset_proves(&g.accounts);
    match build_profile(&email, &g, &proven, proof::RESET, &mut events) {
        Some(mut profile) => {
            // The reset that stores this profile proves the inbox (Auth0 marks it verified too).
            profile.email_verified = true;
            Decision::Profile { profile, events }
        }
        None => Decision::Retry {
            error: ErrorBody::new("login.internal", "could not build the profile"),
            events,
        },
    }
}
