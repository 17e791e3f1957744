//! Joining this login's user to the tenant user that proved one of its accounts first (Auth0
//! account linking), only when that user's own record holds the account with a proof the
//! newcomer's does not outrank.

use super::*;

/// Decides whether this login's user joins the existing user the plan named, and the primary's
/// record afterwards: only when the primary's own record holds, with a proof, an account this
/// user proved (a pointer a product returned is never enough). The primary keeps its person id;
/// this user's accounts join it, and the accounts it proved learn the primary's id.
#[inline(never)]
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
    // A newcomer whose only claim on the shared accounts is a staff member's word yields to a
    // holder who proved them: its support proofs are withdrawn (the account becomes a candidate
    // held by someone), nothing is joined and nothing replaces the holder's id.
    let yielded: Vec<(String, String)> = proven
        .iter()
        .filter(|s| {
            merged.accounts.iter().any(|p| {
                p.product == s.product
                    && p.id == s.id
                    && p.proof.as_deref().is_some_and(|held| {
                        ownership::yields(s.proof.as_deref().unwrap_or(""), held)
                    })
            })
        })
        .map(|s| (s.product.clone(), s.id.clone()))
        .collect();
    if !yielded.is_empty() && !ownership::may_link(&merged, &proven) {
        for a in secondary
            .accounts
            .iter_mut()
            .filter(|a| yielded.iter().any(|(p, id)| *p == a.product && *id == a.id))
        {
            a.proof = None;
            a.linked = None;
            a.stale = None;
            a.held = true;
            events.push(
                Event::new("support_proof_withdrawn")
                    .product(&a.product)
                    .account(&a.id)
                    .code("ownership.outranked"),
            );
        }
        let mut refused = Linked::refused("link.outranked");
        refused.events.extend(events);
        refused
            .set_secondary
            .insert("trickle", secondary.to_value());
        return refused;
    }
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
