//! Support fixes, planned here and only performed by the console and `trickle support`: the one
//! place that decides what a staff member may prove, tell, withdraw or clear for one tenant user.
//!
//! A fix is planned in two steps. Without `checked`, a fix that proves or tells accounts answers
//! `check` with the accounts whose holders the shell must read: what each product stores as the
//! Auth0 id (its look-up by the user's address and identities), and every tenant user whose record
//! names the account (the Management API's user search). With those, it answers `perform` (the
//! record to write and the requests to send), `nothing_to_do`, or `refused` with a stable code.
//!
//! The rules (docs/ownership.md, "What support may prove"):
//! - Support proves one account at a time (`proof: "support"`) and never an account another tenant
//!   user holds: the product's stored id names another user, this record's `linked` or `held` says
//!   so, or another user's record has the account with a proof of its own (its fan-out may be
//!   pending: the product was down at that user's login). Whether an account is held is decided
//!   over every tenant user's record, not this one.
//! - Support never proves a candidate found by an address a provider never vouched for (a Slack
//!   workspace can assert anyone's address): the person proves it by its password or the mailbox.
//! - An account whose holder cannot be read (a product down, the search failed, the account not
//!   listed for the person's address or identities) is not proven or told: nothing changes.
//! - Telling (the fan-out fix) tells only proven accounts, by the same requests as the chain.

use crate::chain::{fanout_requests_for, FanoutRequest, User};
use crate::event::ErrorBody;
use crate::fields::Fields;
use crate::json::{Map, ObjectWriter, Value};
use crate::ownership;
use crate::person::{proof, AccountRef, PersonMeta, ADDRESS_UNVERIFIED};

/// The fixes support can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Tell every proven account not yet acknowledged the Auth0 id.
    Fanout,
    /// Drop the outstanding merge.
    ClearMerge,
    /// Withdraw one account's proof (and tell its product to forget the id).
    Withdraw,
    /// Record a support proof for one unproven account.
    Link,
    /// Force a password reset.
    Reset,
    /// Block the user.
    Block,
    /// Unblock the user.
    Unblock,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "fanout" => Action::Fanout,
            "clear-merge" => Action::ClearMerge,
            "withdraw" => Action::Withdraw,
            "link" => Action::Link,
            "reset" => Action::Reset,
            "block" => Action::Block,
            "unblock" => Action::Unblock,
            _ => return None,
        })
    }
}

/// What a product answered about one account: the Auth0 id it stores (`None`: none), or that it
/// could not say.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// The product lists the account and stores this id (or none).
    Stored(Option<String>),
    /// The product did not answer, or lists the account neither for the person's address nor for
    /// an identity (`why` says which).
    Unknown(String),
}

/// What the shell read about the accounts the plan asked it to check.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// `(product, account, hold)`.
    pub holds: Vec<(String, String, Hold)>,
    /// The tenant users the search returned for those accounts, with their metadata.
    pub holders: Vec<User>,
    /// True when the tenant search could not be made or was cut short.
    pub search_failed: bool,
}

/// Input of [`plan`].
#[derive(Debug, Clone)]
pub struct SupportInput {
    /// The fix.
    pub action: Action,
    /// The tenant user it is for.
    pub user: User,
    /// The account it names (`product:id`), for `link` and `withdraw`.
    pub target: Option<String>,
    /// The configured products (fan-out requests name only these).
    pub products: Vec<String>,
    /// What the shell read, once the plan asked for it.
    pub checked: Option<Checked>,
}

impl SupportInput {
    /// Reads `{action, user, target?, products, checked?: {holds, holders, search_failed}}`.
    pub fn from_value(v: &Value) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, "")?;
        let action = Action::parse(f.str("action")?).ok_or_else(|| {
            ErrorBody::new(
                "support.unknown_fix",
                "action must be one of fanout, clear-merge, withdraw, link, reset, block, unblock",
            )
        })?;
        let user = User::from_value(
            f.any("user")
                .ok_or_else(|| ErrorBody::new("input.missing_field", "user is required"))?,
        )?;
        let checked = match f.any("checked") {
            None | Some(Value::Null) => None,
            Some(c) => Some(Checked::from_value(c)?),
        };
        Ok(SupportInput {
            action,
            user,
            target: f.opt_str("target")?.map(str::to_owned),
            products: f.strings("products")?,
            checked,
        })
    }
}

