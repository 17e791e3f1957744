//! The login as a step machine: the one export the post-login shell drives.
//!
//! The shell calls [`step`] with the login's input and the results of the effects it performed
//! so far, in order. The core runs the whole login again from the start on those results (it is
//! deterministic: the time and the jti are in the input) and answers the effects still to
//! perform: in order, up to and including the next one whose result it needs (a look-up, a
//! read, a write to another user, a link), or all of them with `done` once the login is decided.
//! Every rule of who owns, proves, links or is told is decided here; the shell performs
//! effects, reports their results and keeps no state but the list of results.
//!
//! Effects: `write` (this login's user's `app_metadata` keys), `ask` (the products: fan-out
//! requests, look-ups by address and by identity, within a budget), `read_user`, `patch_user`
//! and `link_identity` (the Management API, each with its timeout), `set_primary` (continue the
//! login as another user), `redirect` and `deny`. An `ask` that only tells accounts carries
//! `then`: what to perform when every request is acknowledged, instead of asking again.

use super::*;

/// The longest a login may spend joining another user, whatever the budgets say (ms).
const LINK_DEADLINE_MS: i64 = 10_000;
/// How many times a Management API call is tried again after a 429 (when its Retry-After fits
/// in the call's time).
const MGMT_RETRIES: i64 = 1;
/// Below this much time left, optional work (the fan-out after a link) is left to a later login.
const MIN_LEFT_MS: i64 = 100;

/// One effect for the shell to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Set these top-level `app_metadata` keys of this login's user (JSON object text).
    Write(String),
    /// Ask the products (its result is needed).
    Ask(Ask),
    /// Read a tenant user through the Management API (its result is needed).
    ReadUser {
        /// The user id.
        id: String,
        /// Time allowed (ms).
        timeout_ms: i64,
    },
    /// Set top-level `app_metadata` keys of another tenant user (JSON object text).
    PatchUser {
        /// The user id.
        id: String,
        /// The keys, as JSON object text.
        app_metadata: String,
        /// Time allowed (ms).
        timeout_ms: i64,
    },
    /// Link this login's identity into another tenant user.
    LinkIdentity {
        /// The primary user's id.
        id: String,
        /// The identity's provider.
        provider: String,
        /// The identity's user id.
        user_id: String,
        /// The database connection's id, for a database identity.
        connection_id: Option<String>,
        /// Time allowed (ms).
        timeout_ms: i64,
    },
    /// Continue the login as this user.
    SetPrimary(String),
    /// Send the person to the merge service (ends the login's decision).
    Redirect(Redirect),
    /// Refuse the login with this reason (ends the login's decision).
    Deny(ErrorBody),
}

/// The products' part of a login: requests telling accounts, look-ups by address and identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// Fan-out requests.
    pub fanout: Vec<FanoutRequest>,
    /// Products to look the address up in.
    pub lookups: Vec<String>,
    /// The canonical address to look up.
    pub email: Option<String>,
    /// The identity to look up in every product in `lookups` (provider, subject).
    pub identity: Option<(String, String)>,
    /// Time allowed for all of it (ms).
    pub budget_ms: i64,
    /// When every request is acknowledged (and nothing is looked up): these effects and events
    /// instead of another step.
    pub then: Option<(Vec<Effect>, Vec<Event>)>,
}

impl Ask {
    /// An `ask` that only tells accounts, within `budget_ms`.
    fn telling(fanout: Vec<FanoutRequest>, budget_ms: i64) -> Self {
        Ask {
            fanout,
            lookups: vec![],
            email: None,
            identity: None,
            budget_ms,
            then: None,
        }
    }
}

/// Input of [`step`]: the login, and the results of the effects performed so far.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// The login.
    pub input: PlanInput,
    /// Results of the effects that needed one, in order.
    pub results: Vec<Value>,
}

impl StepInput {
    /// Reads `{"input": <plan input>, "results": [...]}`, taking both out of `v`.
    pub fn from_owned(mut v: Value) -> Result<Self, ErrorBody> {
        let m = v
            .as_object_mut()
            .ok_or_else(|| ErrorBody::new("input.invalid_type", "the input must be an object"))?;
        let input = m
            .take("input")
            .ok_or_else(|| ErrorBody::new("input.missing_field", "input is required"))?;
        let results = match m.take("results") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(ErrorBody::new(
                    "input.invalid_type",
                    "results must be an array",
                ))
            }
        };
        Ok(StepInput {
            input: PlanInput::from_owned(input)?,
            results,
        })
    }
}

