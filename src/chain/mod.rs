//! The post-login chain, one file per phase:
//!
//! - [`gate`]: whether the chain resolves this login at all, and a first social login's discovery;
//! - [`record`]: the person's record (read, or repaired as candidates only), the links a proven
//!   mailbox withdraws, the candidates a changed address drops;
//! - [`merge`]: the redirect to the merge service and the token it sends back;
//! - [`fanout`]: which accounts are told (or told to forget) the Auth0 id, and their answers;
//! - [`apply`]: what the products answered (acknowledgements, candidates found, discoveries);
//! - [`link`]: joining the tenant user that proved an account first;
//! - [`step`]: the login as a step machine over all of them: the one export the shell drives;
//! - [`wire`]: the types the shell and the core exchange.
//!
//! [`plan`] is the driver of one decision; [`step`] runs a whole login on it, asking the shell to
//! perform one batch of effects at a time.

mod apply;
mod fanout;
mod gate;
mod link;
mod merge;
mod record;
mod step;
mod wire;

pub use apply::apply;
#[cfg(feature = "tools")]
pub(crate) use fanout::fanout_requests_for;
pub use link::link;
pub use step::{step, Ask, Effect, LinkLog, StepAnswer, StepInput};
pub(crate) use wire::write_fanout;
pub use wire::*;

use crate::event::{write_events, ErrorBody, Event};
use crate::fields::Fields;
use crate::json::{self, Map, ObjectWriter, Value};
use crate::ownership;
use crate::person::{proof, Account, PersonMeta};
use crate::token;
use fanout::{acknowledge, all_acknowledged, fanout_requests};
use record::{app_meta, meta_or_repair, read_meta, unique_products};

/// Session tokens sent to the merge service live this long (seconds).
pub const SESSION_TOKEN_TTL: i64 = 900;

/// Decides one phase of one login: the gate, the record, the merge, then what is told and
/// whether this user joins another.
#[inline(never)]
pub fn plan(input: &PlanInput) -> Plan {
    let mut events = vec![];
    let app = app_meta(&input.user);
    if let Some(p) = gate::gate(input, &app, &mut events) {
        return p;
    }
    let mut rec = record::open(input, &app, &mut events);
    let user_id = input.user.user_id.as_str();
    // A person with candidates their own mailbox can prove is sent to the merge first, and joins
    // after it (Continue): joining first would leave those candidates behind for good.
    // (A candidate some user was told already is not waited for: the one named is the person's
    // other user, which the join brings in, or a third user's, which stays out either way.)
    let wants_merge = !rec.migrated_before
        && input.transaction.can_redirect
        && (rec
            .meta
            .accounts
            .iter()
            .any(|a| ownership::merge_wanted(a) && !a.held)
            || !merge::password_offer(&rec.meta).is_empty());
    let link_first = input.phase == Phase::Execute
        && !rec.bulk
        && !wants_merge
        && ownership::link_target(&rec.meta.accounts, user_id).is_some();
    let mut outcome = Outcome::Continue;
    match input.phase {
        Phase::Execute if link_first => {}
        Phase::Continue => {
            if let Err(p) = merge::resume(input, &mut rec, &mut events) {
                return *p;
            }
        }
        // A bulk-imported user owns what the import proved; only accounts their mailbox could
        // still prove (a person with several accounts, imported with one account's hash) take
        // them to the merge, as after a lazy login.
        Phase::Execute if rec.bulk && !wants_merge => events.push(Event::new("bulk_imported_skip")),
        Phase::Execute => match merge::send(input, &mut rec, &mut events) {
            Err(p) => return *p,
            Ok(Some(r)) => outcome = Outcome::Redirect(r),
            Ok(None) => {}
        },
    }
    finish(input, rec, outcome, events)
}

/// The rest of a plan once the merge is decided: whom this user joins, what is told, what is
/// looked up again, and what is written.
fn finish(input: &PlanInput, rec: Record, outcome: Outcome, mut events: Vec<Event>) -> Plan {
    let user_id = input.user.user_id.as_str();
    let Record {
        meta,
        original,
        repair,
        migrated_before,
        migrated,
        ..
    } = rec;
    let mut plan = Plan::pass(vec![]);
    let going_on = outcome == Outcome::Continue;
    plan.outcome = outcome;
    if going_on {
        if let Some(target) = ownership::link_target(&meta.accounts, user_id) {
            // Another tenant user proved one of this user's proven accounts first: this user
            // joins it (that user's own record is checked by [`link`]).
            events.push(Event::new("link_wanted"));
            plan.link = Some(target.to_owned());
        }
    }
    // The proven accounts learn the id at every login that goes through, merged or not: a person
    // who skips the merge still has them joined to this user, so a later sign-in that proves one
    // of them (a social identity, say) joins this user instead of becoming a second one.
    if going_on && plan.link.is_none() {
        plan.fanout = fanout_requests(&meta, user_id, &input.config, &mut events);
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

use record::Record;
