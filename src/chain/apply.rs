//! Recording what the products answered: fan-out acknowledgements, accounts a pending look-up
//! found (candidates), and a first social login's record from its identity and address.

use super::*;

/// Records fan-out acknowledgements and the accounts found by pending look-ups.
// Called from several steps of the machine: one copy (inlining it everywhere costs kilobytes
// of the Action's 100 000 bytes).
#[inline(never)]
pub fn apply(input: &ApplyInput) -> Applied {
    if let Some(d) = &input.discover {
        return discovered(input, d);
    }
    let mut events = vec![];
    let app = app_meta(&input.user);
    let user_id = input.user.user_id.as_str();
    // In repair, every product being looked up again is pending until it answers.
    let looked_up: Vec<String> = input.lookups.iter().map(|l| l.name.clone()).collect();
    let (mut meta, repair) = meta_or_repair(&app, &input.user, &looked_up, &mut events);
    // What the record was, to write it back only when it changed (compared as a struct: its
    // JSON form is one-to-one with it, and building that twice per login is most of the work).
    let original = (!repair).then(|| meta.clone());
    let held_by_other = acknowledge(&mut meta, user_id, &input.fanout, &mut events);
    let email = input.user.canonical_email();
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
#[inline(never)]
fn discovered(input: &ApplyInput, d: &Discover) -> Applied {
    let mut events = vec![];
    let app = app_meta(&input.user);
    if app.contains_key("trickle") {
        return Applied::nothing(vec![Event::new("social_already_resolved")]);
    }
    let email = input.user.canonical_email();
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
    // Every product answered (a failed one returned above): nothing is pending.
    let mut meta = PersonMeta {
        v: PersonMeta::VERSION,
        person_id,
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
