//! The post-login chain, as one pure function per phase.
//!
//! Stages, in order: (1) *bulkImported skip*, (2) *merge detection*, (3) *migrated-flag resume*,
//! (4) *ID fan-out*. [`plan`] decides and returns effects (metadata to set, a redirect, a denial,
//! HTTP requests to products); the shim performs the requests and hands the results to [`apply`],
//! which records acknowledgements and newly found accounts.

use crate::event::{events_value, write_events, ErrorBody, Event};
use crate::json::{self, Fields, Map, ObjectWriter, Value};
use crate::ownership;
use crate::person::{proof, Account, PersonMeta};
use crate::token;

/// Session tokens sent to the merge service live this long (seconds).
pub const SESSION_TOKEN_TTL: i64 = 900;

/// The user as the post-login event shows it.
#[derive(Debug, Clone)]
pub struct User {
    /// `auth0|<person id>`.
    pub user_id: String,
    /// The user's email.
    pub email: Option<String>,
    /// The tenant's `email_verified`: true once the mailbox was proven (a reset, a verification
    /// mail) or the profile came from an account whose product verified the address.
    pub email_verified: bool,
    /// The user's `app_metadata`.
    pub app_metadata: Option<Value>,
}

/// Facts about the login transaction.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    /// False for resource-owner and refresh-token grants and `prompt=none`.
    pub can_redirect: bool,
    /// The transaction state (`/continue?state=…`), needed on resume.
    pub state: Option<String>,
    /// The database connection the user signed in with.
    pub connection: Option<String>,
}

/// Configuration, from the Action's secrets or the Rules' configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Product names in priority order.
    pub products: Vec<String>,
    /// The merge service's URL.
    pub merge_url: String,
    /// The shared HS256 secret.
    pub token_secret: String,
    /// The trickle database connection's name (required): users of other connections pass
    /// untouched, and nobody of another connection is ever repaired into a legacy account.
    pub connection: Option<String>,
    /// Social connections whose logins trickle resolves (their identity and address looked up
    /// in the products); logins of any other connection pass untouched.
    pub social: Vec<String>,
}

/// The social identity a login came with: the connection (the provider's name in the
/// products), the provider's stable subject, and Google's Workspace domain claim.
#[derive(Debug, Clone, PartialEq)]
pub struct SocialIdentity {
    /// The connection name, e.g. `google-oauth2`.
    pub provider: String,
    /// The provider's subject for the person.
    pub subject: String,
    /// Google's `hd`: the Workspace domain of the account.
    pub hd: Option<String>,
}

/// A first social login to resolve: look the identity and the address up in every product.
#[derive(Debug, Clone, PartialEq)]
pub struct Discover {
    /// The connection name.
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// Whether the provider's `email_verified` proves the mailbox ([`ownership::provider_vouches`]).
    pub vouched: bool,
}

impl Discover {
    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("provider", &self.provider)
            .str("subject", &self.subject)
            .bool("vouched", self.vouched);
        o.end();
    }

    fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "discover")?;
        Ok(Discover {
            provider: f.str("provider")?.to_owned(),
            subject: f.str("subject")?.to_owned(),
            vouched: f.bool("vouched")?,
        })
    }
}

impl Config {
    /// The settings a fan-out needs (the products), for the answers made after the plan.
    fn fanout_only(products: &[String]) -> Self {
        Config {
            products: products.to_vec(),
            merge_url: String::new(),
            token_secret: String::new(),
            connection: None,
            social: vec![],
        }
    }
}

/// Which half of the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `onExecutePostLogin`, or a Rule on a normal login.
    Execute,
    /// `onContinuePostLogin`, or a Rule with `context.protocol === 'redirect-callback'`.
    Continue,
}

/// Input of [`plan`].
#[derive(Debug, Clone)]
pub struct PlanInput {
    /// Which half.
    pub phase: Phase,
    /// Unix seconds.
    pub now: i64,
    /// The user.
    pub user: User,
    /// Transaction facts.
    pub transaction: Transaction,
    /// Configuration.
    pub config: Config,
    /// A fresh random id for a session token (16+ url-safe characters), drawn by the shim.
    pub jti: Option<String>,
    /// The `session_token` posted back to `/continue`.
    pub session_token: Option<String>,
    /// The social identity of a social login.
    pub identity: Option<SocialIdentity>,
}

impl User {
    /// Reads `{user_id, email?, email_verified, app_metadata?}`.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "user")?;
        Ok(User {
            user_id: f.str("user_id")?.to_owned(),
            email: f.opt_str("email")?.map(str::to_owned),
            email_verified: f.bool("email_verified")?,
            app_metadata: f.any("app_metadata").cloned(),
        })
    }
}

impl PlanInput {
    /// As [`PlanInput::from_value`], taking the user's `app_metadata` out of `v` instead of
    /// copying it (it is most of the input).
    pub fn from_owned(mut v: Value) -> Result<Self, ErrorBody> {
        let app = v
            .as_object_mut()
            .and_then(|m| m.get_mut("user"))
            .and_then(Value::as_object_mut)
            .and_then(|u| u.take("app_metadata"));
        let mut input = PlanInput::from_value(&v)?;
        input.user.app_metadata = app;
        Ok(input)
    }

