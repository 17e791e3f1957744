//! The post-login chain: every stage and every refusal, as pure decisions.
#![cfg(feature = "chain")]

use trickle::chain::{self, ApplyInput, PlanInput};
use trickle::json::{self, Map, Value};
use trickle::token;

const SECRET: &str = "a-test-secret-that-is-32-bytes-long!!";
const NOW: i64 = 1_800_000_000;
const USER: &str = "auth0|tp_148168e920bf47f6b53a67383d63661e";

fn j(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| unreachable!("{text}: {e:?}"))
}

fn multi_meta(jti: Option<&str>) -> Value {
    let merge = jti.map_or(String::new(), |j| {
        format!(
            r#","merge":{{"attempts":1,"jti":"{j}","issued_at":{NOW},"shown":["collect:c7","transfer:t9"]}}"#
        )
    });
    j(&format!(
        r#"{{"trickle":{{"v":1,"person_id":"tp_148168e920bf47f6b53a67383d63661e","accounts":[
            {{"product":"collect","id":"c7","verified":true}},{{"product":"paste","id":"p2","proof":"password","verified":true}},{{"product":"transfer","id":"t9","verified":true}}]{merge}}}}}"#
    ))
}

fn single_meta() -> Value {
    j(
        r#"{"trickle":{"v":1,"person_id":"tp_1","accounts":[{"product":"paste","id":"p1","proof":"password"}]}}"#,
    )
}

/// The multi-product user as the post-login event shows it, with this `app_metadata`.
fn user_of(app_metadata: impl Into<Value>) -> Map {
    Map::new()
        .with("user_id", USER)
        .with("email", "multi@example.com")
        .with("app_metadata", app_metadata)
}

fn input(phase: &str, app_metadata: Value, can_redirect: bool, extra: Map) -> PlanInput {
    let mut m = Map::new()
        .with("phase", phase)
        .with("now", NOW)
        .with("user", user_of(app_metadata))
        .with(
            "transaction",
            Map::new()
                .with("can_redirect", can_redirect)
                .with("state", "st-1")
                .with("connection", "trickle"),
        )
        .with(
            "config",
            Map::new()
                .with("products", vec!["paste", "collect", "transfer"])
                .with("merge_url", "https://merge.example.com/merge")
                .with("token_secret", SECRET)
                .with("connection", "trickle"),
        )
        .with("jti", "jti-aaaaaaaaaaaaaaaa");
    m.extend(extra);
    PlanInput::from_value(&m.into()).unwrap_or_else(|e| unreachable!("{e:?}"))
}

fn returning(outcome: &str, sub: &str, state: &str, jti: &str, iat: i64, secret: &str) -> String {
    let extra = Map::new().with("state", state).with("outcome", outcome);
    let claims = token::claims(
        token::ISS_MERGE,
        token::AUD_TRICKLE,
        sub,
        jti,
        iat,
        300,
        extra,
    );
    token::sign(&claims, secret.as_bytes()).unwrap_or_default()
}