impl Checked {
    /// Reads `{holds: [{product, account, auth0_user_id? | unavailable? | unlisted?}], holders:
    /// [user], search_failed}`.
    pub fn from_value(c: &Value) -> Result<Self, ErrorBody> {
        {
            {
                let cf = Fields::of(c, "checked")?;
                let mut holds = vec![];
                for h in cf.array("holds")? {
                    let hf = Fields::of(h, "checked.holds[]")?;
                    let hold = match hf.opt_str("unavailable")? {
                        Some(why) => Hold::Unknown(why.to_owned()),
                        None if matches!(hf.any("unlisted"), Some(Value::Bool(true))) => {
                            Hold::Unknown(
                                "not listed for the person's address or identities".into(),
                            )
                        }
                        None => Hold::Stored(hf.opt_str("auth0_user_id")?.map(str::to_owned)),
                    };
                    holds.push((
                        hf.str("product")?.to_owned(),
                        hf.str("account")?.to_owned(),
                        hold,
                    ));
                }
                let mut holders = vec![];
                for u in cf.array("holders")? {
                    holders.push(User::from_value(u)?);
                }
                Ok(Checked {
                    holds,
                    holders,
                    search_failed: matches!(cf.any("search_failed"), Some(Value::Bool(true))),
                })
            }
        }
    }
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum SupportPlan {
    /// Read the holders of these accounts (`product:id`), then plan again with `checked`.
    Check(Vec<String>),
    /// Nothing to change, and why.
    NothingToDo(String),
    /// Refused: a stable code, the reason, and the tenant users who hold the accounts.
    Refused {
        /// The code.
        code: &'static str,
        /// The reason, for the staff member.
        message: String,
        /// The users named as holders (their timeline records the attempt).
        held_by: Vec<String>,
    },
    /// Perform: write the record (when it changed), send the requests, then record their answers
    /// through the chain's `apply`; `migrated_false` un-migrates the user (a withdrawn link).
    Perform {
        /// The record to write.
        trickle: Option<PersonMeta>,
        /// Set `migrated: false`.
        migrated_false: bool,
        /// Requests to the products.
        fanout: Vec<FanoutRequest>,
        /// What the audit row says was done.
        detail: String,
    },
}

impl SupportPlan {
    /// The answer as JSON text: `{"outcome": "check"|"nothing_to_do"|"refused"|"perform", …}`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        let mut o = ObjectWriter::new(&mut out);
        match self {
            SupportPlan::Check(keys) => {
                o.str("outcome", "check");
                crate::json::write_strings(keys, o.key("check"));
            }
            SupportPlan::NothingToDo(why) => {
                o.str("outcome", "nothing_to_do").str("detail", why);
            }
            SupportPlan::Refused {
                code,
                message,
                held_by,
            } => {
                o.str("outcome", "refused")
                    .str("code", code)
                    .str("message", message);
                crate::json::write_strings(held_by, o.key("held_by"));
            }
            SupportPlan::Perform {
                trickle,
                migrated_false,
                fanout,
                detail,
            } => {
                o.str("outcome", "perform");
                let mut set = ObjectWriter::new(o.key("set_app_metadata"));
                if let Some(t) = trickle {
                    t.write_json(set.key("trickle"));
                }
                if *migrated_false {
                    set.bool("migrated", false);
                }
                set.end();
                o.array("fanout", fanout, crate::chain::write_fanout);
                o.str("detail", detail);
            }
        }
        o.end();
        out
    }

    fn refused(code: &'static str, message: impl Into<String>) -> Self {
        SupportPlan::Refused {
            code,
            message: message.into(),
            held_by: vec![],
        }
    }
}

fn key(a: &AccountRef) -> String {
    format!("{}:{}", a.product, a.id)
}

/// The user's record, or `None` when it has none or cannot be read.
fn record(user: &User) -> Option<PersonMeta> {
    match &user.app_metadata {
        Some(Value::Object(m)) => m
            .get("trickle")
            .and_then(|t| PersonMeta::from_value(t).ok()),
        _ => None,
    }
}