    /// Reads the plan input, naming the field in any error.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "")?;
        let phase = match f.str("phase")? {
            "execute" => Phase::Execute,
            "continue" => Phase::Continue,
            _ => {
                return Err(ErrorBody::new(
                    "input.invalid_value",
                    "phase must be execute or continue",
                ))
            }
        };
        let transaction = match f.any("transaction") {
            None => Transaction::default(),
            Some(t) => {
                let tf = Fields::of(t, "transaction")?;
                Transaction {
                    can_redirect: tf.bool("can_redirect")?,
                    state: tf.opt_str("state")?.map(str::to_owned),
                    connection: tf.opt_str("connection")?.map(str::to_owned),
                }
            }
        };
        let cv = f
            .any("config")
            .ok_or_else(|| ErrorBody::new("input.missing_field", "config is required"))?;
        let cf = Fields::of(cv, "config")?;
        let config = Config {
            products: cf.strings("products")?,
            merge_url: cf.opt_str("merge_url")?.unwrap_or("").to_owned(),
            token_secret: cf.opt_str("token_secret")?.unwrap_or("").to_owned(),
            connection: cf.opt_str("connection")?.map(str::to_owned),
            social: match cf.any("social") {
                None => vec![],
                Some(_) => cf.strings("social")?,
            },
        };
        let identity = match f.any("identity") {
            None | Some(Value::Null) => None,
            Some(iv) => {
                let idf = Fields::of(iv, "identity")?;
                Some(SocialIdentity {
                    provider: idf.str("provider")?.to_owned(),
                    subject: idf.str("subject")?.to_owned(),
                    hd: idf.opt_str("hd")?.map(str::to_owned),
                })
            }
        };
        let uv = f
            .any("user")
            .ok_or_else(|| ErrorBody::new("input.missing_field", "user is required"))?;
        Ok(PlanInput {
            phase,
            now: f.int("now")?,
            user: User::from_value(uv)?,
            transaction,
            config,
            jti: f.opt_str("jti")?.map(str::to_owned),
            session_token: f.opt_str("session_token")?.map(str::to_owned),
            identity,
        })
    }
}

/// A redirect to the merge service.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// The merge service URL.
    pub url: String,
    /// Query parameters to add (Auth0 adds `state` itself).
    pub query: Map,
}

/// One request telling a product the person's Auth0 id (or to forget it): the shell sends it as
/// the product contract's `PUT` (or `DELETE`) `/trickle/accounts/<account>/auth0-id` with the
/// body `{"auth0_user_id", "replace"?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct FanoutRequest {
    /// Product name.
    pub product: String,
    /// Account id in that product.
    pub account: String,
    /// The Auth0 user id told.
    pub auth0_user_id: String,
    /// The stale id the product holds, which this one replaces (its compare and set).
    pub replace: Option<String>,
    /// True when the product is told to forget the id instead (a link withdrawn).
    pub forget: bool,
}

/// The top-level `app_metadata` keys an answer sets, each only when it changes: `migrated` and
/// the record (`trickle`). Kept typed until written, so the record is never built as a tree of
/// values on the way out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaWrites {
    /// `migrated`.
    pub migrated: Option<bool>,
    /// `trickle`.
    pub trickle: Option<PersonMeta>,
}

impl MetaWrites {
    /// `{"migrated"?, "trickle"?}`.
    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        if let Some(m) = self.migrated {
            o.bool("migrated", m);
        }
        if let Some(t) = &self.trickle {
            t.write_json(o.key("trickle"));
        }
        o.end();
    }
}

/// What the chain decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// `continue`, `redirect` or `deny`.
    pub outcome: &'static str,
    /// Set when `outcome` is `redirect`.
    pub redirect: Option<Redirect>,
    /// Set when `outcome` is `deny`: the reason shown to the person.
    pub deny: Option<ErrorBody>,
    /// Top-level `app_metadata` keys to set (only those that changed).
    pub set_app_metadata: MetaWrites,
    /// Requests to run in parallel within the fan-out budget.
    pub fanout: Vec<FanoutRequest>,
    /// Products to look the email up in again (pending checks).
    pub lookups: Vec<String>,
    /// A first social login: look the identity up as well as the address (in `lookups`).
    pub discover: Option<Discover>,
    /// Link this user into that existing tenant user (then fan out as that user).
    pub link: Option<String>,
    /// What [`apply`] would answer if every fan-out request is acknowledged and there is no
    /// look-up: the shim takes it as is then, sparing a second round trip into the core.
    pub acknowledged: Option<Applied>,
    /// Log events.
    pub events: Vec<Event>,
}

impl Plan {
    /// `{"outcome", "redirect"?, "deny"?, "set_app_metadata", "fanout", "lookups", "discover"?,
    /// "link"?, "acknowledged"?, "events"}`, as [`Plan::to_json`] writes it.
    pub fn to_value(&self) -> Value {
        json::parse(&self.to_json()).unwrap_or_default()
    }

    /// The answer as JSON text, written straight from the plan (the chain's hot path: no tree
    /// of values is built, copied and dropped on the way out).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(1024);
        let mut o = ObjectWriter::new(&mut out);
        o.str("outcome", self.outcome);
        if let Some(r) = &self.redirect {
            let mut ro = ObjectWriter::new(o.key("redirect"));
            ro.str("url", &r.url);
            json::write_map(&r.query, ro.key("query"));
            ro.end();
        }
        if let Some(d) = &self.deny {
            d.write_json(o.key("deny"));
        }
        self.set_app_metadata.write_json(o.key("set_app_metadata"));
        o.array("fanout", &self.fanout, write_fanout);
        json::write_strings(&self.lookups, o.key("lookups"));
        if let Some(d) = &self.discover {
            d.write_json(o.key("discover"));
        }
        o.opt_str("link", self.link.as_deref());
        if let Some(a) = &self.acknowledged {
            a.write_json(o.key("acknowledged"));
        }
        write_events(&self.events, o.key("events"));
        o.end();
        out
    }

    fn pass(events: Vec<Event>) -> Self {
        Plan {
            outcome: "continue",
            redirect: None,
            deny: None,
            set_app_metadata: MetaWrites::default(),
            fanout: vec![],
            lookups: vec![],
            discover: None,
            link: None,
            acknowledged: None,
            events,
        }
    }

    fn deny(error: ErrorBody, events: Vec<Event>) -> Self {
        Plan {
            outcome: "deny",
            deny: Some(error),
            ..Plan::pass(events)
        }
    }
}

/// A fan-out request as the shim reads it.
pub(crate) fn write_fanout(r: &FanoutRequest, out: &mut String) {
    let mut o = ObjectWriter::new(out);
    o.str("product", &r.product)
        .str("account", &r.account)
        .str("auth0_user_id", &r.auth0_user_id)
        .opt_str("replace", r.replace.as_deref());
    if r.forget {
        o.bool("forget", true);
    }
    o.end();
}

/// Fan-out requests as a value (the answer of [`link`]), from their one writer.
fn fanout_value(requests: &[FanoutRequest]) -> Value {
    let mut text = String::new();
    json::write_array(requests, &mut text, write_fanout);
    json::parse(&text).unwrap_or_default()
}