/// What the log line says beyond the events: the link's outcome and a failed write elsewhere.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkLog {
    /// `linked` or `failed`.
    pub outcome: &'static str,
    /// The primary joined.
    pub primary: Option<String>,
    /// Why not.
    pub code: Option<&'static str>,
    /// What failed.
    pub error: Option<String>,
    /// A write to another user that failed after the decision.
    pub metadata_error: Option<String>,
}

/// What [`step`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct StepAnswer {
    /// The effects still to perform, in order.
    pub effects: Vec<Effect>,
    /// The login's outcome once decided; `None` while the last effect's result is needed.
    pub done: Option<&'static str>,
    /// Every event of the login so far.
    pub events: Vec<Event>,
    /// The link's part of the log line.
    pub link: Option<LinkLog>,
    /// A returning person whose login asked for nothing: the same input gets the same answer.
    pub quiet: bool,
}

/// Effects performed before this point already happened (the shell reports their results).
struct Wait;

/// One run of the machine over the results so far.
struct Run<'a> {
    results: &'a [Value],
    used: usize,
    effects: Vec<Effect>,
    cut: usize,
    events: Vec<Event>,
    link: Option<LinkLog>,
    /// This login's user as the login found it.
    found: &'a User,
    /// This login's user as the writes so far leave it, once one was needed (writes are applied
    /// only then: the common logins never copy the user).
    user: Option<User>,
    unapplied: Vec<String>,
    /// Time the shell reported at the last result (ms since the login started).
    elapsed: i64,
}

impl<'a> Run<'a> {
    fn emit(&mut self, e: Effect) {
        self.effects.push(e);
    }

    /// An effect whose result is needed: the result, or [`Wait`] when the shell has not
    /// performed it yet.
    fn barrier(&mut self, e: Effect) -> Result<&'a Value, Wait> {
        self.effects.push(e);
        let r = self.results.get(self.used).ok_or(Wait)?;
        self.used += 1;
        self.cut = self.effects.len();
        self.elapsed = r.get("ms").and_then(Value::as_i64).unwrap_or(self.elapsed);
        Ok(r)
    }

    fn write_text(&mut self, text: String) {
        if text != "{}" {
            self.unapplied.push(text.clone());
            self.emit(Effect::Write(text));
        }
    }

    fn write(&mut self, w: &MetaWrites) {
        if !w.is_empty() {
            let mut text = String::with_capacity(256);
            w.write_json(&mut text);
            self.write_text(text);
        }
    }

    /// This login's user with the writes so far.
    fn user(&mut self) -> User {
        let user = self.user.get_or_insert_with(|| self.found.clone());
        if !self.unapplied.is_empty() {
            let mut app = match user.app_metadata.take() {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for text in self.unapplied.drain(..) {
                if let Ok(Value::Object(keys)) = json::parse(&text) {
                    app.extend(keys);
                }
            }
            user.app_metadata = Some(Value::Object(app));
        }
        user.clone()
    }

    fn link_failed(&mut self, code: &'static str, error: String) {
        let log = self.link.get_or_insert_with(LinkLog::default);
        log.outcome = "failed";
        log.code = Some(code);
        log.error = Some(error);
    }
}

/// The products' answers in an `ask` result, as [`apply`] reads them.
struct Answers {
    fanout: Vec<FanoutResult>,
    lookups: Vec<LookupResult>,
    identity_lookups: Vec<LookupResult>,
}