fn resume(tok: &str, meta: Value) -> Value {
    chain::plan(&input(
        "continue",
        meta,
        true,
        Map::new().with("session_token", tok),
    ))
    .to_value()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

#[test]
fn single_product_person_is_migrated_at_once_and_fanned_out() {
    let out = chain::plan(&input("execute", single_meta(), true, Map::new())).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert_eq!(
        out.get("set_app_metadata").and_then(|m| m.get("migrated")),
        Some(&Value::Bool(true))
    );
    let fanout = out
        .get("fanout")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(fanout.len(), 1);
    assert_eq!(fanout.first().and_then(|r| s(r, &["account"])), Some("p1"));
    assert_eq!(
        fanout.first().and_then(|r| s(r, &["auth0_user_id"])),
        Some(USER)
    );
    assert_eq!(fanout.first().and_then(|r| r.get("forget")), None);
}

#[test]
fn multi_product_person_is_redirected_with_a_bound_session_token() {
    let out = chain::plan(&input("execute", multi_meta(None), true, Map::new())).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("redirect"), "{}", out.to_json());
    assert_eq!(
        s(&out, &["redirect", "url"]),
        Some("https://merge.example.com/merge")
    );
    let tok = s(&out, &["redirect", "query", "session_token"]).unwrap_or("");
    let claims = session_claims(&out);
    assert_eq!(claims.get("exp").and_then(Value::as_i64), Some(NOW + 900));
    assert_eq!(
        claims.get("unproven"),
        Some(&j(r#"["collect","transfer"]"#))
    );
    let meta = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(s(&meta, &["merge", "jti"]), Some("jti-aaaaaaaaaaaaaaaa"));
    assert_eq!(
        meta.get("merge")
            .and_then(|m| m.get("attempts"))
            .and_then(Value::as_i64),
        Some(1)
    );
    assert_eq!(
        out.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(0),
        "no fan-out before the merge"
    );
    // A reflected session token is refused at /continue (wrong issuer and audience).
    let replay = resume(tok, multi_meta(Some("jti-aaaaaaaaaaaaaaaa")));
    assert_eq!(s(&replay, &["outcome"]), Some("deny"));
}

#[test]
fn resume_with_a_valid_token_merges_marks_migrated_and_fans_out_to_every_account() {
    let tok = returning("merged", USER, "st-1", "jti-aaaaaaaaaaaaaaaa", NOW, SECRET);
    let out = resume(&tok, multi_meta(Some("jti-aaaaaaaaaaaaaaaa")));
    assert_eq!(s(&out, &["outcome"]), Some("continue"), "{}", out.to_json());
    let set = out.get("set_app_metadata").cloned().unwrap_or_default();
    assert_eq!(set.get("migrated"), Some(&Value::Bool(true)));
    let accounts = set
        .get("trickle")
        .and_then(|t| t.get("accounts"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(accounts.iter().all(|a| a.get("proof").is_some()));
    assert!(
        set.get("trickle")
            .and_then(|t| t.get("merge"))
            .and_then(|m| m.get("jti"))
            .is_none(),
        "jti spent"
    );
    assert_eq!(
        out.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(3)
    );
}

#[test]
fn resume_refuses_forged_expired_replayed_other_subject_and_other_state_tokens() {
    let jti = "jti-aaaaaaaaaaaaaaaa";
    let cases = [
        (
            "forged",
            returning(
                "merged",
                USER,
                "st-1",
                jti,
                NOW,
                "another-secret-that-is-32-bytes!!",
            ),
            Some(jti),
            "token.signature",
        ),
        (
            "expired",
            returning("merged", USER, "st-1", jti, NOW - 1000, SECRET),
            Some(jti),
            "token.expired",
        ),
        (
            "replayed",
            returning("merged", USER, "st-1", jti, NOW, SECRET),
            None,
            "token.jti",
        ),
        (
            "stale jti",
            returning("merged", USER, "st-1", "jti-bbbbbbbbbbbbbbbb", NOW, SECRET),
            Some(jti),
            "token.jti",
        ),
        (
            "other subject",
            returning("merged", "auth0|someone-else", "st-1", jti, NOW, SECRET),
            Some(jti),
            "token.subject",
        ),
        (
            "other state",
            returning("merged", USER, "st-2", jti, NOW, SECRET),
            Some(jti),
            "token.state",
        ),
        (
            "garbage",
            "not.a.token".to_owned(),
            Some(jti),
            "token.malformed",
        ),
        ("missing", String::new(), Some(jti), "token.malformed"),
        (
            "no outcome",
            returning("maybe", USER, "st-1", jti, NOW, SECRET),
            Some(jti),
            "token.outcome",
        ),
    ];
    for (name, tok, open, code) in cases {
        let out = resume(&tok, multi_meta(open));
        assert_eq!(
            s(&out, &["outcome"]),
            Some("deny"),
            "{name}: {}",
            out.to_json()
        );
        assert_eq!(s(&out, &["deny", "code"]), Some(code), "{name}");
        assert!(
            out.get("set_app_metadata")
                .and_then(|m| m.get("migrated"))
                .is_none(),
            "{name}"
        );
        if open.is_some() {
            // The open jti is spent, so the same token cannot be tried again.
            let meta = out
                .get("set_app_metadata")
                .and_then(|m| m.get("trickle"))
                .cloned()
                .unwrap_or_default();
            assert!(
                meta.get("merge").and_then(|m| m.get("jti")).is_none(),
                "{name}"
            );
            // …and the record that says so is written (not merely absent).
            assert_eq!(
                meta.get("merge")
                    .and_then(|m| m.get("attempts"))
                    .and_then(Value::as_i64),
                Some(1),
                "{name}: the spent jti is saved"
            );
        }
    }
}

#[test]
fn only_a_well_formed_random_jti_starts_a_merge() {
    let meta = || {
        meta_with(
            r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"collect","id":"c7","verified":true}]"#,
            "",
        )
    };
    for (jti, ok) in [
        ("a".repeat(15), false),
        ("a".repeat(16), true),
        ("A-_z".repeat(4), true),
        ("a".repeat(128), true),
        ("a".repeat(129), false),
        (format!("{}.", "a".repeat(16)), false),
        (format!("{} ", "a".repeat(16)), false),
    ] {
        let out = plan_value(&input(
            "execute",
            meta(),
            true,
            Map::new().with("jti", jti.as_str()),
        ));
        let redirected = s(&out, &["outcome"]) == Some("redirect");
        assert_eq!(redirected, ok, "{jti:?}: {}", out.to_json());
        if !ok {
            assert!(out.to_json().contains("input.jti"), "{jti:?}");
        }
    }
}

#[test]
fn the_token_secret_must_be_at_least_32_bytes() {
    for (secret, ok) in [("s".repeat(31), false), ("s".repeat(32), true)] {
        let mut i = input("execute", multi_meta(None), true, Map::new());
        i.config.token_secret = secret;
        let out = plan_value(&i);
        assert_eq!(
            s(&out, &["outcome"]) == Some("redirect"),
            ok,
            "{}",
            out.to_json()
        );
    }
}

#[test]
fn a_bulk_imported_user_whose_other_account_only_the_mailbox_can_prove_is_sent_to_the_merge() {
    // Imported with paste's hash (it owns p1); collect verified the address, so the mailbox can
    // prove c1: the merge is asked for, as after a lazy login with p1's password.
    let meta = j(
        r#"{"bulkImported":true,"trickle":{"v":1,"person_id":"x","accounts":[{"product":"paste","id":"p1","proof":"import","verified":true},{"product":"collect","id":"c1","verified":true}]}}"#,
    );
    let out = plan_value(&input("execute", meta, true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("redirect"), "{}", out.to_json());
    assert!(!out.to_json().contains("bulk_imported_skip"));
}

#[test]
fn a_bulk_imported_user_is_offered_an_unverified_account_by_its_password_a_few_times_then_never() {
    // c1 was never verified by its product: only its own password can prove it.
    let meta = |attempts: u32| {
        j(&format!(
            r#"{{"bulkImported":true,"trickle":{{"v":1,"person_id":"x","accounts":[{{"product":"paste","id":"p1","proof":"import","verified":true}},{{"product":"collect","id":"c1","verified":false}}],"merge":{{"attempts":{attempts}}}}}}}"#
        ))
    };
    let out = plan_value(&input("execute", meta(0), true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("redirect"), "{}", out.to_json());
    assert_eq!(
        session_claims(&out).get("passwords"),
        Some(&j(r#"["collect:c1"]"#))
    );
    let out = plan_value(&input("execute", meta(3), true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert!(out.to_json().contains("bulk_imported_skip"));
    assert_eq!(told(&out), ["p1"], "only the owned account learns the id");
}

#[test]
fn skipping_lets_the_login_through_and_asks_again_next_time() {
    let tok = returning("skipped", USER, "st-1", "jti-aaaaaaaaaaaaaaaa", NOW, SECRET);
    let out = resume(&tok, multi_meta(Some("jti-aaaaaaaaaaaaaaaa")));
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert!(out
        .get("set_app_metadata")
        .and_then(|m| m.get("migrated"))
        .is_none());
    let meta = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    // Next login: asked again, with a fresh jti and the attempt counted.
    let mut app = Map::new();
    app.insert("trickle", meta);
    let next = chain::plan(&input(
        "execute",
        app.into(),
        true,
        Map::new().with("jti", "jti-cccccccccccccccc"),
    ))
    .to_value();
    assert_eq!(s(&next, &["outcome"]), Some("redirect"));
    assert_eq!(
        next.get("set_app_metadata")
            .and_then(|m| m.get("trickle"))
            .and_then(|t| t.get("merge"))
            .and_then(|m| m.get("attempts"))
            .and_then(Value::as_i64),
        Some(2)
    );
}

#[test]
fn a_transaction_that_cannot_redirect_logs_in_with_the_proven_accounts_only() {
    let out = chain::plan(&input("execute", multi_meta(None), false, Map::new())).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert!(out
        .get("set_app_metadata")
        .and_then(|m| m.get("migrated"))
        .is_none());
    // Only the proven account (paste p2) learns the id; the unproven ones wait for the merge.
    let told: Vec<&str> = out
        .get("fanout")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(|r| s(r, &["account"])).collect())
        .unwrap_or_default();
    assert_eq!(told, ["p2"]);
}

#[test]
fn bulk_imported_users_skip_merge_detection() {
    let meta = j(
        r#"{"bulkImported":true,"trickle":{"v":1,"person_id":"x","accounts":[{"product":"paste","id":"p1","proof":"import"},{"product":"collect","id":"c1","proof":"import","fanout":true}]}}"#,
    );
    let out = chain::plan(&input("execute", meta, true, Map::new())).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert_eq!(
        out.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(1),
        "only the unacknowledged account"
    );
    let bare = chain::plan(&input(
        "execute",
        j(r#"{"bulkImported":true}"#),
        true,
        Map::new(),
    ))
    .to_value();
    assert_eq!(s(&bare, &["outcome"]), Some("continue"));
}

#[test]
fn apply_records_acknowledgements_and_pending_lookups() {
    let mut app = multi_meta(None);
    if let Value::Object(m) = &mut app {
        m.insert("migrated", true);
        let mut t = m.get("trickle").cloned().unwrap_or_default();
        if let Value::Object(tm) = &mut t {
            tm.insert("pending", vec!["transfer"]);
            tm.insert("accounts", j(r#"[{"product":"paste","id":"p2","proof":"password"},{"product":"collect","id":"c7","proof":"merge"}]"#));
        }
        m.insert("trickle", t);
    }
    let apply_in = Map::new()
        .with("user", Map::new().with("user_id", USER).with("email", "Multi@example.com").with("app_metadata", app))
        .with("fanout", j(r#"[{"product":"paste","account":"p2","ok":true},{"product":"collect","account":"c7","ok":false}]"#))
        .with("lookups", j(r#"[{"name":"transfer","accounts":[{"id":"t9","email":"multi@example.com"},{"id":"t10","email":"other@example.com"}]}]"#));
    let out = chain::apply(
        &ApplyInput::from_value(&apply_in.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    )
    .to_value();
    let set = out.get("set_app_metadata").cloned().unwrap_or_default();
    let meta = set.get("trickle").cloned().unwrap_or_default();
    assert_eq!(
        meta.get("accounts"),
        Some(&j(
            r#"[{"product":"paste","id":"p2","proof":"password","fanout":true},{"product":"collect","id":"c7","proof":"merge"},{"product":"transfer","id":"t9"}]"#
        ))
    );
    assert!(meta.get("pending").is_none());
    assert_eq!(
        set.get("migrated"),
        Some(&Value::Bool(false)),
        "a newly found account must be proven first"
    );
}

#[test]
fn missing_metadata_is_repaired_from_the_products() {
    let out = chain::plan(&input("execute", j("{}"), true, Map::new())).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert_eq!(
        out.get("lookups"),
        Some(&j(r#"["paste","collect","transfer"]"#))
    );
    let apply_in = Map::new()
        .with("user", Map::new().with("user_id", USER).with("email", "solo@example.com").with("app_metadata", j("{}")))
        .with("lookups", j(r#"[{"name":"paste","accounts":[{"id":"p1","email":"solo@example.com"}]},{"name":"collect","accounts":[]},{"name":"transfer","accounts":[]}]"#));
    let out = chain::apply(
        &ApplyInput::from_value(&apply_in.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    )
    .to_value();
    let accounts = accounts_set(&out);
    // A repair never proves: the lone account found is a candidate (finding 1 of issue 19: a
    // sign-up with a victim's address has no record either).
    assert_eq!(accounts, Some(j(r#"[{"product":"paste","id":"p1"}]"#)));
    // The repaired record carries the version and the person id of the Auth0 user.
    let meta = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(meta.get("v").and_then(Value::as_i64), Some(1));
    assert_eq!(
        s(&meta, &["person_id"]),
        USER.strip_prefix("auth0|"),
        "person id from the user id"
    );
}

#[test]
fn misconfiguration_never_locks_anyone_out() {
    let short = Map::new().with(
        "config",
        Map::new()
            .with("products", vec!["paste"])
            .with("merge_url", "https://m")
            .with("token_secret", "short")
            .with("connection", "trickle"),
    );
    let out = chain::plan(&input("execute", multi_meta(None), true, short)).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    let ev = first_event(&out);
    assert_eq!(s(&ev, &["code"]), Some("config.token_secret"));
}

#[test]
fn other_connections_pass_untouched() {
    let mut i = input("execute", multi_meta(None), true, Map::new());
    i.config.connection = Some("trickle".into());
    i.transaction.connection = Some("google-oauth2".into());
    let out = chain::plan(&i).to_value();
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert!(out
        .get("set_app_metadata")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty));
}

#[test]
fn repair_with_a_product_still_down_proves_nothing_and_keeps_it_pending() {
    let apply_in = Map::new()
        .with("user", Map::new().with("user_id", USER).with("email", "solo@example.com").with("app_metadata", j("{}")))
        .with("lookups", j(r#"[{"name":"paste","accounts":[{"id":"p1","email":"solo@example.com"}]},{"name":"collect","accounts":[]},{"name":"transfer","error":"timeout"}]"#));
    let out = chain::apply(
        &ApplyInput::from_value(&apply_in.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    )
    .to_value();
    let meta = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    // The account that answered may not be the one the password matched: it stays unproven.
    assert_eq!(
        meta.get("accounts"),
        Some(&j(r#"[{"product":"paste","id":"p1"}]"#))
    );
    assert_eq!(meta.get("pending"), Some(&j(r#"["transfer"]"#)));
}

/// The first log event of a decision.
fn first_event(out: &Value) -> Value {
    out.get("events")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .cloned()
        .unwrap_or_default()
}

fn plan_value(i: &PlanInput) -> Value {
    chain::plan(i).to_value()
}

/// The accounts a plan tells (its fan-out requests), in order.
fn told(out: &Value) -> Vec<&str> {
    out.get("fanout")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("account").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// The `app_metadata.trickle.accounts` a plan or an apply step writes, if any.
fn accounts_set(applied: &Value) -> Option<Value> {
    applied
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .and_then(|t| t.get("accounts"))
        .cloned()
}

fn apply_value(m: Map) -> Value {
    chain::apply(&ApplyInput::from_value(&m.into()).unwrap_or_else(|e| unreachable!("{e:?}")))
        .to_value()
}

#[test]
fn without_trickles_connection_named_nothing_is_repaired_or_linked() {
    // Finding 4: a user of any other connection who claims the victim's address, with
    // TRICKLE_CONNECTION unset, must not go through the metadata repair.
    for configured in [None, Some("trickle")] {
        let mut i = input("execute", j("{}"), true, Map::new());
        i.config.connection = configured.map(str::to_owned);
        i.transaction.connection = Some("other-db".into());
        let out = plan_value(&i);
        assert_eq!(s(&out, &["outcome"]), Some("continue"));
        assert_eq!(out.get("lookups"), Some(&j("[]")), "{configured:?}");
        assert_eq!(out.get("fanout"), Some(&j("[]")));
        assert!(out
            .get("set_app_metadata")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty));
    }
    let mut i = input("execute", j("{}"), true, Map::new());
    i.config.connection = None;
    let out = plan_value(&i);
    let ev = first_event(&out);
    assert_eq!(s(&ev, &["code"]), Some("config.connection"));
    assert_eq!(out.get("lookups"), Some(&j("[]")));
    // A transaction that does not say its connection is not trickle's either.
    let mut i = input("execute", j("{}"), true, Map::new());
    i.transaction.connection = None;
    assert_eq!(plan_value(&i).get("lookups"), Some(&j("[]")));
}

fn meta_with(accounts: &str, extra: &str) -> Value {
    j(&format!(
        r#"{{"trickle":{{"v":1,"person_id":"tp_148168e920bf47f6b53a67383d63661e","accounts":{accounts}{extra}}}}}"#
    ))
}

#[test]
fn a_merge_proves_only_accounts_whose_product_verified_the_address() {
    // Finding 6: an account planted under the victim's address in a product that never
    // verified it is not proven by the victim's mailbox.
    let accounts = r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"collect","id":"c7","verified":true},{"product":"transfer","id":"t9"}]"#;
    let meta = meta_with(
        accounts,
        &format!(
            r#","merge":{{"attempts":1,"jti":"jti-aaaaaaaaaaaaaaaa","issued_at":{NOW},"shown":["collect:c7","transfer:t9"]}}"#
        ),
    );
    let tok = returning("merged", USER, "st-1", "jti-aaaaaaaaaaaaaaaa", NOW, SECRET);
    let out = resume(&tok, meta);
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert_eq!(
        told(&out),
        ["p2", "c7"],
        "the planted t9 is never told the id"
    );
    let after = accounts_set(&out);
    assert_eq!(
        after,
        Some(j(
            r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"collect","id":"c7","proof":"merge","verified":true},{"product":"transfer","id":"t9"}]"#
        ))
    );
}

/// The claims of the session token a redirect carries.
fn session_claims(out: &Value) -> Map {
    let tok = s(out, &["redirect", "query", "session_token"]).unwrap_or("");
    let want = token::Expected {
        secret: SECRET.as_bytes(),
        iss: token::ISS_TRICKLE,
        aud: token::AUD_MERGE,
        sub: USER,
        state: None,
        jti: Some("jti-aaaaaaaaaaaaaaaa"),
        now: NOW,
    };
    token::verify(tok, &want).unwrap_or_else(|e| unreachable!("{e:?}"))
}

fn returning_with(outcome: &str, passwords: &[&str]) -> String {
    let extra = Map::new()
        .with("state", "st-1")
        .with("outcome", outcome)
        .with("passwords", passwords.to_vec());
    let claims = token::claims(
        token::ISS_MERGE,
        token::AUD_TRICKLE,
        USER,
        "jti-aaaaaaaaaaaaaaaa",
        NOW,
        300,
        extra,
    );
    token::sign(&claims, SECRET.as_bytes()).unwrap_or_default()
}

#[test]
fn an_unverified_account_is_offered_its_own_password_at_the_merge_never_the_mailbox() {
    let meta = meta_with(
        r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"transfer","id":"t9"}]"#,
        "",
    );
    let out = plan_value(&input("execute", meta, true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("redirect"), "{}", out.to_json());
    let claims = session_claims(&out);
    assert_eq!(
        claims.get("unproven"),
        Some(&j("[]")),
        "nothing for the mailbox"
    );
    assert_eq!(claims.get("passwords"), Some(&j(r#"["transfer:t9"]"#)));
    // After PASSWORD_OFFERS sends the offer stops (it may be another person's account): the
    // login goes on, only p2 is told, and the person counts as migrated.
    let meta = meta_with(
        r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"transfer","id":"t9"}]"#,
        r#","merge":{"attempts":3}"#,
    );
    let out = plan_value(&input("execute", meta, true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    let told = out.get("fanout").and_then(Value::as_array).map(Vec::len);
    assert_eq!(told, Some(1), "only p2");
    // A verified account still goes to the mailbox.
    let meta = meta_with(
        r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"collect","id":"c7","verified":true}]"#,
        "",
    );
    let out = plan_value(&input("execute", meta, true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("redirect"));
    assert!(session_claims(&out).get("passwords").is_none());
}

#[test]
fn the_merge_service_proves_by_password_only_the_unverified_accounts_its_page_offered() {
    // The page was sent for c7 (mailbox) and t9 (password); t5 was found since, c7 is verified.
    let meta = meta_with(
        r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"collect","id":"c7","verified":true},{"product":"transfer","id":"t9"},{"product":"transfer","id":"t5"}]"#,
        r#","merge":{"attempts":1,"jti":"jti-aaaaaaaaaaaaaaaa","issued_at":1700000000,"shown":["collect:c7","transfer:t9"]}"#,
    );
    // A skip that claims every account by password: only t9 is proven (c7 is the mailbox's to
    // prove, t5 was never offered).
    let tok = returning_with("skipped", &["transfer:t9", "collect:c7", "transfer:t5"]);
    let out = resume(&tok, meta.clone());
    assert_eq!(s(&out, &["outcome"]), Some("continue"), "{}", out.to_json());
    let after = accounts_set(&out);
    assert_eq!(
        after,
        Some(j(
            r#"[{"product":"paste","id":"p2","proof":"password","verified":true},{"product":"collect","id":"c7","verified":true},{"product":"transfer","id":"t9","proof":"password"},{"product":"transfer","id":"t5"}]"#
        ))
    );
    assert_eq!(told(&out), ["p2", "t9"]);
    // A token without the claim proves nothing by password.
    let out = resume(&returning_with("skipped", &[]), meta);
    assert!(
        !out.to_json().contains(r#""id":"t9","proof""#),
        "{}",
        out.to_json()
    );
}

#[test]
fn the_mailbox_owner_takes_the_address_back_and_password_only_links_are_withdrawn() {
    let accounts = r#"[{"product":"paste","id":"p2","proof":"password","fanout":true},{"product":"collect","id":"c7","proof":"password","verified":true,"fanout":true}]"#;
    let meta = meta_with(accounts, r#","unverified":true"#);
    // Before the mailbox is proven nothing changes.
    let out = plan_value(&input("execute", meta.clone(), true, Map::new()));
    assert_eq!(out.get("fanout"), Some(&j("[]")));
    let mut i = input("execute", meta, true, Map::new());
    i.user.email_verified = true;
    let out = plan_value(&i);
    let fan = out.get("fanout").cloned().unwrap_or_default();
    assert_eq!(fan.as_array().map(Vec::len), Some(1));
    let first = fan
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    assert_eq!(first.get("forget"), Some(&Value::Bool(true)));
    assert_eq!(s(&first, &["account"]), Some("p2"));
    let set = out.get("set_app_metadata").cloned().unwrap_or_default();
    let after = set.get("trickle").cloned().unwrap_or_default();
    assert_eq!(
        after.get("accounts"),
        Some(&j(
            r#"[{"product":"paste","id":"p2","fanout":true},{"product":"collect","id":"c7","proof":"password","verified":true,"fanout":true}]"#
        ))
    );
    assert!(after.get("unverified").is_none());
    let events = out.get("events").map(Value::to_json).unwrap_or_default();
    assert!(events.contains("link_withdrawn"), "{events}");
    // The product confirms: the account no longer carries the id.
    let mut app = Map::new();
    app.insert("trickle", after);
    let applied = apply_value(
        Map::new()
            .with("user", user_of(app))
            .with(
                "fanout",
                j(r#"[{"product":"paste","account":"p2","ok":true}]"#),
            )
            .with("lookups", j("[]")),
    );
    let accounts = accounts_set(&applied);
    assert_eq!(
        accounts,
        Some(j(
            r#"[{"product":"paste","id":"p2"},{"product":"collect","id":"c7","proof":"password","verified":true,"fanout":true}]"#
        ))
    );
}

#[test]
fn an_acknowledgement_is_credited_to_its_own_account_only() {
    let meta = meta_with(
        r#"[{"product":"paste","id":"p1","proof":"password"},{"product":"paste","id":"p2","proof":"password"}]"#,
        "",
    );
    let applied = apply_value(
        Map::new()
            .with("user", user_of(meta))
            .with("fanout", j(r#"[{"product":"paste","account":"p2","ok":true},{"product":"collect","account":"p1","ok":true}]"#))
            .with("lookups", j("[]")),
    );
    let accounts = accounts_set(&applied);
    assert_eq!(
        accounts,
        Some(j(
            r#"[{"product":"paste","id":"p1","proof":"password"},{"product":"paste","id":"p2","proof":"password","fanout":true}]"#
        ))
    );
}

#[test]
fn repair_does_not_prove_an_unverified_lone_account_for_a_mailbox_proven_user() {
    let lookups = j(
        r#"[{"name":"paste","accounts":[{"id":"p1","email":"solo@example.com"}]},{"name":"collect","accounts":[]},{"name":"transfer","accounts":[]}]"#,
    );
    let applied = apply_value(
        Map::new()
            .with(
                "user",
                Map::new()
                    .with("user_id", USER)
                    .with("email", "solo@example.com")
                    .with("email_verified", true)
                    .with("app_metadata", j("{}")),
            )
            .with("lookups", lookups),
    );
    let accounts = accounts_set(&applied);
    assert_eq!(accounts, Some(j(r#"[{"product":"paste","id":"p1"}]"#)));
}

#[test]
fn repair_and_apply_write_only_what_changed() {
    // Plan in repair: nothing is written before the products answered.
    let out = plan_value(&input("execute", j("{}"), true, Map::new()));
    assert!(out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .is_none());
    let user = |app: Value| {
        Map::new()
            .with("user_id", USER)
            .with("email", "solo@example.com")
            .with("app_metadata", app)
    };
    let empty = j(
        r#"[{"name":"paste","accounts":[]},{"name":"collect","accounts":[]},{"name":"transfer","accounts":[]}]"#,
    );
    // Repair that finds nobody saves no stub record.
    let applied = apply_value(
        Map::new()
            .with("user", user(j("{}")))
            .with("lookups", empty.clone()),
    );
    assert_eq!(applied.get("set_app_metadata"), Some(&j("{}")));
    // Repair of a lone account of a migrated user: a candidate, so it must be proven first.
    let lone = j(
        r#"[{"name":"paste","accounts":[{"id":"p1","email":"solo@example.com"}]},{"name":"collect","accounts":[]},{"name":"transfer","accounts":[]}]"#,
    );
    let applied = apply_value(
        Map::new()
            .with("user", user(j(r#"{"migrated":true}"#)))
            .with("lookups", lone),
    );
    let set = applied.get("set_app_metadata").cloned().unwrap_or_default();
    assert_eq!(
        set.get("migrated"),
        Some(&Value::Bool(false)),
        "{}",
        set.to_json()
    );
    assert!(applied.to_json().contains("account_found_unproven"));
    // Acknowledgements alone never un-migrate anyone.
    let applied = apply_value(
        Map::new()
            .with(
                "user",
                user(j(
                    r#"{"migrated":true,"trickle":{"v":1,"person_id":"tp_1","accounts":[{"product":"paste","id":"p1","proof":"password"}]}}"#,
                )),
            )
            .with("fanout", j(r#"[{"product":"paste","account":"p1","ok":true}]"#))
            .with("lookups", j("[]")),
    );
    let set = applied.get("set_app_metadata").cloned().unwrap_or_default();
    assert!(set.get("migrated").is_none());
    assert!(set.get("trickle").is_some());
    // Nothing changed: nothing written.
    let applied = apply_value(
        Map::new()
            .with(
                "user",
                user(j(
                    r#"{"trickle":{"v":1,"person_id":"tp_1","accounts":[{"product":"paste","id":"p1","proof":"password","fanout":true}]}}"#,
                )),
            )
            .with("lookups", j("[]")),
    );
    assert_eq!(applied.get("set_app_metadata"), Some(&j("{}")));
}

#[test]
fn a_sign_up_with_a_victims_address_proves_nothing_and_joins_nobody() {
    // Issue 19, finding 1: after finishing, a sign-up with the address of a person who holds one
    // legacy account has no record. The repair finds that account (told the victim's tenant
    // user, or nobody yet): it stays a candidate, whom its product told is withheld, nothing is
    // told and nothing is joined, whether the product verified the address or not.
    for (verified, told) in [
        (true, Some("google-oauth2|victim")),
        (false, Some("google-oauth2|victim")),
        (true, None),
        (false, None),
    ] {
        let account = Map::new()
            .with("id", "p1")
            .with("email", "multi@example.com")
            .with("email_verified", verified)
            .with("auth0_user_id", told);
        let lookups = Value::Array(
            ["paste", "collect", "transfer"]
                .iter()
                .map(|p| {
                    let list = if *p == "paste" {
                        vec![Value::from(account.clone())]
                    } else {
                        vec![]
                    };
                    Map::new().with("name", *p).with("accounts", list).into()
                })
                .collect(),
        );
        let applied = apply_value(
            Map::new()
                .with("user", user_of(j("{}")).with("email_verified", false))
                .with("lookups", lookups)
                .with("products", vec!["paste", "collect", "transfer"]),
        );
        let text = applied.to_json();
        assert!(!text.contains("\"proof\""), "{text}");
        assert!(
            !text.contains("victim"),
            "the stranger never learns whom: {text}"
        );
        assert_eq!(applied.get("relink"), None, "{text}");
        assert_eq!(applied.get("fanout"), None, "{text}");
        let record = applied
            .get("set_app_metadata")
            .and_then(|m| m.get("trickle"))
            .cloned()
            .unwrap_or_default();
        let plan = plan_value(&input(
            "execute",
            Map::new().with("trickle", record).into(),
            true,
            Map::new(),
        ));
        assert_eq!(plan.get("link"), None, "{}", plan.to_json());
        assert_eq!(plan.get("fanout"), Some(&j("[]")), "{}", plan.to_json());
        // A verified account sends the stranger to the victim's mailbox, which they cannot open;
        // an unverified one is offered only by its own legacy password, which they do not know,
        // and not at all when another user holds it.
        let expected = if verified || told.is_none() {
            "redirect"
        } else {
            "continue"
        };
        assert_eq!(s(&plan, &["outcome"]), Some(expected), "{}", plan.to_json());
        if expected == "redirect" {
            let offered = session_claims(&plan).get("passwords").cloned();
            assert_eq!(offered, (!verified).then(|| j(r#"["paste:p1"]"#)));
        }
    }
}

#[test]
fn a_merge_proves_what_its_page_showed_and_not_an_account_found_since() {
    // Issue 19, finding 8: the redirect records the accounts it shows.
    let out = plan_value(&input("execute", multi_meta(None), true, Map::new()));
    assert_eq!(s(&out, &["outcome"]), Some("redirect"));
    let merge = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .and_then(|t| t.get("merge"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        merge.get("shown"),
        Some(&j(r#"["collect:c7","transfer:t9"]"#))
    );
    // A product answered after the redirect (the merge service's own sign-in re-ran the chain):
    // collect:c8 joined the record as a candidate. The merge proves c7 and t9 only.
    let meta = meta_with(
        r#"[{"product":"collect","id":"c7","verified":true},{"product":"paste","id":"p2","proof":"password","verified":true},
            {"product":"transfer","id":"t9","verified":true},{"product":"collect","id":"c8","verified":true}]"#,
        &format!(
            r#","merge":{{"attempts":1,"jti":"jti-aaaaaaaaaaaaaaaa","issued_at":{NOW},"shown":["collect:c7","transfer:t9"]}}"#
        ),
    );
    let tok = returning("merged", USER, "st-1", "jti-aaaaaaaaaaaaaaaa", NOW, SECRET);
    let out = resume(&tok, meta.clone());
    let accounts = accounts_set(&out).unwrap_or_default().to_json();
    assert!(
        accounts.contains(r#""id":"c7","proof":"merge""#),
        "{accounts}"
    );
    assert!(
        accounts.contains(r#""id":"t9","proof":"merge""#),
        "{accounts}"
    );
    assert!(
        accounts.contains(r#"{"product":"collect","id":"c8","verified":true}"#),
        "{accounts}"
    );
    // Not migrated while c8 waits: the next login shows it at a merge of its own.
    let set = out.get("set_app_metadata").cloned().unwrap_or_default();
    assert_eq!(set.get("migrated"), None, "{}", set.to_json());
    let record = set.get("trickle").cloned().unwrap_or_default();
    let next = plan_value(&input(
        "execute",
        Map::new().with("trickle", record).into(),
        true,
        Map::new(),
    ));
    assert_eq!(
        s(&next, &["outcome"]),
        Some("redirect"),
        "{}",
        next.to_json()
    );
    // A token whose record named nothing shown (made before the record kept it) proves nothing.
    let bare = meta_with(
        r#"[{"product":"collect","id":"c7","verified":true}]"#,
        &format!(r#","merge":{{"attempts":1,"jti":"jti-aaaaaaaaaaaaaaaa","issued_at":{NOW}}}"#),
    );
    let out = resume(&tok, bare);
    assert!(!accounts_set(&out)
        .unwrap_or_default()
        .to_json()
        .contains("proof"));
}

#[test]
fn a_reset_withdraws_the_link_an_imported_hash_made_on_an_unverified_address() {
    // Issue 19, finding 4: a lone account imported with its own hash, its address never verified.
    let meta = j(
        r#"{"bulkImported":true,"migrated":true,"trickle":{"v":1,"person_id":"tp_1","unverified":true,
            "accounts":[{"product":"paste","id":"p1","proof":"import","fanout":true}]}}"#,
    );
    let mut i = input("execute", meta, true, Map::new());
    i.user.email_verified = true;
    let out = plan_value(&i);
    assert!(
        out.to_json().contains("link_withdrawn"),
        "{}",
        out.to_json()
    );
    assert_eq!(
        out.get("fanout"),
        Some(&j(&format!(
            r#"[{{"product":"paste","account":"p1","auth0_user_id":"{USER}","forget":true}}]"#
        )))
    );
}

#[test]
fn a_repaired_record_keeps_its_address_and_whether_the_tenant_verified_it() {
    let lookups = j(
        r#"[{"name":"paste","accounts":[{"id":"p1","email":"multi@example.com","email_verified":true}]},{"name":"collect","accounts":[]},{"name":"transfer","accounts":[]}]"#,
    );
    for verified in [false, true] {
        let applied = apply_value(
            Map::new()
                .with("user", user_of(j("{}")).with("email_verified", verified))
                .with("lookups", lookups.clone()),
        );
        let rec = applied
            .get("set_app_metadata")
            .and_then(|m| m.get("trickle"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(s(&rec, &["address"]), Some("multi@example.com"));
        assert_eq!(
            s(&rec, &["address_from"]),
            (!verified).then_some("unverified"),
            "{}",
            rec.to_json()
        );
    }
}

#[test]
fn a_changed_address_says_again_whose_word_it_is() {
    let rec = j(
        r#"{"trickle":{"v":1,"person_id":"tp_1","address":"old@example.com","accounts":[{"product":"paste","id":"p1","proof":"password"}]}}"#,
    );
    // The user's address is now multi@example.com, not verified by the tenant.
    let out = plan_value(&input("execute", rec, true, Map::new()));
    let written = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(s(&written, &["address"]), Some("multi@example.com"));
    assert_eq!(s(&written, &["address_from"]), Some("unverified"));
}

#[test]
fn a_product_name_with_a_colon_is_a_misconfiguration() {
    // `product:id` names an account in a merge's `shown`: "a:b" + "c" and "a" + "b:c" would be
    // one key. Such a configuration lets every login through untouched, and says why.
    let mut i = input("execute", multi_meta(None), true, Map::new());
    i.config.products = vec!["paste".into(), "a:b".into()];
    let out = plan_value(&i);
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    assert!(
        out.to_json().contains("config.products"),
        "{}",
        out.to_json()
    );
    assert_eq!(out.get("redirect"), None);
}

/// A person whose proven paste:p2 another tenant user proved first, with `more` accounts.
fn linked_meta(more: &str, extra: &str) -> Value {
    meta_with(
        &format!(
            r#"[{{"product":"paste","id":"p2","proof":"password","verified":true,"linked":"auth0|tp_other"}}{more}]"#
        ),
        extra,
    )
}

#[test]
fn a_person_to_join_is_joined_before_anything_else_unless_their_mailbox_can_prove_more() {
    // Nothing to merge: the join comes first; this user is not marked migrated on its own.
    let out = plan_value(&input("execute", linked_meta("", ""), true, Map::new()));
    assert_eq!(
        s(&out, &["link"]),
        Some("auth0|tp_other"),
        "{}",
        out.to_json()
    );
    assert_eq!(
        out.get("set_app_metadata").and_then(|m| m.get("migrated")),
        None,
        "{}",
        out.to_json()
    );
    assert_eq!(
        out.get("fanout"),
        Some(&j("[]")),
        "told as the primary, after the join"
    );
    // A candidate the mailbox can prove, and a transaction that cannot redirect: still the join
    // first, nothing deferred.
    let candidate = r#",{"product":"collect","id":"c7","verified":true}"#;
    let out = plan_value(&input(
        "execute",
        linked_meta(candidate, ""),
        false,
        Map::new(),
    ));
    assert_eq!(s(&out, &["link"]), Some("auth0|tp_other"));
    assert!(
        !out.to_json().contains("merge_deferred"),
        "{}",
        out.to_json()
    );
    // Able to redirect: the merge first (the candidate would be left behind), no join yet.
    let out = plan_value(&input(
        "execute",
        linked_meta(candidate, ""),
        true,
        Map::new(),
    ));
    assert_eq!(s(&out, &["outcome"]), Some("redirect"));
    assert_eq!(out.get("link"), None);
    // Already migrated: the join, not the merge.
    let out = plan_value(&input(
        "execute",
        meta_with(
            r#"[{"product":"paste","id":"p2","proof":"password","verified":true,"linked":"auth0|tp_other"},{"product":"collect","id":"c7","verified":true}]"#,
            "",
        )
        .get("trickle")
        .map(|t| Map::new().with("migrated", true).with("trickle", t.clone()).into())
        .unwrap_or_default(),
        true,
        Map::new(),
    ));
    assert_eq!(s(&out, &["link"]), Some("auth0|tp_other"));
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
    // A candidate some user was told already (held) is not waited for: the join first.
    let held = r#",{"product":"collect","id":"c7","verified":true,"held":true}"#;
    let out = plan_value(&input("execute", linked_meta(held, ""), true, Map::new()));
    assert_eq!(s(&out, &["link"]), Some("auth0|tp_other"));
    assert_eq!(s(&out, &["outcome"]), Some("continue"));
}

#[test]
fn a_bulk_imported_person_to_join_skips_the_merge_stages_and_is_joined() {
    let meta = linked_meta("", "")
        .get("trickle")
        .map(|t| {
            Map::new()
                .with("bulkImported", true)
                .with("trickle", t.clone())
                .into()
        })
        .unwrap_or_default();
    let out = plan_value(&input("execute", meta, true, Map::new()));
    assert!(
        out.to_json().contains("bulk_imported_skip"),
        "{}",
        out.to_json()
    );
    assert_eq!(s(&out, &["link"]), Some("auth0|tp_other"));
}

#[test]
fn the_shortcut_for_all_acknowledged_is_offered_only_when_nothing_is_looked_up() {
    let pending = meta_with(
        r#"[{"product":"paste","id":"p2","proof":"password","verified":true}]"#,
        r#","pending":["collect"]"#,
    );
    let out = plan_value(&input("execute", pending, true, Map::new()));
    assert_eq!(out.get("lookups"), Some(&j(r#"["collect"]"#)));
    assert_eq!(
        out.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(1)
    );
    assert_eq!(out.get("acknowledged"), None, "{}", out.to_json());
}

/// `apply` for this user with `record`, the products answering `lookups` (JSON), and `products`.
fn applied_with(record: &str, lookups: &str, products: &[&str]) -> Value {
    apply_value(
        Map::new()
            .with("user", user_of(j(&format!(r#"{{"trickle":{record}}}"#))))
            .with("lookups", j(lookups))
            .with("products", products.to_vec()),
    )
}

const HELD_RECORD: &str = r#"{"v":1,"person_id":"tp_1","pending":["paste"],"accounts":[
    {"product":"collect","id":"p1","proof":"password","verified":true,"fanout":true},
    {"product":"paste","id":"p9","proof":"password","verified":true,"fanout":true},
    {"product":"paste","id":"p1","proof":"identity","verified":true,"held":true}]}"#;

fn paste_answer(told: Option<&str>) -> String {
    let told = told.map_or("null".to_owned(), |t| format!(r#""{t}""#));
    format!(
        r#"[{{"name":"paste","accounts":[{{"id":"p9","email":"multi@example.com","auth0_user_id":"{USER}"}},{{"id":"p1","email":"multi@example.com","auth0_user_id":{told}}}]}}]"#
    )
}

#[test]
fn a_proven_account_whose_holder_was_unknown_is_read_again_and_told_when_nobody_else_holds_it() {
    let out = applied_with(HELD_RECORD, &paste_answer(None), &["paste", "collect"]);
    assert!(
        out.to_json().contains("account_holder_read"),
        "{}",
        out.to_json()
    );
    assert_eq!(out.get("relink"), None);
    assert_eq!(
        out.get("fanout"),
        Some(&j(&format!(
            r#"[{{"product":"paste","account":"p1","auth0_user_id":"{USER}"}}]"#
        )))
    );
    let accounts = accounts_set(&out).unwrap_or_default().to_json();
    assert!(
        accounts.contains(r#"{"product":"paste","id":"p1","proof":"identity","verified":true}"#),
        "{accounts}"
    );
    // Without the products (an answer for the shell to plan again with): the same read, relink.
    let out = applied_with(HELD_RECORD, &paste_answer(None), &[]);
    assert_eq!(out.get("relink"), Some(&Value::Bool(true)));
    assert_eq!(out.get("fanout"), None);
}

#[test]
fn a_proven_account_another_user_holds_is_joined_not_told() {
    let out = applied_with(
        HELD_RECORD,
        &paste_answer(Some("auth0|tp_other")),
        &["paste", "collect"],
    );
    assert_eq!(
        out.get("relink"),
        Some(&Value::Bool(true)),
        "{}",
        out.to_json()
    );
    assert_eq!(out.get("fanout"), None);
    let accounts = accounts_set(&out).unwrap_or_default().to_json();
    assert!(
        accounts.contains(r#"{"product":"paste","id":"p1","proof":"identity","verified":true,"linked":"auth0|tp_other"}"#),
        "{accounts}"
    );
    // The product naming this user itself is no news: nothing read, nothing told.
    let settled = HELD_RECORD.replace(r#","held":true"#, "");
    let out = applied_with(&settled, &paste_answer(Some(USER)), &["paste", "collect"]);
    assert!(
        !out.to_json().contains("account_holder_read"),
        "{}",
        out.to_json()
    );
    assert_eq!(out.get("relink"), None);
    assert_eq!(out.get("fanout"), None);
}
