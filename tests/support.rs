//! Support fixes planned by the core (issue 19, findings 2 and 3): what support may prove, tell,
//! withdraw or clear, decided over every tenant user's record.
#![cfg(feature = "tools")]

use trickle::json::{self, Map, Value};
use trickle::support::{self, SupportInput};

const ME: &str = "google-oauth2|attacker";
const VICTIM: &str = "auth0|tp_victim";
const PRODUCTS: [&str; 2] = ["paste", "collect"];

fn j(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| unreachable!("{text}: {e:?}"))
}

fn user(id: &str, record: &str, extra: &str) -> Value {
    j(&format!(
        r#"{{"user_id":"{id}","email":"v@x.com","email_verified":true,"app_metadata":{{"trickle":{{"v":1,"person_id":"tp_1","accounts":{record}{extra}}}}}}}"#
    ))
}

fn plan(action: &str, me: Value, target: Option<&str>, checked: Option<Value>) -> Value {
    let input = Map::new()
        .with("action", action)
        .with("user", me)
        .with("target", target)
        .with("products", PRODUCTS.to_vec())
        .with("checked", checked);
    let text = support::plan(
        &SupportInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    )
    .to_json();
    j(&text)
}

fn outcome(v: &Value) -> (&str, &str) {
    (
        v.get("outcome").and_then(Value::as_str).unwrap_or(""),
        v.get("code").and_then(Value::as_str).unwrap_or(""),
    )
}

fn checked(holds: &str, holders: Vec<Value>, search_failed: bool) -> Value {
    Map::new()
        .with("holds", j(holds))
        .with("holders", holders)
        .with("search_failed", search_failed)
        .into()
}

const CANDIDATE: &str = r#"[{"product":"paste","id":"p1","verified":true}]"#;
const NOBODY: &str = r#"[{"product":"paste","account":"p1","auth0_user_id":null}]"#;