/// The user's `app_metadata` object, borrowed (copying it is most of a warm decision's work).
fn app_meta(user: &User) -> std::borrow::Cow<'_, Map> {
    match &user.app_metadata {
        Some(Value::Object(m)) => std::borrow::Cow::Borrowed(m),
        _ => std::borrow::Cow::Owned(Map::new()),
    }
}

/// Reads `app_metadata.trickle`; `None` when absent or unreadable (the repair path).
fn read_meta(app: &Map, events: &mut Vec<Event>) -> Option<PersonMeta> {
    let raw = app.get("trickle")?;
    match PersonMeta::from_value(raw) {
        Ok(m) => Some(m),
        Err(_) => {
            events.push(Event::new("metadata_unreadable").code("metadata.unreadable"));
            None
        }
    }
}

/// Product names of `accounts`, each once, in first-seen order.
fn unique_products<'a>(
    accounts: impl Iterator<Item = &'a crate::person::AccountRef>,
) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for a in accounts {
        if !out.contains(&a.product) {
            out.push(a.product.clone());
        }
    }
    out
}

/// The person's record, or, when it is missing or unreadable, a fresh one to repair from the
/// products (the browser died between the password POST and the callback, or metadata was
/// lost): its id from the Auth0 user id and `pending` products to look up again. The flag is
/// true in repair.
fn meta_or_repair(
    app: &Map,
    user_id: &str,
    pending: &[String],
    events: &mut Vec<Event>,
) -> (PersonMeta, bool) {
    if let Some(m) = read_meta(app, events) {
        return (m, false);
    }
    events.push(Event::new("metadata_repair"));
    let person_id = user_id
        .split_once('|')
        .map(|(_, id)| id)
        .unwrap_or(user_id)
        .to_owned();
    (
        PersonMeta {
            v: PersonMeta::VERSION,
            person_id,
            pending: pending.to_vec(),
            ..PersonMeta::default()
        },
        true,
    )
}

/// Whether `key` (`product:id`, as a merge records what it showed) names the account.
fn account_key_is(key: &str, a: &crate::person::AccountRef) -> bool {
    key.split_once(':')
        .is_some_and(|(p, id)| p == a.product && id == a.id)
}

