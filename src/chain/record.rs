//! The person's record at a login: read (or repaired from the products: candidates only), the
//! links a proven mailbox withdraws, and the candidates a changed address drops.

use super::*;

/// The user's `app_metadata` object, borrowed (copying it is most of a warm decision's work).
pub(super) fn app_meta(user: &User) -> std::borrow::Cow<'_, Map> {
    match &user.app_metadata {
        Some(Value::Object(m)) => std::borrow::Cow::Borrowed(m),
        _ => std::borrow::Cow::Owned(Map::new()),
    }
}

/// Reads `app_metadata.trickle`; `None` when absent or unreadable (the repair path).
pub(super) fn read_meta(app: &Map, events: &mut Vec<Event>) -> Option<PersonMeta> {
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
pub(super) fn unique_products<'a>(
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
/// A repaired record keeps the address its candidates were found by and, when the tenant never
/// verified it (a sign-up, or a user made through an unverified account), that its word is
/// nobody's: support may not prove those candidates, and a support proof there yields to the
/// account's own proofs.
pub(super) fn meta_or_repair(
    app: &Map,
    user: &User,
    pending: &[String],
    events: &mut Vec<Event>,
) -> (PersonMeta, bool) {
    if let Some(m) = read_meta(app, events) {
        return (m, false);
    }
    events.push(Event::new("metadata_repair"));
    let user_id = user.user_id.as_str();
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
            address: user.canonical_email(),
            address_from: (!user.email_verified)
                .then(|| crate::person::ADDRESS_UNVERIFIED.to_owned()),
            ..PersonMeta::default()
        },
        true,
    )
}

/// The record as a login finds it, with what the plan needs to know about the user.
pub(super) struct Record {
    /// The record, as the plan changes it.
    pub meta: PersonMeta,
    /// What it was, to write it back only when it changed (compared as a struct: its JSON form
    /// is one-to-one with it); `None` in repair, where nothing is written before the products
    /// answered.
    pub original: Option<PersonMeta>,
    /// The record was missing or unreadable.
    pub repair: bool,
    /// `app_metadata.bulkImported`.
    pub bulk: bool,
    /// `app_metadata.migrated` as the login found it.
    pub migrated_before: bool,
    /// `migrated` as the plan leaves it.
    pub migrated: bool,
}

/// Opens the record of this login's user: read or repaired, then the mailbox's withdrawals and
/// the address's candidates applied.
pub(super) fn open(input: &PlanInput, app: &Map, events: &mut Vec<Event>) -> Record {
    let (mut meta, repair) = meta_or_repair(app, &input.user, &input.config.products, events);
    let original = (!repair).then(|| meta.clone());
    let migrated_before = matches!(app.get("migrated"), Some(Value::Bool(true)));
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
        let current = input.user.canonical_email();
        if current.as_deref() != Some(addr.as_str()) {
            let before = meta.accounts.len();
            meta.accounts.retain(|a| a.proof.is_some());
            meta.merge = None;
            // Whose word the new address is: the provider's when it does not vouch for it, or
            // nobody's when the tenant never verified it.
            meta.address_from = match gate::social_login(input) {
                Some(id) => current
                    .as_deref()
                    .is_none_or(|e| {
                        !ownership::provider_vouches(
                            &id.provider,
                            e,
                            input.user.email_verified,
                            id.hd.as_deref(),
                        )
                    })
                    .then(|| id.provider.clone()),
                None => (!input.user.email_verified)
                    .then(|| crate::person::ADDRESS_UNVERIFIED.to_owned()),
            };
            meta.address = current;
            events.push(Event::new("address_changed").detail(format!(
                "{} candidate(s) dropped",
                before - meta.accounts.len()
            )));
        }
    }
    Record {
        meta,
        original,
        repair,
        bulk: matches!(app.get("bulkImported"), Some(Value::Bool(true))),
        migrated_before,
        migrated: migrated_before,
    }
}