fn answers(r: &Value) -> Result<Answers, ErrorBody> {
    let f = Fields::of(r, "results[]")?;
    let mut fanout = vec![];
    if let Some(list) = f.any("fanout").and_then(Value::as_array) {
        for a in list {
            let af = Fields::of(a, "results[].fanout[]")?;
            fanout.push(FanoutResult {
                product: af.str("product")?.to_owned(),
                account: af.str("account")?.to_owned(),
                ok: matches!(af.any("ok"), Some(Value::Bool(true))),
                holder: af
                    .opt_str("holder")?
                    .filter(|h| crate::person::valid_user_id(h))
                    .map(str::to_owned),
            });
        }
    }
    let list = |key: &str| -> Result<Vec<LookupResult>, ErrorBody> {
        match f.any(key) {
            Some(Value::Array(l)) => LookupResult::list(l, "results[].lookups[]"),
            _ => Ok(vec![]),
        }
    };
    Ok(Answers {
        fanout,
        lookups: list("lookups")?,
        identity_lookups: list("identity_lookups")?,
    })
}

/// Whether a Management API result succeeded, and what to say when not.
fn mgmt_ok(r: &Value) -> Result<(), String> {
    let status = r.get("status").and_then(Value::as_i64).unwrap_or(0);
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(match r.get("error").and_then(Value::as_str) {
        Some(e) => e.to_owned(),
        None => format!("HTTP {status}"),
    })
}

/// Runs the login on the results so far.
pub fn step(input: &StepInput) -> Result<StepAnswer, ErrorBody> {
    let mut run = Run {
        results: &input.results,
        used: 0,
        effects: vec![],
        cut: 0,
        events: vec![],
        link: None,
        found: &input.input.user,
        user: None,
        unapplied: vec![],
        elapsed: 0,
    };
    let done = match login(&input.input, &mut run) {
        Ok(outcome) => Some(outcome),
        Err(Stop::Wait) => None,
        Err(Stop::Invalid(e)) => return Err(e),
    };
    if run.used < input.results.len() {
        return Err(ErrorBody::new(
            "input.results",
            "more results than the login asked for",
        ));
    }
    let quiet = done == Some("continue") && run.effects.is_empty() && run.link.is_none();
    let effects = run.effects.split_off(run.cut.min(run.effects.len()));
    Ok(StepAnswer {
        effects,
        done,
        events: run.events,
        link: run.link,
        quiet,
    })
}

/// Why a run stopped before the login was decided.
enum Stop {
    /// The next result is not in yet.
    Wait,
    /// A result could not be read.
    Invalid(ErrorBody),
}

impl From<Wait> for Stop {
    fn from(_: Wait) -> Self {
        Stop::Wait
    }
}

impl From<ErrorBody> for Stop {
    fn from(e: ErrorBody) -> Self {
        Stop::Invalid(e)
    }
}