fn valid_jti(j: &str) -> bool {
    (16..=128).contains(&j.len())
        && j.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The requests telling `meta`'s proven accounts `user_id` (and the withdrawn ones to forget it),
/// for the configured `products`: the one rule of what is told, for the chain and support alike.
pub(crate) fn fanout_requests_for(
    meta: &PersonMeta,
    user_id: &str,
    products: &[String],
) -> Vec<FanoutRequest> {
    fanout_requests(meta, user_id, &Config::fanout_only(products), &mut vec![])
}

fn fanout_requests(
    meta: &PersonMeta,
    user_id: &str,
    config: &Config,
    events: &mut Vec<Event>,
) -> Vec<FanoutRequest> {
    let mut out = vec![];
    // Only proven accounts learn the Auth0 id: telling an unproven account would merge on email
    // alone. An account told the id whose proof was withdrawn is told to forget it.
    // The product stores the id only where it holds none or this one (or the stale one named
    // in `replace`): where another user holds it, it answers 409 with that user, to join.
    for a in meta.accounts.iter().filter(|a| {
        (ownership::may_learn_auth0_id(a) && !a.fanout) || ownership::must_forget_auth0_id(a)
    }) {
        let learn = ownership::may_learn_auth0_id(a);
        if !config.products.contains(&a.product) {
            events.push(
                Event::new("fanout_unknown_product")
                    .product(&a.product)
                    .code("fanout.unknown_product"),
            );
            continue;
        }
        out.push(FanoutRequest {
            product: a.product.clone(),
            account: a.id.clone(),
            auth0_user_id: user_id.to_owned(),
            replace: a.stale.clone().filter(|_| learn),
            forget: !learn,
        });
    }
    out
}

/// The identity of a login of one of the configured social connections, if it is one.
fn social_login(input: &PlanInput) -> Option<&SocialIdentity> {
    let conn = input.transaction.connection.as_ref()?;
    let id = input.identity.as_ref()?;
    (input.config.connection.as_ref() != Some(conn)
        && input.config.social.contains(conn)
        && &id.provider == conn
        && !id.subject.is_empty())
    .then_some(id)
}

/// Validates the configuration and user; returns an error body for the log when unusable.
fn check(input: &PlanInput) -> Result<(), ErrorBody> {
    if input.config.products.is_empty() {
        return Err(ErrorBody::new(
            "config.products",
            "TRICKLE_PRODUCTS names no product",
        ));
    }
    if input.config.token_secret.len() < token::MIN_SECRET_LEN {
        return Err(ErrorBody::new(
            "config.token_secret",
            "TRICKLE_TOKEN_SECRET must be at least 32 bytes",
        ));
    }
    if !(input.config.merge_url.starts_with("https://")
        || input.config.merge_url.starts_with("http://"))
    {
        return Err(ErrorBody::new(
            "config.merge_url",
            "TRICKLE_MERGE_URL must be an http(s) URL",
        ));
    }
    if !input.user.user_id.contains('|') {
        return Err(ErrorBody::new(
            "user.user_id",
            "user_id is not of the form provider|id",
        ));
    }
    Ok(())
}

/// Runs the chain for one phase of one login.
pub fn plan(input: &PlanInput) -> Plan {
    let mut events = vec![];
    let misconfigured = match &input.config.connection {
        None => Err(ErrorBody::new(
            "config.connection",
            "TRICKLE_CONNECTION names no connection",
        )),
        Some(_) => check(input),
    };
    if let Err(e) = misconfigured {
        // Misconfiguration must not lock anyone out: let the login through and say why loudly.
        events.push(
            Event::new("chain_misconfigured")
                .code(e.code)
                .detail(e.message),
        );
        return Plan::pass(events);
    }
    let social = social_login(input);
    if social.is_none() && input.config.connection != input.transaction.connection {
        return Plan::pass(vec![Event::new("chain_other_connection")]);
    }
    let app = app_meta(&input.user);
    if let Some(id) = social {
        if !app.contains_key("trickle") {
            if input.phase == Phase::Continue {
                return Plan::pass(vec![Event::new("social_no_record")]);
            }
            // A first social login: the products are asked for the identity and the address.
            let vouched = input
                .user
                .email
                .as_deref()
                .and_then(|e| crate::email::canonical(e).ok())
                .is_some_and(|e| {
                    ownership::provider_vouches(
                        &id.provider,
                        &e,
                        input.user.email_verified,
                        id.hd.as_deref(),
                    )
                });
            let mut p = Plan::pass(vec![
                Event::new("social_discover").detail(id.provider.clone())
            ]);
            p.lookups = input.config.products.clone();
            p.discover = Some(Discover {
                provider: id.provider.clone(),
                subject: id.subject.clone(),
                vouched,
            });
            return p;
        }
        if read_meta(&app, &mut events).is_none() {
            // Never repaired from the products as a database user would be: a social user's
            // record is only ever made from its identity.
            return Plan::pass(events);
        }
    }
    let bulk = matches!(app.get("bulkImported"), Some(Value::Bool(true)));
    let migrated_before = matches!(app.get("migrated"), Some(Value::Bool(true)));
    let user_id = input.user.user_id.as_str();
    let (meta, repair) = meta_or_repair(&app, user_id, &input.config.products, &mut events);
    // What the record was, to write it back only when it changed (compared as a struct: its
    // JSON form is one-to-one with it, and building that twice per login is most of the work).
    let original = (!repair).then(|| meta.clone());
    let mut meta = meta;
    let mut plan = Plan::pass(vec![]);
    let mut migrated = migrated_before;
    // The mailbox was proven after the user was created through an unverified address: the
    // mailbox owner takes the address back, and links made only by that password are withdrawn.
    if meta.unverified && input.user.email_verified {
        meta.unverified = false;
        for a in meta
            .accounts
            .iter_mut()
            .filter(|a| ownership::withdrawn_by_mailbox(a))
        {
            a.proof = None;
            events.push(
                Event::new("link_withdrawn")
                    .product(&a.product)
                    .account(&a.id)
                    .code("ownership.mailbox_proven"),
            );
        }
    }

    // The address the candidates were found by is no longer the user's (a provider lets its
    // user change it): they are dropped, and a merge started for the old address cannot finish,
    // so a mailbox proof of the new address never proves accounts found by the old one.
    if let Some(addr) = meta.address.clone() {
        let current = input
            .user
            .email
            .as_deref()
            .and_then(|e| crate::email::canonical(e).ok());
        if current.as_deref() != Some(addr.as_str()) {
            let before = meta.accounts.len();
            meta.accounts.retain(|a| a.proof.is_some());
            meta.merge = None;
            meta.address = current;
            events.push(Event::new("address_changed").detail(format!(
                "{} candidate(s) dropped",
                before - meta.accounts.len()
            )));
        }
    }

    // A person with candidates their own mailbox can prove is sent to the merge first, and joins
    // after it (Continue): joining first would leave those candidates behind for good.
    // (A candidate some user was told already is not waited for: the one named is the person's
    // other user, which the join brings in, or a third user's, which stays out either way.)
    let wants_merge = !migrated_before
        && input.transaction.can_redirect
        && meta
            .accounts
            .iter()
            .any(|a| ownership::merge_wanted(a) && !a.held);
    let link_first = input.phase == Phase::Execute
        && !bulk
        && !wants_merge
        && ownership::link_target(&meta.accounts, user_id).is_some();
    match input.phase {
        Phase::Execute if link_first => {}
        Phase::Continue => {
            let open_jti = meta.merge.as_ref().and_then(|m| m.jti.clone());
            let token_text = input.session_token.as_deref().unwrap_or("");
            let want = token::Expected {
                secret: input.config.token_secret.as_bytes(),
                iss: token::ISS_MERGE,
                aud: token::AUD_TRICKLE,
                sub: user_id,
                state: Some(input.transaction.state.as_deref().unwrap_or("")),
                jti: open_jti.as_deref(),
                now: input.now,
            };
            // The jti is single-use: it is spent whatever the token turns out to be, and with it
            // the list of what its page showed.
            let mut shown = vec![];
            if let Some(m) = meta.merge.as_mut() {
                m.jti = None;
                shown = std::mem::take(&mut m.shown);
            }
            match token::verify(token_text, &want) {
                Err(e) => {
                    events.push(Event::new("merge_token_refused").code(e.code()));
                    let mut p = Plan::deny(
                        ErrorBody::new(
                            e.code(),
                            format!(
                                "Account merge could not be confirmed: {}. Please sign in again.",
                                e.message()
                            ),
                        ),
                        vec![],
                    );
                    if original.as_ref() != Some(&meta) {
                        p.set_app_metadata.trickle = Some(meta);
                    }
                    p.events = events;
                    return p;
                }
                Ok(claims) => {
                    match claims.get("outcome").and_then(Value::as_str) {
                        Some("merged") => {
                            // The merge proved the mailbox: that covers the accounts the page
                            // showed (named when the person was sent) whose product verified
                            // the address, and no others. An account found since is shown at
                            // the next merge: the person is not migrated while one waits.
                            for a in meta.accounts.iter_mut().filter(|a| {
                                ownership::merge_proves(a)
                                    && shown.iter().any(|k| account_key_is(k, a))
                            }) {
                                a.proof = Some(proof::MERGE.to_owned());
                            }
                            migrated = !meta.accounts.iter().any(ownership::merge_wanted);
                            events.push(Event::new("merge_completed"));
                        }
                        Some("skipped") => {
                            events.push(Event::new("merge_skipped"));
                        }
                        _ => {
                            events.push(Event::new("merge_token_refused").code("token.outcome"));
                            let mut p = Plan::deny(ErrorBody::new("token.outcome", "Account merge returned no valid outcome. Please sign in again."), vec![]);
                            p.set_app_metadata.trickle = Some(meta);
                            p.events = events;
                            return p;
                        }
                    }
                }
            }
        }
        Phase::Execute if bulk => {
            events.push(Event::new("bulk_imported_skip"));
        }
        Phase::Execute => {
            let unproven =
                unique_products(meta.accounts.iter().filter(|a| ownership::merge_wanted(a)));
            if unproven.is_empty() {
                if !repair {
                    migrated = true;
                }
            } else if !migrated {
                if input.transaction.can_redirect {
                    let jti = input.jti.as_deref().filter(|j| valid_jti(j));
                    let Some(jti) = jti else {
                        events.push(
                            Event::new("chain_misconfigured")
                                .code("input.jti")
                                .detail("no usable random jti was supplied"),
                        );
                        return Plan {
                            events,
                            ..Plan::pass(vec![])
                        };
                    };
                    let products = unique_products(meta.accounts.iter());
                    let mut extra = Map::new();
                    extra.insert("email", input.user.email.clone());
                    extra.insert("products", products);
                    extra.insert("unproven", unproven);
                    let claims = token::claims(
                        token::ISS_TRICKLE,
                        token::AUD_MERGE,
                        user_id,
                        jti,
                        input.now,
                        SESSION_TOKEN_TTL,
                        extra,
                    );
                    match token::sign(&claims, input.config.token_secret.as_bytes()) {
                        Ok(t) => {
                            let shown = meta
                                .accounts
                                .iter()
                                .filter(|a| ownership::merge_wanted(a))
                                .map(|a| format!("{}:{}", a.product, a.id))
                                .collect();
                            let m = meta.merge.get_or_insert_with(Default::default);
                            m.attempts = m.attempts.saturating_add(1);
                            m.shown = shown;
                            m.jti = Some(jti.to_owned());
                            m.issued_at = Some(input.now);
                            let mut query = Map::new();
                            query.insert("session_token", Value::String(t));
                            plan.outcome = "redirect";
                            plan.redirect = Some(Redirect {
                                url: input.config.merge_url.clone(),
                                query,
                            });
                            events.push(
                                Event::new("merge_redirect")
                                    .detail(format!("attempt {}", m.attempts)),
                            );
                        }
                        Err(e) => events.push(Event::new("chain_misconfigured").code(e.code())),
                    }
                } else {
                    events.push(Event::new("merge_deferred").detail("transaction cannot redirect"));
                }
            }
        }
    }

    if plan.outcome == "continue" {
        if let Some(target) = ownership::link_target(&meta.accounts, user_id) {
            // Another tenant user proved one of this user's proven accounts first: this user
            // joins it (the shim checks that user's own record through [`link`]).
            events.push(Event::new("link_wanted"));
            plan.link = Some(target.to_owned());
        }
    }
    // The proven accounts learn the id at every login that goes through, merged or not: a person
    // who skips the merge still has them joined to this user, so a later sign-in that proves one
    // of them (a social identity, say) joins this user instead of becoming a second one.
    if plan.outcome != "redirect" && plan.link.is_none() {
        plan.fanout = fanout_requests(&meta, user_id, &input.config, &mut events);
    }
    if plan.outcome != "redirect" && plan.link.is_none() {
        plan.lookups = meta
            .pending
            .iter()
            .filter(|p| input.config.products.contains(p))
            .cloned()
            .collect();
    }
    if migrated && !migrated_before {
        plan.set_app_metadata.migrated = Some(true);
    }
    if !plan.fanout.is_empty() && plan.lookups.is_empty() {
        plan.acknowledged = Some(all_acknowledged(&meta, &plan));
    }
    if original.as_ref() != Some(&meta) && !repair {
        plan.set_app_metadata.trickle = Some(meta);
    }
    plan.events = events;
    plan
}

/// [`apply`]'s answer when every request of `plan` is acknowledged: the same records on the
/// record as the plan leaves it (no look-up runs, so nothing else changes).
fn all_acknowledged(meta: &PersonMeta, plan: &Plan) -> Applied {
    let results: Vec<FanoutResult> = plan
        .fanout
        .iter()
        .map(|r| FanoutResult {
            product: r.product.clone(),
            account: r.account.clone(),
            ok: true,
            holder: None,
        })
        .collect();
    let mut after = meta.clone();
    let mut events = vec![];
    acknowledge(&mut after, "", &results, &mut events);
    Applied {
        set_app_metadata: MetaWrites {
            migrated: None,
            trickle: (&after != meta).then_some(after),
        },
        ..Applied::nothing(events)
    }
}

/// A product's answer to a fan-out request.
#[derive(Debug, Clone)]
pub struct FanoutResult {
    /// Product name.
    pub product: String,
    /// Account id.
    pub account: String,
    /// True on a 2xx answer.
    pub ok: bool,
    /// The user the product said holds the account (its 409 answer), when another one does.
    pub holder: Option<String>,
}

/// A product's answer to a pending look-up.
pub type LookupResult = crate::person::ProductAnswer;

/// Input of [`apply`].
#[derive(Debug, Clone)]
pub struct ApplyInput {
    /// The user, with `app_metadata` as it stands after the plan's writes.
    pub user: User,
    /// Fan-out answers (missing ones count as failed).
    pub fanout: Vec<FanoutResult>,
    /// Look-up answers.
    pub lookups: Vec<LookupResult>,
    /// A first social login's discovery, as the plan asked for it.
    pub discover: Option<Discover>,
    /// The products' answers to the look-up by identity (provider and subject).
    pub identity_lookups: Vec<LookupResult>,
    /// Product names in priority order (for the canonical account of a discovery).
    pub products: Vec<String>,
}

impl ApplyInput {
    /// Reads the apply input, naming the field in any error.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "")?;
        let uv = f
            .any("user")
            .ok_or_else(|| ErrorBody::new("input.missing_field", "user is required"))?;
        let mut fanout = vec![];
        for r in f.array("fanout")? {
            let rf = Fields::of(r, "fanout[]")?;
            fanout.push(FanoutResult {
                product: rf.str("product")?.to_owned(),
                account: rf.str("account")?.to_owned(),
                ok: rf.bool("ok")?,
                holder: rf
                    .opt_str("holder")?
                    .filter(|h| crate::person::valid_user_id(h))
                    .map(str::to_owned),
            });
        }
        let lookups = LookupResult::list(f.array("lookups")?, "lookups[]")?;
        let discover = match f.any("discover") {
            None | Some(Value::Null) => None,
            Some(d) => Some(Discover::from_value(d)?),
        };
        let identity_lookups = match f.any("identity_lookups") {
            None => vec![],
            Some(_) => LookupResult::list(f.array("identity_lookups")?, "identity_lookups[]")?,
        };
        Ok(ApplyInput {
            user: User::from_value(uv)?,
            fanout,
            lookups,
            discover,
            identity_lookups,
            products: match f.any("products") {
                None => vec![],
                Some(_) => f.strings("products")?,
            },
        })
    }
}