/// Who holds `a` other than `user_id`, over every source: the product's stored id, this record's
/// own pointer or withheld holder, and every other tenant user whose record has the account with a
/// proof. `Err` names what could not be read.
fn holders_of(a: &AccountRef, user_id: &str, checked: &Checked) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = vec![];
    let mut add = |who: &str| {
        if who != user_id && !out.iter().any(|o| o == who) {
            out.push(who.to_owned());
        }
    };
    if let Some(l) = a.linked.as_deref() {
        add(l);
    }
    for u in &checked.holders {
        if u.user_id == user_id {
            continue;
        }
        let holds = record(u).is_some_and(|m| {
            m.accounts
                .iter()
                .any(|o| o.product == a.product && o.id == a.id && o.proof.is_some())
        });
        if holds {
            add(&u.user_id);
        }
    }
    match checked
        .holds
        .iter()
        .find(|(p, id, _)| *p == a.product && *id == a.id)
    {
        Some((_, _, Hold::Stored(Some(id)))) => add(id),
        Some((_, _, Hold::Unknown(why))) if out.is_empty() && !a.held => return Err(why.clone()),
        None if out.is_empty() && !a.held => return Err("no answer".into()),
        _ => {}
    }
    if checked.search_failed && out.is_empty() && !a.held {
        return Err("the tenant search for its holders failed".into());
    }
    if a.held && out.is_empty() {
        // Named only when nobody more precise is known.
        out.push("another tenant user (the product held an id the record withholds)".to_owned());
    }
    Ok(out)
}

/// Refuses when any of `accounts` is another user's or cannot be checked.
fn refuse_held(accounts: &[&AccountRef], user_id: &str, checked: &Checked) -> Option<SupportPlan> {
    let mut held = vec![];
    let mut held_by: Vec<String> = vec![];
    let mut unchecked = vec![];
    for a in accounts {
        match holders_of(a, user_id, checked) {
            Ok(list) if list.is_empty() => {}
            Ok(list) => {
                held.push(format!("{} belongs to {}", key(a), list.join(", ")));
                for who in list.into_iter().filter(|w| crate::person::valid_user_id(w)) {
                    if !held_by.contains(&who) {
                        held_by.push(who);
                    }
                }
            }
            Err(why) => unchecked.push(format!("{} ({why})", key(a))),
        }
    }
    if !held.is_empty() {
        return Some(SupportPlan::Refused {
            code: "support.account_held",
            message: format!(
                "{}: look that user up and fix it there (proving or telling it here would join this user into that one)",
                held.join("; ")
            ),
            held_by,
        });
    }
    if !unchecked.is_empty() {
        return Some(SupportPlan::refused(
            "support.account_unchecked",
            format!(
                "nobody can say who holds {}: nothing changed, try again when it answers",
                unchecked.join(", ")
            ),
        ));
    }
    None
}

/// Plans one support fix.
pub fn plan(input: &SupportInput) -> SupportPlan {
    let meta = record(&input.user);
    match input.action {
        Action::Block | Action::Unblock | Action::Reset => SupportPlan::Perform {
            trickle: None,
            migrated_false: false,
            fanout: vec![],
            detail: String::new(),
        },
        Action::ClearMerge => match meta {
            Some(mut m) if m.merge.is_some() => {
                m.merge = None;
                SupportPlan::Perform {
                    trickle: Some(m),
                    migrated_false: false,
                    fanout: vec![],
                    detail: "the next login starts a fresh merge".into(),
                }
            }
            _ => SupportPlan::NothingToDo("no merge in progress".into()),
        },
        Action::Fanout => match meta {
            Some(m) => fanout(input, m),
            None => SupportPlan::NothingToDo("the user has no trickle record".into()),
        },
        Action::Link | Action::Withdraw => {
            // The account the fix names, one of this user's own.
            let named = meta.and_then(|m| {
                let (p, id) = input.target.as_deref()?.split_once(':')?;
                let i = m
                    .accounts
                    .iter()
                    .position(|a| a.product == p && a.id == id)?;
                Some((m, i))
            });
            match named {
                None => SupportPlan::refused(
                    "support.no_such_account",
                    "name one of the person's accounts as product:id",
                ),
                Some((m, i)) if input.action == Action::Link => link(input, m, i),
                Some((m, i)) => withdraw(input, m, i),
            }
        }
    }
}

/// `withdraw`: the account loses its proof, and its product is told to forget the id.
fn withdraw(input: &SupportInput, mut m: PersonMeta, i: usize) -> SupportPlan {
    let Some(a) = m.accounts.get_mut(i) else {
        return SupportPlan::refused("support.no_such_account", "no such account");
    };
    if a.proof.is_none() && !a.fanout {
        return SupportPlan::NothingToDo("the account is not linked".into());
    }
    a.proof = None;
    a.linked = None;
    a.stale = None;
    let (product, id) = (a.product.clone(), a.id.clone());
    let forget: Vec<FanoutRequest> = fanout_requests_for(&m, &input.user.user_id, &input.products)
        .into_iter()
        .filter(|r| r.forget && r.product == product && r.account == id)
        .collect();
    let migrated = matches!(
        &input.user.app_metadata,
        Some(Value::Object(app)) if matches!(app.get("migrated"), Some(Value::Bool(true)))
    );
    SupportPlan::Perform {
        detail: if forget.is_empty() {
            "the proof is withdrawn".into()
        } else {
            "the proof is withdrawn and the product told to forget the id".into()
        },
        trickle: Some(m),
        migrated_false: migrated,
        fanout: forget,
    }
}

