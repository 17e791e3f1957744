//! Telling the products: which accounts learn (or forget) the person's Auth0 id, and what their
//! answers record.

use super::*;

/// The requests telling `meta`'s proven accounts `user_id` (and the withdrawn ones to forget it),
/// for the configured `products`: the one rule of what is told, for the chain and support alike.
#[cfg(feature = "tools")]
pub(crate) fn fanout_requests_for(
    meta: &PersonMeta,
    user_id: &str,
    products: &[String],
) -> Vec<FanoutRequest> {
    fanout_requests(meta, user_id, &Config::fanout_only(products), &mut vec![])
}

pub(super) fn fanout_requests(
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

/// [`apply`]'s answer when every request of `plan` is acknowledged: the same records on the
/// record as the plan leaves it (no look-up runs, so nothing else changes).
pub(super) fn all_acknowledged(meta: &PersonMeta, plan: &Plan) -> Applied {
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

/// Records the products' answers to fan-out requests in the record.
/// Returns true when a product answered that another user holds a proven account (to join).
pub(super) fn acknowledge(
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