/// What [`apply`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Top-level `app_metadata` keys to set.
    pub set_app_metadata: MetaWrites,
    /// Log events.
    pub events: Vec<Event>,
    /// Another of the person's users holds a proven account (a product said so): plan again
    /// (without a redirect) to join it in this login.
    pub relink: bool,
    /// Requests telling the accounts whose holder was just read (nobody else) this user's id.
    pub fanout: Vec<FanoutRequest>,
}

impl Applied {
    /// `{"set_app_metadata", "events", "relink"?, "fanout"?}`, as [`Applied::to_json`] writes it.
    pub fn to_value(&self) -> Value {
        json::parse(&self.to_json()).unwrap_or_default()
    }

    /// An answer that records nothing, with its events.
    fn nothing(events: Vec<Event>) -> Self {
        Applied {
            set_app_metadata: MetaWrites::default(),
            events,
            relink: false,
            fanout: vec![],
        }
    }

    /// The answer as JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_json(&mut out);
        out
    }

    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        self.set_app_metadata.write_json(o.key("set_app_metadata"));
        write_events(&self.events, o.key("events"));
        if self.relink {
            o.bool("relink", true);
        }
        if !self.fanout.is_empty() {
            o.array("fanout", &self.fanout, write_fanout);
        }
        o.end();
    }
}

