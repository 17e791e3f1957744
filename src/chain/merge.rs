//! The merge round trip: sending a person with candidates their mailbox can prove to the merge
//! service with a bound, single-use session token, and reading the token it sends back.

use super::record::Record;
use super::*;

/// Whether `key` (`product:id`, as a merge records what it showed) names the account.
pub(super) fn account_key_is(key: &str, a: &crate::person::AccountRef) -> bool {
    key.split_once(':')
        .is_some_and(|(p, id)| p == a.product && id == a.id)
}

fn valid_jti(j: &str) -> bool {
    (16..=128).contains(&j.len())
        && j.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `Continue`: reads the merge service's token. A merge proves the accounts its page showed whose
/// product verified the address; `Err` is the plan denying the login (a token refused).
pub(super) fn resume(
    input: &PlanInput,
    rec: &mut Record,
    events: &mut Vec<Event>,
) -> Result<(), Box<Plan>> {
    let user_id = input.user.user_id.as_str();
    let meta = &mut rec.meta;
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
    // The jti is single-use: it is spent whatever the token turns out to be, and with it the
    // list of what its page showed.
    let mut shown = vec![];
    if let Some(m) = meta.merge.as_mut() {
        m.jti = None;
        shown = std::mem::take(&mut m.shown);
    }
    let refused = |meta: &PersonMeta,
                   original: &Option<PersonMeta>,
                   error: ErrorBody,
                   events: &mut Vec<Event>| {
        let mut p = Plan::deny(error, std::mem::take(events));
        if original.as_ref() != Some(meta) {
            p.set_app_metadata.trickle = Some(meta.clone());
        }
        p
    };
    let claims = match token::verify(token_text, &want) {
        Ok(c) => c,
        Err(e) => {
            events.push(Event::new("merge_token_refused").code(e.code()));
            let error = ErrorBody::new(
                e.code(),
                format!(
                    "Account merge could not be confirmed: {}. Please sign in again.",
                    e.message()
                ),
            );
            return Err(Box::new(refused(meta, &rec.original, error, events)));
        }
    };
    // Accounts the merge service proved by their own legacy password (verified by the core
    // there): only those this login's page offered, and only while still unproven and unverified.
    let outcome = claims.get("outcome").and_then(Value::as_str);
    if matches!(outcome, Some("merged" | "skipped")) {
        let by_password: Vec<&str> = claims
            .get("passwords")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for a in meta.accounts.iter_mut().filter(|a| {
            ownership::password_wanted(a)
                && shown.iter().any(|k| account_key_is(k, a))
                && by_password.iter().any(|k| account_key_is(k, a))
        }) {
            a.proof = Some(proof::PASSWORD.to_owned());
            events.push(Event::new("merge_password_proven").product(&a.product));
        }
    }
    match outcome {
        Some("merged") => {
            // The merge proved the mailbox: that covers the accounts the page showed (named when
            // the person was sent) whose product verified the address, and no others. An account
            // found since is shown at the next merge: the person is not migrated while one waits.
            for a in meta.accounts.iter_mut().filter(|a| {
                ownership::merge_proves(a) && shown.iter().any(|k| account_key_is(k, a))
            }) {
                a.proof = Some(proof::MERGE.to_owned());
            }
            rec.migrated = !meta.accounts.iter().any(ownership::merge_wanted);
            events.push(Event::new("merge_completed"));
            Ok(())
        }
        Some("skipped") => {
            events.push(Event::new("merge_skipped"));
            Ok(())
        }
        _ => {
            events.push(Event::new("merge_token_refused").code("token.outcome"));
            let error = ErrorBody::new(
                "token.outcome",
                "Account merge returned no valid outcome. Please sign in again.",
            );
            // Written even unchanged: the jti it spent must never verify again.
            let mut p = Plan::deny(error, std::mem::take(events));
            p.set_app_metadata.trickle = Some(meta.clone());
            Err(Box::new(p))
        }
    }
}

/// The accounts (`product:id`) this login's merge page may prove by their own password: those
/// `ownership::password_wanted`, while the person has been sent fewer than
/// `ownership::PASSWORD_OFFERS` times.
pub(super) fn password_offer(meta: &PersonMeta) -> Vec<String> {
    if meta.merge.as_ref().map_or(0, |m| m.attempts) >= ownership::PASSWORD_OFFERS {
        return vec![];
    }
    meta.accounts
        .iter()
        .filter(|a| ownership::password_wanted(a))
        .map(|a| format!("{}:{}", a.product, a.id))
        .collect()
}

/// `Execute`: sends a person whose candidates their mailbox can prove to the merge service (a
/// session token bound to the user, the login's state and a fresh jti), unless migrated or the
/// transaction cannot redirect. `Err` is the plan letting the login through unchanged (no usable
/// jti was supplied).
pub(super) fn send(
    input: &PlanInput,
    rec: &mut Record,
    events: &mut Vec<Event>,
) -> Result<Option<Redirect>, Box<Plan>> {
    let user_id = input.user.user_id.as_str();
    let meta = &mut rec.meta;
    let unproven = unique_products(meta.accounts.iter().filter(|a| ownership::merge_wanted(a)));
    let passwords = password_offer(meta);
    if unproven.is_empty() && passwords.is_empty() {
        if !rec.repair {
            rec.migrated = true;
        }
        return Ok(None);
    }
    if rec.migrated {
        return Ok(None);
    }
    if !input.transaction.can_redirect {
        events.push(Event::new("merge_deferred").detail("transaction cannot redirect"));
        return Ok(None);
    }
    let Some(jti) = input.jti.as_deref().filter(|j| valid_jti(j)) else {
        events.push(
            Event::new("chain_misconfigured")
                .code("input.jti")
                .detail("no usable random jti was supplied"),
        );
        return Err(Box::new(Plan::pass(std::mem::take(events))));
    };
    let products = unique_products(meta.accounts.iter());
    let mut extra = Map::new();
    extra.insert("email", input.user.email.clone());
    extra.insert("products", products);
    extra.insert("unproven", unproven);
    if !passwords.is_empty() {
        extra.insert(
            "passwords",
            passwords
                .iter()
                .map(|k| Value::String(k.clone()))
                .collect::<Vec<_>>(),
        );
    }
    let claims = token::claims(
        token::ISS_TRICKLE,
        token::AUD_MERGE,
        user_id,
        jti,
        input.now,
        SESSION_TOKEN_TTL,
        extra,
    );
    let t = match token::sign(&claims, input.config.token_secret.as_bytes()) {
        Ok(t) => t,
        Err(e) => {
            events.push(Event::new("chain_misconfigured").code(e.code()));
            return Ok(None);
        }
    };
    let mut shown: Vec<String> = meta
        .accounts
        .iter()
        .filter(|a| ownership::merge_wanted(a))
        .map(|a| format!("{}:{}", a.product, a.id))
        .collect();
    shown.extend(passwords);
    let m = meta.merge.get_or_insert_with(Default::default);
    m.attempts = m.attempts.saturating_add(1);
    m.shown = shown;
    m.jti = Some(jti.to_owned());
    m.issued_at = Some(input.now);
    events.push(Event::new("merge_redirect").detail(format!("attempt {}", m.attempts)));
    let mut query = Map::new();
    query.insert("session_token", Value::String(t));
    Ok(Some(Redirect {
        url: input.config.merge_url.clone(),
        query,
    }))
}