/// `link`: a support proof for one candidate nobody else holds, of a user whose address the
/// tenant verified and no provider merely asserted.
fn link(input: &SupportInput, mut m: PersonMeta, i: usize) -> SupportPlan {
    let Some(a) = m.accounts.get(i) else {
        return SupportPlan::refused("support.no_such_account", "no such account");
    };
    if let Some(p) = &a.proof {
        return SupportPlan::NothingToDo(format!("already proven ({p})"));
    }
    let Some(checked) = &input.checked else {
        return SupportPlan::Check(vec![key(a)]);
    };
    // Held first: the refusal then names the user who holds it (whose timeline shows it).
    if let Some(refusal) = refuse_held(&[a], &input.user.user_id, checked) {
        return refusal;
    }
    if !input.user.email_verified || m.address_from.as_deref() == Some(ADDRESS_UNVERIFIED) {
        return SupportPlan::refused(
            "support.address_unverified",
            "the tenant never verified this user's address: anyone could have typed it (a sign-up, an account its product never verified). The person proves the account with its own password, or verifies the address (a password reset) first",
        );
    }
    if let Some(from) = &m.address_from {
        return SupportPlan::refused(
            "support.address_unvouched",
            format!(
                "this user's address came from {from}, which never proves an address: the accounts it found may be a stranger's. The person proves this one with its own password or the mailbox (the merge)"
            ),
        );
    }
    if let Some(a) = m.accounts.get_mut(i) {
        a.proof = Some(proof::SUPPORT.to_owned());
    }
    SupportPlan::Perform {
        trickle: Some(m),
        migrated_false: false,
        fanout: vec![],
        detail: "support proof recorded; the next login tells the product".into(),
    }
}

/// `fanout`: tells every proven account not yet acknowledged, when nobody else holds any.
fn fanout(input: &SupportInput, m: PersonMeta) -> SupportPlan {
    let user_id = input.user.user_id.as_str();
    let due: Vec<&AccountRef> = m
        .accounts
        .iter()
        .filter(|a| ownership::may_learn_auth0_id(a) && !a.fanout)
        .collect();
    if due.is_empty() {
        return SupportPlan::NothingToDo("every proven account already acknowledged the id".into());
    }
    let Some(checked) = &input.checked else {
        return SupportPlan::Check(due.iter().map(|a| key(a)).collect());
    };
    // A PUT would overwrite another user's id in the product: nothing is told while one is held.
    if let Some(refusal) = refuse_held(&due, user_id, checked) {
        return refusal;
    }
    let fanout: Vec<FanoutRequest> = fanout_requests_for(&m, user_id, &input.products)
        .into_iter()
        .filter(|r| !r.forget)
        .collect();
    SupportPlan::Perform {
        trickle: None,
        migrated_false: false,
        detail: format!("telling {} account(s)", fanout.len()),
        fanout,
    }
}

/// `support_plan`'s answer for a JSON input.
pub fn plan_from_value(v: &Value) -> Result<String, ErrorBody> {
    Ok(plan(&SupportInput::from_value(v)?).to_json())
}

/// Who holds each of the user's accounts other than the user, as far as `checked` says, for the
/// console's page: `{"product:id": "holder, …"}` (accounts nobody else holds, or whose holder
/// cannot be read, are left out).
pub fn held_by(meta: &PersonMeta, user_id: &str, checked: &Checked) -> Map {
    let mut out = Map::new();
    for a in &meta.accounts {
        if let Ok(list) = holders_of(a, user_id, checked) {
            if !list.is_empty() {
                out.insert(key(a), list.join(", "));
            }
        }
    }
    out
}

/// Where each candidate's address came from, for the console: `{"product:id": "…"}`.
pub fn provenance(meta: &PersonMeta) -> Map {
    let mut out = Map::new();
    for a in &meta.accounts {
        let from = match (&a.proof, &meta.address_from) {
            (Some(p), _) => format!("proven ({p})"),
            (None, Some(from)) if from == ADDRESS_UNVERIFIED => {
                "found by an address the tenant never verified".to_owned()
            }
            (None, Some(provider)) => {
                format!("found by an address {provider} asserted, never proven by it")
            }
            (None, None) => "found by the person's address".to_owned(),
        };
        out.insert(key(a), from.as_str());
    }
    out
}