/// Records the products' answers to fan-out requests in the record.
/// Returns true when a product answered that another user holds a proven account (to join).
fn acknowledge(
    meta: &mut PersonMeta,
    user_id: &str,
    fanout: &[FanoutResult],
    events: &mut Vec<Event>,
) -> bool {
    let mut other_holder = false;
    for r in fanout {
        if let Some(a) = meta
            .accounts
            .iter_mut()
            .find(|a| a.product == r.product && a.id == r.account)
        {
            let holder = r.holder.as_deref().filter(|h| *h != user_id);
            if let (false, Some(h), true) = (r.ok, holder, a.proof.is_some()) {
                // Another of the person's users was told first: this one joins it.
                a.linked = Some(h.to_owned());
                a.held = false;
                other_holder = true;
                events.push(
                    Event::new("fanout_held_by_other")
                        .product(&r.product)
                        .account(&r.account),
                );
            } else if r.ok && ownership::may_learn_auth0_id(a) {
                a.fanout = true;
                a.held = false;
                a.stale = None;
                events.push(
                    Event::new("fanout_acknowledged")
                        .product(&r.product)
                        .account(&r.account),
                );
            } else if r.ok {
                a.fanout = false;
                events.push(
                    Event::new("withdraw_acknowledged")
                        .product(&r.product)
                        .account(&r.account),
                );
            } else {
                events.push(
                    Event::new("fanout_failed")
                        .product(&r.product)
                        .account(&r.account)
                        .code("fanout.failed"),
                );
            }
        }
    }
    other_holder
}

/// Records fan-out acknowledgements and the accounts found by pending look-ups.
pub fn apply(input: &ApplyInput) -> Applied {
    if let Some(d) = &input.discover {
        return discovered(input, d);
    }
    let mut events = vec![];
    let app = app_meta(&input.user);
    let user_id = input.user.user_id.as_str();
    // In repair, every product being looked up again is pending until it answers.
    let looked_up: Vec<String> = input.lookups.iter().map(|l| l.name.clone()).collect();
    let (mut meta, repair) = meta_or_repair(&app, user_id, &looked_up, &mut events);
    // What the record was, to write it back only when it changed (compared as a struct: its
    // JSON form is one-to-one with it, and building that twice per login is most of the work).
    let original = (!repair).then(|| meta.clone());
    let held_by_other = acknowledge(&mut meta, user_id, &input.fanout, &mut events);
    let email = input
        .user
        .email
        .as_deref()
        .and_then(|e| crate::email::canonical(e).ok());
    let mut found = vec![];
    for l in &input.lookups {
        match (&l.accounts, email.as_deref()) {
            (Some(list), Some(email)) => {
                meta.pending.retain(|p| p != &l.name);
                for raw in list {
                    match Account::from_json(&l.name, raw) {
                        Ok(a) if a.email == email => found.push(a),
                        Ok(_) => {}
                        Err(e) => events.push(
                            Event::new("account_malformed")
                                .product(&l.name)
                                .code(e.code),
                        ),
                    }
                }
                events.push(Event::new("pending_checked").product(&l.name));
            }
            _ => events.push(
                Event::new("pending_still_unavailable")
                    .product(&l.name)
                    .code("product.unavailable"),
            ),
        }
    }
    // A repair never proves anything: a proof is only ever what a login verified, and a record
    // missing here may be a sign-up's (a stranger who typed the address) as well as a lost one.
    // What it finds are candidates, proven later by the mailbox (the merge) or their password.
    let mut added_unproven = false;
    let mut relink = held_by_other;
    let mut told_now = false;
    for a in &found {
        // A proven account: whom its product told now (another of the person's tenant users,
        // to join; or nobody else, and it is told this user).
        if let Some(known) = meta
            .accounts
            .iter_mut()
            .find(|m| m.product == a.product && m.id == a.id && m.proof.is_some())
        {
            let other = a.auth0_user_id.as_deref().filter(|u| *u != user_id);
            if known.held || other.is_some() {
                // Read: join that user (plan again for it), or, nobody else, tell this one now.
                relink |= other.is_some();
                told_now |= other.is_none();
                known.held = false;
                known.linked = other.map(str::to_owned);
                events.push(
                    Event::new("account_holder_read")
                        .product(&a.product)
                        .account(&a.id),
                );
            }
            continue;
        }
        // Of a candidate, only that its product told someone is kept, never whom.
        let held = a.auth0_user_id.as_deref().is_some_and(|u| u != user_id);
        if meta.add_linked(&a.product, &a.id, None, a.email_verified, None, held) {
            added_unproven = true;
            events.push(
                Event::new("account_found_unproven")
                    .product(&a.product)
                    .account(&a.id),
            );
        }
    }
    let mut set = MetaWrites::default();
    if added_unproven && matches!(app.get("migrated"), Some(Value::Bool(true))) {
        // A newly found account must be proven before it joins: ask at the next login.
        set.migrated = Some(false);
    }
    // The accounts whose holder was just read and is nobody else learn this user's id now.
    let fanout = if told_now && !relink && !input.products.is_empty() {
        let config = Config::fanout_only(&input.products);
        fanout_requests(&meta, user_id, &config, &mut events)
    } else {
        vec![]
    };
    if original.as_ref() != Some(&meta) && !(repair && meta.accounts.is_empty()) {
        set.trickle = Some(meta);
    }
    Applied {
        set_app_metadata: set,
        events,
        relink: relink || (told_now && input.products.is_empty()),
        fanout,
    }
}