/// The whole login: plan (a first social login's discovery first), its writes, the redirect or
/// the denial, the join, and what is told and looked up.
fn login(input: &PlanInput, run: &mut Run<'_>) -> Result<&'static str, Stop> {
    let mut p = plan(input);
    run.events.append(&mut p.events);
    if let Some(d) = p.discover.take() {
        let ask = Ask {
            fanout: vec![],
            lookups: p.lookups.clone(),
            email: input.user.canonical_email(),
            identity: Some((d.provider.clone(), d.subject.clone())),
            budget_ms: input.config.lookup_timeout_ms,
            then: None,
        };
        let got = answers(run.barrier(Effect::Ask(ask))?)?;
        let user = run.user();
        let applied = apply(&ApplyInput {
            user,
            fanout: vec![],
            lookups: got.lookups,
            discover: Some(d),
            identity_lookups: got.identity_lookups,
            products: input.config.products.clone(),
        });
        run.events.extend(applied.events);
        // Nothing recorded (a product could not be asked): the next login asks again.
        if applied.set_app_metadata.trickle.is_none() {
            return Ok("continue");
        }
        run.write(&applied.set_app_metadata);
        let again = PlanInput {
            user: run.user(),
            ..input.clone()
        };
        p = plan(&again);
        run.events.append(&mut p.events);
        if p.discover.is_some() {
            return Ok("continue");
        }
    }
    run.write(&p.set_app_metadata);
    match &p.outcome {
        Outcome::Redirect(r) => {
            run.emit(Effect::Redirect(r.clone()));
            return Ok("redirect");
        }
        Outcome::Deny(e) => {
            run.emit(Effect::Deny(e.clone()));
            return Ok("deny");
        }
        Outcome::Continue => {}
    }
    if let Some(target) = &p.link {
        return join(input, target, run);
    }
    if p.fanout.is_empty() && p.lookups.is_empty() {
        return Ok("continue");
    }
    // Every request acknowledged and nothing looked up: the record the plan foresaw.
    let then = p.acknowledged.as_ref().map(|a| {
        let mut text = String::new();
        a.set_app_metadata.write_json(&mut text);
        let effects = if a.set_app_metadata.is_empty() {
            vec![]
        } else {
            vec![Effect::Write(text)]
        };
        (effects, a.events.clone())
    });
    let ask = Ask {
        email: if p.lookups.is_empty() {
            None
        } else {
            input.user.canonical_email()
        },
        fanout: p.fanout,
        lookups: p.lookups,
        identity: None,
        budget_ms: input.config.fanout_budget_ms,
        then,
    };
    let got = answers(run.barrier(Effect::Ask(ask))?)?;
    let user = run.user();
    let applied = apply(&ApplyInput {
        user,
        fanout: got.fanout,
        lookups: got.lookups,
        discover: None,
        identity_lookups: vec![],
        products: input.config.products.clone(),
    });
    run.events.extend(applied.events);
    run.write(&applied.set_app_metadata);
    if applied.relink {
        // Another of the person's users holds a proven account: planned once more, without a
        // redirect, to join it in this login (once: no further rounds).
        let again = PlanInput {
            phase: Phase::Execute,
            user: run.user(),
            transaction: Transaction {
                can_redirect: false,
                ..input.transaction.clone()
            },
            ..input.clone()
        };
        let mut p = plan(&again);
        run.events.append(&mut p.events);
        if let Some(target) = &p.link {
            return join(input, target, run);
        }
        run.write(&p.set_app_metadata);
        return tell(input, p.fanout, run);
    }
    tell(input, applied.fanout, run)
}

/// Tells the accounts whose holder was just read (nobody else) this user's id, and records the
/// answers.
#[inline(never)]
fn tell(
    input: &PlanInput,
    requests: Vec<FanoutRequest>,
    run: &mut Run<'_>,
) -> Result<&'static str, Stop> {
    if requests.is_empty() {
        return Ok("continue");
    }
    let ask = Ask::telling(requests, input.config.fanout_budget_ms);
    let got = answers(run.barrier(Effect::Ask(ask))?)?;
    let acked = acknowledged(run.user(), got.fanout);
    run.events.extend(acked.events);
    run.write(&acked.set_app_metadata);
    Ok("continue")
}

/// The record of `user` once the products answered requests that only told accounts.
fn acknowledged(user: User, fanout: Vec<FanoutResult>) -> Applied {
    apply(&ApplyInput {
        user,
        fanout,
        lookups: vec![],
        discover: None,
        identity_lookups: vec![],
        products: vec![],
    })
}

