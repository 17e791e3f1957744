//! The gate: whether the chain resolves this login at all (its connection, a configured social
//! connection, settings it can work with), and a first social login's discovery.

use super::*;

/// The identity of a login of one of the configured social connections, if it is one.
pub(super) fn social_login(input: &PlanInput) -> Option<&SocialIdentity> {
    let conn = input.transaction.connection.as_ref()?;
    let id = input.identity.as_ref()?;
    (input.config.connection.as_ref() != Some(conn)
        && input.config.social.contains(conn)
        && &id.provider == conn
        && !id.subject.is_empty())
    .then_some(id)
}

/// Validates the configuration and user; returns an error body for the log when unusable.
pub(super) fn check(input: &PlanInput) -> Result<(), ErrorBody> {
    if input.config.products.is_empty() {
        return Err(ErrorBody::new(
            "config.products",
            "TRICKLE_PRODUCTS names no product",
        ));
    }
    if input.config.products.iter().any(|p| p.contains(':')) {
        // `product:id` names an account in the record (a merge's `shown`): one way only.
        return Err(ErrorBody::new(
            "config.products",
            "a product name in TRICKLE_PRODUCTS may not contain ':'",
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

/// The plan of a login the chain does not resolve (misconfigured, another connection, a social
/// user without a record), or of a first social login (look the identity and address up);
/// `None` when the chain resolves the login.
pub(super) fn gate(input: &PlanInput, app: &Map, events: &mut Vec<Event>) -> Option<Plan> {
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
        return Some(Plan::pass(std::mem::take(events)));
    }
    let social = social_login(input);
    if social.is_none() && input.config.connection != input.transaction.connection {
        return Some(Plan::pass(vec![Event::new("chain_other_connection")]));
    }
    let id = social?;
    if app.contains_key("trickle") {
        // Never repaired from the products as a database user would be: a social user's
        // record is only ever made from its identity.
        return read_meta(app, events)
            .is_none()
            .then(|| Plan::pass(std::mem::take(events)));
    }
    if input.phase == Phase::Continue {
        return Some(Plan::pass(vec![Event::new("social_no_record")]));
    }
    // A first social login: the products are asked for the identity and the address.
    let vouched = input.user.canonical_email().is_some_and(|e| {
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
    Some(p)
}