/// The accounts of one look-up list that parse, each with its product (malformed ones logged).
fn parsed(answers: &[LookupResult], events: &mut Vec<Event>) -> (Vec<Account>, Vec<String>) {
    let mut out = vec![];
    let mut failed = vec![];
    for l in answers {
        let Some(list) = &l.accounts else {
            failed.push(l.name.clone());
            continue;
        };
        for raw in list {
            match Account::from_json(&l.name, raw) {
                Ok(a) => out.push(a),
                Err(e) => events.push(
                    Event::new("account_malformed")
                        .product(&l.name)
                        .code(e.code),
                ),
            }
        }
    }
    (out, failed)
}

/// A first social login's record, from what the products answered: the accounts that hold the
/// identity are proven by it; the accounts found by address are candidates, proven only when the
/// provider vouches for the mailbox and the product had verified the address.
fn discovered(input: &ApplyInput, d: &Discover) -> Applied {
    let mut events = vec![];
    let app = app_meta(&input.user);
    if app.contains_key("trickle") {
        return Applied::nothing(vec![Event::new("social_already_resolved")]);
    }
    let email = input
        .user
        .email
        .as_deref()
        .and_then(|e| crate::email::canonical(e).ok());
    let (by_identity, mut pending) = parsed(&input.identity_lookups, &mut events);
    let (by_email, failed) = parsed(&input.lookups, &mut events);
    for f in failed {
        if !pending.contains(&f) {
            pending.push(f);
        }
    }
    if !pending.is_empty() {
        // A product that could not be asked may hold the identity: nothing is recorded, and the
        // next login asks every product again (an address look-up later would never prove it).
        events.push(
            Event::new("social_discovery_incomplete")
                .detail(pending.join(","))
                .code("product.unavailable"),
        );
        return Applied::nothing(events);
    }
    let mut found: Vec<(Account, Option<&str>)> = vec![];
    for a in by_identity {
        if !ownership::identity_proves(&a, &d.provider, &d.subject) {
            events.push(
                Event::new("account_identity_mismatch")
                    .product(&a.product)
                    .code("identity.mismatch"),
            );
            continue;
        }
        found.push((a, Some(proof::IDENTITY)));
    }
    for a in by_email {
        if email.as_deref() != Some(a.email.as_str()) {
            continue;
        }
        if found
            .iter()
            .any(|(f, _)| f.product == a.product && f.id == a.id)
        {
            continue;
        }
        let p =
            (d.vouched && ownership::mailbox_proves(a.email_verified)).then_some(proof::PROVIDER);
        found.push((a, p));
    }
    // The person id comes from the proven accounts only: a candidate's id would name someone
    // else's person (a victim's) in a stranger's record.
    let mut accounts: Vec<Account> = found
        .iter()
        .filter(|(_, p)| p.is_some())
        .map(|(a, _)| a.clone())
        .collect();
    crate::person::canonical_order(&mut accounts, &input.products);
    let person_id = crate::person::person_id(&accounts, &mut events).unwrap_or_else(|| {
        let id = input.user.user_id.as_str();
        crate::person::derived_person_id(
            id.split_once('|').map_or(id, |(p, _)| p),
            id.split_once('|').map_or(id, |(_, s)| s),
        )
    });
    let mut meta = PersonMeta {
        v: PersonMeta::VERSION,
        person_id,
        pending,
        address: email.clone(),
        // Where the address came from, when the provider does not vouch for it: its candidates
        // may be a stranger's (a workspace can assert any address).
        address_from: (!d.vouched).then(|| d.provider.clone()),
        ..PersonMeta::default()
    };
    for (a, p) in &found {
        // Whom the product told is kept for a proven account only; of a candidate, only that
        // it was told someone (the stranger who signed in must not learn a victim's id).
        let told = a.auth0_user_id.as_deref();
        meta.add_linked(
            &a.product,
            &a.id,
            *p,
            a.email_verified,
            if p.is_some() { told } else { None },
            p.is_none() && told.is_some(),
        );
        events.push(
            Event::new(if p.is_some() {
                "account_proven"
            } else {
                "account_found_unproven"
            })
            .product(&a.product)
            .account(&a.id)
            .detail(p.unwrap_or("candidate")),
        );
    }
    Applied {
        set_app_metadata: MetaWrites {
            migrated: None,
            trickle: Some(meta),
        },
        ..Applied::nothing(events)
    }
}

/// Input of [`link`]: the existing tenant user the plan named, as the Management API returned
/// it, and the user of this login, with its record as it stands.
#[derive(Debug, Clone)]
pub struct LinkInput {
    /// The user the plan named (`link`).
    pub target: String,
    /// That user as the Management API returned it; `None` when it does not exist (any more).
    pub primary: Option<User>,
    /// This login's user (to become the secondary).
    pub secondary: User,
    /// Product names, for the fan-out.
    pub products: Vec<String>,
}

impl LinkInput {
    /// Reads `{"primary", "secondary", "products"}`.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "")?;
        let user = |k: &str| {
            f.any(k)
                .ok_or_else(|| ErrorBody::new("input.missing_field", format!("{k} is required")))
                .and_then(User::from_value)
        };
        let primary = match f.any("primary") {
            None | Some(Value::Null) => None,
            Some(_) => Some(user("primary")?),
        };
        let target = match (f.opt_str("target")?, &primary) {
            (Some(t), _) => t.to_owned(),
            (None, Some(p)) => p.user_id.clone(),
            (None, None) => {
                return Err(ErrorBody::new(
                    "input.missing_field",
                    "target or primary is required",
                ))
            }
        };
        Ok(LinkInput {
            target,
            primary,
            secondary: user("secondary")?,
            products: f.strings("products")?,
        })
    }
}