#[test]
fn a_link_first_asks_who_holds_the_account_then_records_a_support_proof() {
    let me = user(ME, CANDIDATE, "");
    let out = plan("link", me.clone(), Some("paste:p1"), None);
    assert_eq!(outcome(&out), ("check", ""));
    assert_eq!(out.get("check"), Some(&j(r#"["paste:p1"]"#)));
    let out = plan(
        "link",
        me,
        Some("paste:p1"),
        Some(checked(NOBODY, vec![], false)),
    );
    assert_eq!(outcome(&out), ("perform", ""), "{}", out.to_json());
    let rec = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    assert!(
        rec.to_json().contains(r#""proof":"support""#),
        "{}",
        rec.to_json()
    );
    assert_eq!(
        out.get("fanout"),
        Some(&j("[]")),
        "told at the next login, by the chain"
    );
}

#[test]
fn support_never_proves_an_account_another_users_record_holds_even_with_its_fanout_pending() {
    // Finding 3: the victim proved paste:p1, but the product was down at the victim's login, so
    // the product stores no id. Only the victim's record says so.
    let victim = user(
        VICTIM,
        r#"[{"product":"paste","id":"p1","proof":"password","verified":true}]"#,
        "",
    );
    let me = user(ME, CANDIDATE, "");
    let out = plan(
        "link",
        me.clone(),
        Some("paste:p1"),
        Some(checked(NOBODY, vec![victim.clone()], false)),
    );
    assert_eq!(
        outcome(&out),
        ("refused", "support.account_held"),
        "{}",
        out.to_json()
    );
    assert_eq!(out.get("held_by"), Some(&j(&format!(r#"["{VICTIM}"]"#))));
    // A user whose record has it only as a candidate holds nothing.
    let stranger = user("auth0|other", CANDIDATE, "");
    let out = plan(
        "link",
        me.clone(),
        Some("paste:p1"),
        Some(checked(NOBODY, vec![stranger], false)),
    );
    assert_eq!(outcome(&out), ("perform", ""));
    // Another account of the victim's is no reason to refuse this one.
    let elsewhere = user(
        VICTIM,
        r#"[{"product":"paste","id":"p2","proof":"password"},{"product":"collect","id":"p1","proof":"password"}]"#,
        "",
    );
    let out = plan(
        "link",
        me,
        Some("paste:p1"),
        Some(checked(NOBODY, vec![elsewhere], false)),
    );
    assert_eq!(outcome(&out), ("perform", ""));
}

#[test]
fn support_never_proves_an_account_the_product_or_this_record_says_is_anothers() {
    let me = user(ME, CANDIDATE, "");
    let stored = format!(r#"[{{"product":"paste","account":"p1","auth0_user_id":"{VICTIM}"}}]"#);
    let out = plan(
        "link",
        me,
        Some("paste:p1"),
        Some(checked(&stored, vec![], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.account_held"));
    assert_eq!(out.get("held_by"), Some(&j(&format!(r#"["{VICTIM}"]"#))));
    // Its own id stored there is no refusal.
    let mine = format!(r#"[{{"product":"paste","account":"p1","auth0_user_id":"{ME}"}}]"#);
    let out = plan(
        "link",
        user(ME, CANDIDATE, ""),
        Some("paste:p1"),
        Some(checked(&mine, vec![], false)),
    );
    assert_eq!(outcome(&out), ("perform", ""));
    let held = user(
        ME,
        r#"[{"product":"paste","id":"p1","verified":true,"held":true}]"#,
        "",
    );
    let out = plan(
        "link",
        held.clone(),
        Some("paste:p1"),
        Some(checked(NOBODY, vec![], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.account_held"));
    assert_eq!(
        out.get("held_by"),
        Some(&j("[]")),
        "the withheld holder is not named"
    );
    // Held by the record's word even while the product cannot be asked or the search failed.
    let down = r#"[{"product":"paste","account":"p1","unavailable":"503"}]"#;
    for (holds, failed) in [(down, false), (NOBODY, true), ("[]", false)] {
        let out = plan(
            "link",
            held.clone(),
            Some("paste:p1"),
            Some(checked(holds, vec![], failed)),
        );
        assert_eq!(
            outcome(&out),
            ("refused", "support.account_held"),
            "{holds}"
        );
    }
    // A holder the product names is named rather than the withheld "someone".
    let held_and_stored =
        format!(r#"[{{"product":"paste","account":"p1","auth0_user_id":"{VICTIM}"}}]"#);
    let out = plan(
        "link",
        held,
        Some("paste:p1"),
        Some(checked(&held_and_stored, vec![], false)),
    );
    assert!(
        !out.to_json().contains("another tenant user"),
        "{}",
        out.to_json()
    );
}

#[test]
fn an_account_whose_holders_cannot_be_read_is_not_proven() {
    let me = || user(ME, CANDIDATE, "");
    for (holds, failed) in [
        (
            r#"[{"product":"paste","account":"p1","unavailable":"503"}]"#,
            false,
        ),
        (
            r#"[{"product":"paste","account":"p1","unlisted":true}]"#,
            false,
        ),
        ("[]", false),
        (NOBODY, true),
    ] {
        let out = plan(
            "link",
            me(),
            Some("paste:p1"),
            Some(checked(holds, vec![], failed)),
        );
        assert_eq!(
            outcome(&out),
            ("refused", "support.account_unchecked"),
            "{holds} {failed}"
        );
    }
}

#[test]
fn support_never_proves_a_candidate_a_workspace_asserted() {
    // Finding 2: the address came from Slack, which never vouches for an address.
    let me = user(
        ME,
        CANDIDATE,
        r#","address":"v@x.com","address_from":"sign-in-with-slack""#,
    );
    let out = plan(
        "link",
        me.clone(),
        Some("paste:p1"),
        Some(checked(NOBODY, vec![], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.address_unvouched"));
    assert!(out.to_json().contains("sign-in-with-slack"));
    let rec = trickle::person::PersonMeta::from_value(
        me.get("app_metadata")
            .and_then(|m| m.get("trickle"))
            .unwrap_or(&Value::Null),
    )
    .unwrap_or_else(|e| unreachable!("{e:?}"));
    let shown = support::provenance(&rec);
    assert!(Value::from(shown)
        .to_json()
        .contains("sign-in-with-slack asserted"));
}

#[test]
fn the_named_account_must_be_the_users() {
    for (action, target) in [
        ("link", Some("paste:p9")),
        ("withdraw", None),
        ("link", Some("nonsense")),
    ] {
        let out = plan(action, user(ME, CANDIDATE, ""), target, None);
        assert_eq!(outcome(&out), ("refused", "support.no_such_account"));
    }
    let proven = user(
        ME,
        r#"[{"product":"paste","id":"p1","proof":"password"}]"#,
        "",
    );
    assert_eq!(
        outcome(&plan("link", proven, Some("paste:p1"), None)).0,
        "nothing_to_do"
    );
}

#[test]
fn the_fanout_tells_only_proven_unacknowledged_accounts_nobody_else_holds() {
    let me = user(
        ME,
        r#"[{"product":"paste","id":"p1","proof":"password"},{"product":"collect","id":"c1","proof":"merge","fanout":true},
            {"product":"collect","id":"c2"},{"product":"collect","id":"c3","proof":"identity","stale":"auth0|gone"}]"#,
        "",
    );
    let out = plan("fanout", me.clone(), None, None);
    assert_eq!(out.get("check"), Some(&j(r#"["paste:p1","collect:c3"]"#)));
    let holds = r#"[{"product":"paste","account":"p1","auth0_user_id":null},{"product":"collect","account":"c3","auth0_user_id":null}]"#;
    let out = plan(
        "fanout",
        me.clone(),
        None,
        Some(checked(holds, vec![], false)),
    );
    assert_eq!(outcome(&out), ("perform", ""));
    assert_eq!(
        out.get("fanout"),
        Some(&j(&format!(
            r#"[{{"product":"paste","account":"p1","auth0_user_id":"{ME}"}},{{"product":"collect","account":"c3","auth0_user_id":"{ME}","replace":"auth0|gone"}}]"#
        )))
    );
    let victim = user(
        VICTIM,
        r#"[{"product":"collect","id":"c3","proof":"password"}]"#,
        "",
    );
    let out = plan(
        "fanout",
        me,
        None,
        Some(checked(holds, vec![victim], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.account_held"));
    let done = user(
        ME,
        r#"[{"product":"paste","id":"p1","proof":"password","fanout":true},{"product":"collect","id":"c2"}]"#,
        "",
    );
    assert_eq!(
        outcome(&plan("fanout", done, None, None)).0,
        "nothing_to_do"
    );
}

#[test]
fn a_withdrawal_drops_the_proof_and_tells_the_product_to_forget() {
    let me = j(&format!(
        r#"{{"user_id":"{ME}","email_verified":true,"app_metadata":{{"migrated":true,"trickle":{{"v":1,"person_id":"tp_1",
            "accounts":[{{"product":"paste","id":"p1","proof":"support","fanout":true}},{{"product":"collect","id":"c1","proof":"password"}}]}}}}}}"#
    ));
    let out = plan("withdraw", me, Some("paste:p1"), None);
    assert_eq!(outcome(&out), ("perform", ""));
    assert_eq!(
        out.get("fanout"),
        Some(&j(&format!(
            r#"[{{"product":"paste","account":"p1","auth0_user_id":"{ME}","forget":true}}]"#
        )))
    );
    let set = out.get("set_app_metadata").cloned().unwrap_or_default();
    assert_eq!(set.get("migrated"), Some(&Value::Bool(false)));
    assert_eq!(
        set.get("trickle").and_then(|t| t.get("accounts")),
        Some(&j(
            r#"[{"product":"paste","id":"p1","fanout":true},{"product":"collect","id":"c1","proof":"password"}]"#
        ))
    );
    let never = user(ME, CANDIDATE, "");
    assert_eq!(
        outcome(&plan("withdraw", never, Some("paste:p1"), None)).0,
        "nothing_to_do"
    );
}

#[test]
fn clearing_a_merge_and_the_fixes_that_decide_no_ownership() {
    let stuck = user(ME, CANDIDATE, r#","merge":{"attempts":3,"jti":"j"}"#);
    let out = plan("clear-merge", stuck, None, None);
    assert_eq!(outcome(&out), ("perform", ""));
    assert!(!out.to_json().contains("merge\":{"), "{}", out.to_json());
    assert_eq!(
        outcome(&plan("clear-merge", user(ME, CANDIDATE, ""), None, None)).0,
        "nothing_to_do"
    );
    for a in ["block", "unblock", "reset"] {
        let out = plan(a, user(ME, CANDIDATE, ""), None, None);
        assert_eq!(outcome(&out), ("perform", ""));
        assert_eq!(out.get("set_app_metadata"), Some(&j("{}")));
    }
    let bad = Map::new()
        .with("action", "promote")
        .with("user", user(ME, CANDIDATE, ""))
        .with("products", PRODUCTS.to_vec());
    let err = SupportInput::from_value(&bad.into()).err().map(|e| e.code);
    assert_eq!(err, Some("support.unknown_fix"));
}

#[test]
fn support_never_proves_a_candidate_of_a_user_whose_address_the_tenant_never_verified() {
    // A sign-up after finishing (with sign-up opted in) types the victim's address: the tenant
    // never verified it, and the repair found the victim's account as a candidate.
    let mut me = user(
        "auth0|stranger",
        CANDIDATE,
        r#","address":"v@x.com","address_from":"unverified""#,
    );
    let out = plan(
        "link",
        me.clone(),
        Some("paste:p1"),
        Some(checked(NOBODY, vec![], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.address_unverified"));
    // Even a record without the mark: the tenant's own word on the address decides.
    if let Some(u) = me.as_object_mut() {
        u.insert("email_verified", false);
    }
    let bare = user("auth0|stranger", CANDIDATE, "");
    let mut bare_unverified = bare.clone();
    if let Some(u) = bare_unverified.as_object_mut() {
        u.insert("email_verified", false);
    }
    let out = plan(
        "link",
        bare_unverified,
        Some("paste:p1"),
        Some(checked(NOBODY, vec![], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.address_unverified"));
    let rec = trickle::person::PersonMeta::from_value(
        me.get("app_metadata")
            .and_then(|m| m.get("trickle"))
            .unwrap_or(&Value::Null),
    )
    .unwrap_or_else(|e| unreachable!("{e:?}"));
    assert!(Value::from(support::provenance(&rec))
        .to_json()
        .contains("never verified"));
}

#[test]
fn every_holder_is_named_once_and_only_the_named_accounts_answer_counts() {
    // The product stores the victim's id and a third user's record holds it too: both named.
    let third = user(
        "apple|third",
        r#"[{"product":"paste","id":"p1","proof":"identity"}]"#,
        "",
    );
    let stored = format!(r#"[{{"product":"paste","account":"p1","auth0_user_id":"{VICTIM}"}}]"#);
    let out = plan(
        "link",
        user(ME, CANDIDATE, ""),
        Some("paste:p1"),
        Some(checked(&stored, vec![third.clone(), third], false)),
    );
    assert_eq!(outcome(&out), ("refused", "support.account_held"));
    assert_eq!(
        out.get("held_by"),
        Some(&j(&format!(r#"["apple|third","{VICTIM}"]"#)))
    );
    // Another account of the same product, held by someone, is no answer about this one.
    let others_first = format!(
        r#"[{{"product":"paste","account":"p2","auth0_user_id":"{VICTIM}"}},{{"product":"collect","account":"p1","auth0_user_id":"{VICTIM}"}},{{"product":"paste","account":"p1","auth0_user_id":null}}]"#
    );
    let out = plan(
        "link",
        user(ME, CANDIDATE, ""),
        Some("paste:p1"),
        Some(checked(&others_first, vec![], false)),
    );
    assert_eq!(outcome(&out), ("perform", ""), "{}", out.to_json());
}

#[test]
fn a_withdrawal_withdraws_the_named_account_whatever_its_fanout_and_tells_only_its_product() {
    // Proven, not yet told: the proof goes, nothing to forget.
    let untold = user(
        ME,
        r#"[{"product":"paste","id":"p1","proof":"support"}]"#,
        "",
    );
    let out = plan("withdraw", untold, Some("paste:p1"), None);
    assert_eq!(outcome(&out), ("perform", ""), "{}", out.to_json());
    assert_eq!(out.get("fanout"), Some(&j("[]")));
    // Its proof already gone but still told (the forget pending): the product is told again.
    let pending = user(ME, r#"[{"product":"paste","id":"p1","fanout":true}]"#, "");
    let out = plan("withdraw", pending, Some("paste:p1"), None);
    assert_eq!(outcome(&out), ("perform", ""));
    assert_eq!(
        out.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(1)
    );
    // Another account with the same id elsewhere, its own forget pending, is not this fix's.
    let two = user(
        ME,
        r#"[{"product":"paste","id":"p1","proof":"support","fanout":true},{"product":"collect","id":"p1","fanout":true},{"product":"collect","id":"c2","proof":"password"}]"#,
        "",
    );
    let out = plan("withdraw", two, Some("paste:p1"), None);
    assert_eq!(
        out.get("fanout"),
        Some(&j(&format!(
            r#"[{{"product":"paste","account":"p1","auth0_user_id":"{ME}","forget":true}}]"#
        )))
    );
}

#[test]
fn the_export_answers_text_and_the_page_names_only_real_holders() {
    let input = Map::new()
        .with("action", "link")
        .with("user", user(ME, CANDIDATE, ""))
        .with("target", "paste:p1")
        .with("products", PRODUCTS.to_vec());
    let text = support::plan_from_value(&input.into()).unwrap_or_default();
    assert_eq!(
        j(&text).get("outcome").and_then(Value::as_str),
        Some("check")
    );
    let rec = trickle::person::PersonMeta::from_value(&j(
        r#"{"v":1,"person_id":"tp_1","accounts":[{"product":"paste","id":"p1"},{"product":"paste","id":"p2"}]}"#,
    ))
    .unwrap_or_else(|e| unreachable!("{e:?}"));
    let checked = support::Checked::from_value(&checked(
        &format!(
            r#"[{{"product":"paste","account":"p1","auth0_user_id":"{VICTIM}"}},{{"product":"paste","account":"p2","auth0_user_id":null}}]"#
        ),
        vec![],
        false,
    ))
    .unwrap_or_else(|e| unreachable!("{e:?}"));
    let shown = Value::from(support::held_by(&rec, ME, &checked)).to_json();
    assert_eq!(shown, format!(r#"{{"paste:p1":"{VICTIM}"}}"#));
}