/// The primary as the Management API returned it, as the core reads a user.
fn primary_of(v: Option<&Value>) -> User {
    let get = |k: &str| v.and_then(|u| u.get(k));
    User {
        user_id: get("user_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        email: get("email").and_then(Value::as_str).map(str::to_owned),
        email_verified: matches!(get("email_verified"), Some(Value::Bool(true))),
        app_metadata: Some(Value::Object(
            get("app_metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )),
    }
}

/// Joins this login's user to `target` (Auth0 account linking): that user is read, its record
/// checked ([`link`]), the joined record written to it, this identity linked into it (the record
/// put back when linking fails), the login continued as it, and its accounts told. Any failure
/// leaves both users as they were and the login goes on.
#[inline(never)]
fn join(input: &PlanInput, target: &str, run: &mut Run<'_>) -> Result<&'static str, Stop> {
    let cfg = &input.config;
    if !cfg.link {
        run.link_failed(
            "link.unconfigured",
            "TRICKLE_MGMT_DOMAIN, TRICKLE_MGMT_CLIENT_ID and TRICKLE_MGMT_CLIENT_SECRET are needed to link accounts".into(),
        );
        return Ok("continue");
    }
    // One deadline for the whole step, well inside the platform's limit on an Action.
    let deadline = LINK_DEADLINE_MS.min(cfg.lookup_timeout_ms + 2 * cfg.fanout_budget_ms);
    let timeout = |elapsed: i64| cfg.lookup_timeout_ms.min(deadline - elapsed).max(1);
    let secondary = run.user();
    if deadline - run.elapsed < MIN_LEFT_MS {
        run.link_failed("link.deadline", format!("no time left to join {target}"));
        return Ok("continue");
    }
    let read = run.barrier(Effect::ReadUser {
        id: target.to_owned(),
        timeout_ms: timeout(run.elapsed),
    })?;
    let status = read.get("status").and_then(Value::as_i64).unwrap_or(0);
    let primary = match status {
        404 => None,
        _ => {
            if let Err(e) = mgmt_ok(read) {
                run.link_failed("link.primary_unavailable", format!("reading {target}: {e}"));
                return Ok("continue");
            }
            Some(primary_of(read.get("user")))
        }
    };
    let linked = link(&LinkInput {
        target: target.to_owned(),
        primary: primary.clone(),
        secondary,
        products: cfg.products.clone(),
    });
    run.events.extend(linked.events.iter().cloned());
    let (Some(primary), Some((provider, user_id)), "link") =
        (primary, linked.identity.clone(), linked.outcome)
    else {
        // A refusal names a stale pointer: this user's record forgets it.
        if !linked.set_secondary.is_empty() {
            let mut text = String::new();
            json::write_map(&linked.set_secondary, &mut text);
            run.write_text(text);
        }
        let code = linked
            .events
            .iter()
            .find_map(|e| e.code)
            .unwrap_or("link.refused");
        run.link_failed(code, format!("not joined to {target}"));
        return Ok("continue");
    };
    let before = match &primary.app_metadata {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if deadline - run.elapsed < MIN_LEFT_MS {
        run.link_failed("link.deadline", format!("no time left to join {target}"));
        return Ok("continue");
    }
    let mut set = String::new();
    json::write_map(&linked.set_app_metadata, &mut set);
    let wrote = run.barrier(Effect::PatchUser {
        id: target.to_owned(),
        app_metadata: set,
        timeout_ms: timeout(run.elapsed),
    })?;
    if let Err(e) = mgmt_ok(wrote) {
        run.link_failed("link.metadata", format!("writing {target}: {e}"));
        return Ok("continue");
    }
    let connection_id = (provider == "auth0")
        .then(|| cfg.connection_id.clone())
        .flatten();
    // Out of time before the identity is linked: the joined record goes back (a link sent
    // with no time to answer could succeed unseen, and be undone by the put-back).
    let joined = if deadline - run.elapsed < MIN_LEFT_MS {
        Err("no time left".to_owned())
    } else {
        mgmt_ok(run.barrier(Effect::LinkIdentity {
            id: target.to_owned(),
            provider,
            user_id,
            connection_id,
            timeout_ms: timeout(run.elapsed),
        })?)
    };
    if let Err(e) = joined {
        // The joined record goes back as it was.
        let mut restore = Map::new();
        for (k, _) in linked.set_app_metadata.iter() {
            restore.insert(k.to_owned(), before.get(k).cloned().unwrap_or(Value::Null));
        }
        let mut text = String::new();
        json::write_map(&restore, &mut text);
        let put_back = run.barrier(Effect::PatchUser {
            id: target.to_owned(),
            app_metadata: text,
            // The put-back is not optional: it gets its time even past the deadline.
            timeout_ms: cfg.lookup_timeout_ms,
        })?;
        let failed = mgmt_ok(put_back).err();
        run.link_failed("link.identities", format!("linking into {target}: {e}"));
        if let (Some(f), Some(log)) = (failed, run.link.as_mut()) {
            log.metadata_error = Some(format!("restoring {target}: {f}"));
        }
        return Ok("continue");
    }
    run.emit(Effect::SetPrimary(target.to_owned()));
    run.link = Some(LinkLog {
        outcome: "linked",
        primary: Some(target.to_owned()),
        ..LinkLog::default()
    });
    let left = deadline - run.elapsed;
    if linked.fanout.is_empty() || left < MIN_LEFT_MS {
        return Ok("continue");
    }
    let mut merged = before;
    merged.extend(linked.set_app_metadata.clone());
    let ask = Ask::telling(linked.fanout, cfg.fanout_budget_ms.min(left));
    let got = answers(run.barrier(Effect::Ask(ask))?)?;
    let as_primary = User {
        user_id: target.to_owned(),
        email: primary.email,
        email_verified: primary.email_verified,
        app_metadata: Some(Value::Object(merged)),
    };
    let applied = acknowledged(as_primary, got.fanout);
    run.events.extend(applied.events);
    // Out of time, the acknowledgements are recorded at a later login (the fan-out is idempotent).
    if applied.set_app_metadata.is_empty() || deadline - run.elapsed < MIN_LEFT_MS {
        return Ok("continue");
    }
    let mut text = String::new();
    applied.set_app_metadata.write_json(&mut text);
    let wrote = run.barrier(Effect::PatchUser {
        id: target.to_owned(),
        app_metadata: text,
        timeout_ms: timeout(run.elapsed),
    })?;
    if let (Err(e), Some(log)) = (mgmt_ok(wrote), run.link.as_mut()) {
        log.metadata_error = Some(format!("writing {target}: {e}"));
    }
    Ok("continue")
}

impl Effect {
    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        match self {
            Effect::Write(text) => {
                o.key("write").push_str(text);
            }
            Effect::Ask(a) => a.write_json(o.key("ask")),
            Effect::ReadUser { id, timeout_ms } => {
                let mut r = ObjectWriter::new(o.key("read_user"));
                r.str("id", id)
                    .int("timeout_ms", *timeout_ms)
                    .int("retries", MGMT_RETRIES);
                r.end();
            }
            Effect::PatchUser {
                id,
                app_metadata,
                timeout_ms,
            } => {
                let mut r = ObjectWriter::new(o.key("patch_user"));
                r.str("id", id);
                r.key("app_metadata").push_str(app_metadata);
                r.int("timeout_ms", *timeout_ms)
                    .int("retries", MGMT_RETRIES);
                r.end();
            }
            Effect::LinkIdentity {
                id,
                provider,
                user_id,
                connection_id,
                timeout_ms,
            } => {
                let mut r = ObjectWriter::new(o.key("link_identity"));
                r.str("id", id)
                    .str("provider", provider)
                    .str("user_id", user_id)
                    .opt_str("connection_id", connection_id.as_deref())
                    .int("timeout_ms", *timeout_ms)
                    .int("retries", MGMT_RETRIES);
                r.end();
            }
            Effect::SetPrimary(id) => {
                o.str("set_primary", id);
            }
            Effect::Redirect(r) => r.write_json(o.key("redirect")),
            Effect::Deny(e) => e.write_json(o.key("deny")),
        }
        o.end();
    }
}

fn write_effects(effects: &[Effect], out: &mut String) {
    json::write_array(effects, out, Effect::write_json);
}

impl Ask {
    fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.array("fanout", &self.fanout, write_fanout);
        json::write_strings(&self.lookups, o.key("lookups"));
        o.opt_str("email", self.email.as_deref());
        if let Some((provider, subject)) = &self.identity {
            let mut i = ObjectWriter::new(o.key("identity"));
            i.str("provider", provider).str("subject", subject);
            i.end();
        }
        o.int("budget_ms", self.budget_ms);
        if let Some((effects, events)) = &self.then {
            let mut t = ObjectWriter::new(o.key("then"));
            write_effects(effects, t.key("effects"));
            write_events(events, t.key("events"));
            t.end();
        }
        o.end();
    }
}

impl StepAnswer {
    /// `{"effects", "done"?, "events", "link"?, "quiet"?}` as JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(1024);
        let mut o = ObjectWriter::new(&mut out);
        write_effects(&self.effects, o.key("effects"));
        o.opt_str("done", self.done);
        write_events(&self.events, o.key("events"));
        if let Some(l) = &self.link {
            let mut lo = ObjectWriter::new(o.key("link"));
            lo.str("outcome", l.outcome)
                .opt_str("primary", l.primary.as_deref())
                .opt_str("code", l.code)
                .opt_str("error", l.error.as_deref())
                .opt_str("metadata_error", l.metadata_error.as_deref());
            lo.end();
        }
        if self.quiet {
            o.bool("quiet", true);
        }
        o.end();
        out
    }
}
