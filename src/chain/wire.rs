//! The chain's wire types: what the shell hands the core (the login, its user, the settings, the
//! products' answers) and what the core answers (plans, applied results, link decisions), each
//! with its one reader or writer.

use crate::event::{events_value, write_events, ErrorBody, Event};
use crate::fields::Fields;
use crate::json::{self, Map, ObjectWriter, Value};
use crate::person::PersonMeta;

/// How long a product look-up may take unless configured (ms).
pub const DEFAULT_LOOKUP_TIMEOUT_MS: i64 = 4000;
/// How long the fan-out may take unless configured (ms).
pub const DEFAULT_FANOUT_BUDGET_MS: i64 = 2000;

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
    /// How long a product look-up may take (ms).
    pub lookup_timeout_ms: i64,
    /// How long the fan-out may take (ms).
    pub fanout_budget_ms: i64,
    /// True when the Management API is configured, so accounts can be linked.
    pub link: bool,
    /// The trickle connection's id, named when a database identity is linked.
    pub connection_id: Option<String>,
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

impl SocialIdentity {
    /// The social identity of a login of `connection`, chosen from the user's identities
    /// (`[{provider, connection, user_id, hd?}]`): only the identity the user is made of counts
    /// (`user_id` is `provider|user_id`): for a user of another identity that merely has this one
    /// linked, the profile's address and verification are not this provider's word. The subject
    /// loses the connection's own prefix (Auth0 writes some as `<connection>|<id>`); Google's
    /// `hd` comes from the profile or the identity's profile data.
    pub fn of_login(
        user_id: &str,
        connection: Option<&str>,
        identities: &[Value],
        hd: Option<&str>,
    ) -> Option<SocialIdentity> {
        let connection = connection?;
        let id = identities.iter().find(|i| {
            i.get("connection").and_then(Value::as_str) == Some(connection)
                && i.get("user_id").and_then(Value::as_str).is_some()
        })?;
        let provider = id.get("provider").and_then(Value::as_str).unwrap_or("");
        let uid = id.get("user_id").and_then(Value::as_str).unwrap_or("");
        let made_of = user_id
            .split_once('|')
            .is_some_and(|(p, u)| p == provider && u == uid);
        if !made_of {
            return None;
        }
        let subject = uid
            .strip_prefix(connection)
            .and_then(|rest| rest.strip_prefix('|'))
            .unwrap_or(uid);
        Some(SocialIdentity {
            provider: connection.to_owned(),
            subject: subject.to_owned(),
            hd: hd
                .or_else(|| id.get("hd").and_then(Value::as_str))
                .map(str::to_owned),
        })
    }
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
    pub(super) fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("provider", &self.provider)
            .str("subject", &self.subject)
            .bool("vouched", self.vouched);
        o.end();
    }

    pub(super) fn from_value(v: &Value) -> Result<Self, ErrorBody> {
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
    pub(super) fn fanout_only(products: &[String]) -> Self {
        Config {
            products: products.to_vec(),
            merge_url: String::new(),
            token_secret: String::new(),
            connection: None,
            social: vec![],
            lookup_timeout_ms: DEFAULT_LOOKUP_TIMEOUT_MS,
            fanout_budget_ms: DEFAULT_FANOUT_BUDGET_MS,
            link: false,
            connection_id: None,
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
    /// The user's address in its canonical form (`email::canonical`), when it has one that is.
    pub fn canonical_email(&self) -> Option<String> {
        self.email
            .as_deref()
            .and_then(|e| crate::email::canonical(e).ok())
    }

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
            lookup_timeout_ms: cf
                .any("lookup_timeout_ms")
                .and_then(Value::as_i64)
                .map_or(DEFAULT_LOOKUP_TIMEOUT_MS, |n| n.clamp(50, 15_000)),
            fanout_budget_ms: cf
                .any("fanout_budget_ms")
                .and_then(Value::as_i64)
                .map_or(DEFAULT_FANOUT_BUDGET_MS, |n| n.clamp(50, 15_000)),
            link: matches!(cf.any("link"), Some(Value::Bool(true))),
            connection_id: cf.opt_str("connection_id")?.map(str::to_owned),
        };
        let identity = match f.any("identity") {
            None | Some(Value::Null) => match f.any("identities") {
                // The user's identities as the event shows them: the core picks the login's.
                Some(Value::Array(list)) => SocialIdentity::of_login(
                    f.any("user")
                        .and_then(|u| u.get("user_id"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    transaction.connection.as_deref(),
                    list,
                    f.opt_str("hd")?,
                ),
                _ => None,
            },
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
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.migrated.is_none() && self.trickle.is_none()
    }

    /// `{"migrated"?, "trickle"?}`.
    pub(super) fn write_json(&self, out: &mut String) {
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

/// How a login goes on: through, to the merge service, or refused with the reason shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The login goes on.
    Continue,
    /// To the merge service.
    Redirect(Redirect),
    /// Refused: the reason shown to the person.
    Deny(ErrorBody),
}

impl Outcome {
    /// `continue`, `redirect` or `deny`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Continue => "continue",
            Outcome::Redirect(_) => "redirect",
            Outcome::Deny(_) => "deny",
        }
    }

    /// Writes `"outcome"` and, for a redirect or a denial, its `"redirect"` or `"deny"` object.
    pub(super) fn write_fields(&self, o: &mut ObjectWriter<'_>) {
        o.str("outcome", self.name());
        match self {
            Outcome::Continue => {}
            Outcome::Redirect(r) => r.write_json(o.key("redirect")),
            Outcome::Deny(d) => d.write_json(o.key("deny")),
        }
    }
}

impl Redirect {
    /// `{"url", "query"}`.
    pub(super) fn write_json(&self, out: &mut String) {
        let mut ro = ObjectWriter::new(out);
        ro.str("url", &self.url);
        json::write_map(&self.query, ro.key("query"));
        ro.end();
    }
}

/// What the chain decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// How the login goes on.
    pub outcome: Outcome,
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
        self.outcome.write_fields(&mut o);
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

    pub(super) fn pass(events: Vec<Event>) -> Self {
        Plan {
            outcome: Outcome::Continue,
            set_app_metadata: MetaWrites::default(),
            fanout: vec![],
            lookups: vec![],
            discover: None,
            link: None,
            acknowledged: None,
            events,
        }
    }

    pub(super) fn deny(error: ErrorBody, events: Vec<Event>) -> Self {
        Plan {
            outcome: Outcome::Deny(error),
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
pub(super) fn fanout_value(requests: &[FanoutRequest]) -> Value {
    let mut text = String::new();
    json::write_array(requests, &mut text, write_fanout);
    json::parse(&text).unwrap_or_default()
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
    pub(super) fn nothing(events: Vec<Event>) -> Self {
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

    pub(super) fn write_json(&self, out: &mut String) {
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

    pub(super) fn refused(code: &'static str) -> Self {
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