/// What [`link`] decided.
#[derive(Debug, Clone)]
pub struct Linked {
    /// `link` or `refused`.
    pub outcome: &'static str,
    /// The secondary's identity to link into the primary: (provider, user id).
    pub identity: Option<(String, String)>,
    /// The primary's `app_metadata` keys to set.
    pub set_app_metadata: Map,
    /// This login's user's `app_metadata` keys to set (a stale pointer forgotten on refusal).
    pub set_secondary: Map,
    /// Fan-out requests, as the primary.
    pub fanout: Vec<FanoutRequest>,
    /// Log events.
    pub events: Vec<Event>,
}

impl Linked {
    /// `{"outcome", "identity"?: {"provider", "user_id"}, "set_app_metadata", "fanout", "events"}`.
    pub fn to_value(&self) -> Value {
        let fanout = fanout_value(&self.fanout);
        Map::new()
            .with("outcome", self.outcome)
            .with_opt(
                "identity",
                self.identity.as_ref().map(|(p, u)| {
                    Map::new()
                        .with("provider", p.as_str())
                        .with("user_id", u.as_str())
                }),
            )
            .with("set_app_metadata", self.set_app_metadata.clone())
            .with("set_secondary", self.set_secondary.clone())
            .with("fanout", fanout)
            .with("events", events_value(&self.events))
            .into()
    }

    fn refused(code: &'static str) -> Self {
        Linked {
            outcome: "refused",
            identity: None,
            set_app_metadata: Map::new(),
            set_secondary: Map::new(),
            fanout: vec![],
            events: vec![Event::new("link_refused").code(code)],
        }
    }
}

/// Decides whether this login's user joins the existing user the plan named, and the primary's
/// record afterwards: only when the primary's own record holds, with a proof, an account this
/// user proved (a pointer a product returned is never enough). The primary keeps its person id;
/// this user's accounts join it, and the accounts it proved learn the primary's id.
pub fn link(input: &LinkInput) -> Linked {
    let mut events = vec![];
    let (sid, pid) = (input.secondary.user_id.as_str(), input.target.as_str());
    if sid == pid {
        return Linked::refused("link.same_user");
    }
    let Some(identity) = sid
        .split_once('|')
        .filter(|(p, u)| !p.is_empty() && !u.is_empty())
    else {
        return Linked::refused("link.user_id");
    };
    let Some(mut secondary) = read_meta(&app_meta(&input.secondary), &mut events) else {
        return Linked::refused("link.no_record");
    };
    // The named user is gone, or its own record does not hold the account with a proof (its
    // link was withdrawn, or the pointer was never its): the pointer is stale. It is forgotten,
    // so this user, which proved the account, is told instead from now on.
    let stale = |secondary: &mut PersonMeta, code: &'static str| {
        for a in secondary
            .accounts
            .iter_mut()
            .filter(|a| a.linked.as_deref() == Some(pid))
        {
            // Told this user from now on, replacing the stale id at the product.
            a.stale = a.linked.take();
        }
        let mut refused = Linked::refused(code);
        refused
            .set_secondary
            .insert("trickle", secondary.to_value());
        refused
    };
    let Some(primary) = &input.primary else {
        return stale(&mut secondary, "link.primary_missing");
    };
    if primary.user_id != pid {
        return Linked::refused("link.user_id");
    }
    let primary_app = app_meta(primary);
    let Some(mut merged) = read_meta(&primary_app, &mut events) else {
        return stale(&mut secondary, "link.primary_not_migrated");
    };
    let proven: Vec<&crate::person::AccountRef> = secondary
        .accounts
        .iter()
        .filter(|a| a.proof.is_some() && a.linked.as_deref() == Some(pid))
        .collect();
    if proven.is_empty() || !ownership::may_link(&merged, &proven) {
        return stale(&mut secondary, "link.not_proven");
    }
    for a in &secondary.accounts {
        // An account another user (neither of these two) was told, or whose holder is not
        // known yet, stays out: joining it would tell it this user over that one. So does a
        // candidate: it belongs to the address that found it, and the primary's mailbox is
        // another one (a stranger's workspace may have asserted the victim's address here).
        if a.proof.is_none() || a.linked.as_deref().is_some_and(|l| l != pid) {
            events.push(
                Event::new("link_account_left")
                    .product(&a.product)
                    .account(&a.id),
            );
            continue;
        }
        match merged
            .accounts
            .iter_mut()
            .find(|m| m.product == a.product && m.id == a.id)
        {
            Some(m) => {
                if m.proof.is_none() && a.proof.is_some() {
                    m.proof = a.proof.clone();
                    m.fanout = false;
                }
                if a.fanout {
                    // The product holds the newcomer's id: the primary's replaces it.
                    m.fanout = false;
                    m.stale = Some(sid.to_owned());
                }
            }
            None => {
                // A proven account whose holder is not known yet joins as such: the primary
                // reads it again before telling it.
                if merged.add_linked(
                    &a.product,
                    &a.id,
                    a.proof.as_deref(),
                    a.verified,
                    None,
                    a.held,
                ) {
                    if a.fanout {
                        // The product holds the newcomer's id: the primary's replaces it.
                        if let Some(m) = merged.accounts.last_mut() {
                            m.stale = Some(sid.to_owned());
                        }
                    }
                    events.push(
                        Event::new("link_account_joined")
                            .product(&a.product)
                            .account(&a.id),
                    );
                }
            }
        }
    }
    for p in &secondary.pending {
        if !merged.pending.contains(p) {
            merged.pending.push(p.clone());
        }
    }
    let config = Config::fanout_only(&input.products);
    let fanout = fanout_requests(&merged, pid, &config, &mut events);
    let mut set = Map::new();
    set.insert("trickle", merged.to_value());
    events.push(Event::new("link_accepted"));
    Linked {
        outcome: "link",
        identity: Some((identity.0.to_owned(), identity.1.to_owned())),
        set_app_metadata: set,
        set_secondary: Map::new(),
        fanout,
        events,
    }
}
