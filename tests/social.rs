//! Social logins: what an identity proves, what an address does not, and when two tenant users
//! are joined. Every attack of docs/ownership.md's social section is here as a pure decision.
#![cfg(feature = "chain")]

use trickle::chain::{self, ApplyInput, LinkInput, PlanInput};
use trickle::json::{self, Map, Value};

const SECRET: &str = "a-test-secret-that-is-32-bytes-long!!";
const PRODUCTS: [&str; 3] = ["paste", "collect", "transfer"];

fn j(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| unreachable!("{text}: {e:?}"))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

struct Login<'a> {
    user_id: &'a str,
    email: &'a str,
    email_verified: bool,
    connection: &'a str,
    subject: &'a str,
    hd: Option<&'a str>,
    app_metadata: Value,
}

fn google(email: &str, verified: bool) -> Login<'_> {
    Login {
        user_id: "google-oauth2|1001",
        email,
        email_verified: verified,
        connection: "google-oauth2",
        subject: "1001",
        hd: None,
        app_metadata: Value::Object(Map::new()),
    }
}

fn slack(email: &str) -> Login<'_> {
    Login {
        user_id: "oauth2|sign-in-with-slack|T9-U9",
        email,
        email_verified: true,
        connection: "sign-in-with-slack",
        subject: "T9-U9",
        hd: None,
        app_metadata: Value::Object(Map::new()),
    }
}

/// The user as the post-login event shows it.
fn user_of(l: &Login) -> Map {
    Map::new()
        .with("user_id", l.user_id)
        .with("email", l.email)
        .with("email_verified", l.email_verified)
        .with("app_metadata", l.app_metadata.clone())
}

fn plan_of(l: &Login, phase: &str) -> Value {
    let input = Map::new()
        .with("phase", phase)
        .with("now", 1_800_000_000_i64)
        .with("user", user_of(l))
        .with(
            "transaction",
            Map::new()
                .with("can_redirect", true)
                .with("state", "st-1")
                .with("connection", l.connection),
        )
        .with(
            "config",
            Map::new()
                .with("products", PRODUCTS.to_vec())
                .with("merge_url", "https://merge.example.com/merge")
                .with("token_secret", SECRET)
                .with("connection", "trickle")
                .with(
                    "social",
                    vec!["google-oauth2", "apple", "sign-in-with-slack"],
                ),
        )
        .with("jti", "jti-aaaaaaaaaaaaaaaa")
        .with(
            "identity",
            Map::new()
                .with("provider", l.connection)
                .with("subject", l.subject)
                .with_opt("hd", l.hd),
        );
    let input = PlanInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}"));
    chain::plan(&input).to_value()
}

/// One product's answer with these accounts (JSON text of the array).
fn answer(product: &str, accounts: &str) -> Value {
    Map::new()
        .with("name", product)
        .with("body", format!(r#"{{"accounts":{accounts}}}"#))
        .into()
}

/// Discovery: the plan's `discover` echoed with the products' answers by identity and address.
fn discover(l: &Login, by_identity: Vec<Value>, by_email: Vec<Value>) -> (Value, Value) {
    let plan = plan_of(l, "execute");
    let d = plan.get("discover").cloned().unwrap_or(Value::Null);
    let input = Map::new()
        .with("user", user_of(l))
        .with("fanout", Vec::<Value>::new())
        .with("lookups", by_email)
        .with("identity_lookups", by_identity)
        .with("products", PRODUCTS.to_vec())
        .with("discover", d.clone());
    let applied = chain::apply(
        &ApplyInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    );
    (d, applied.to_value())
}

fn record(applied: &Value) -> Value {
    applied
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn proofs(record: &Value) -> Vec<(String, Option<String>)> {
    record
        .get("accounts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        format!(
                            "{}:{}",
                            s(x, &["product"]).unwrap_or(""),
                            s(x, &["id"]).unwrap_or("")
                        ),
                        s(x, &["proof"]).map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn with_record(mut l: Login<'_>, record: Value) -> Login<'_> {
    l.app_metadata = Map::new().with("trickle", record).into();
    l
}

const GOOGLE_ACCOUNT: &str = r#"[{"id":"c5","email":"ann@gmail.com","email_verified":true,"password":null,
    "identities":[{"provider":"google-oauth2","subject":"1001"}]}]"#;

#[test]
fn the_identity_a_product_holds_proves_that_account_and_it_learns_the_social_user_id() {
    let l = google("ann@gmail.com", false);
    let plan = plan_of(&l, "execute");
    assert_eq!(s(&plan, &["discover", "provider"]), Some("google-oauth2"));
    assert_eq!(
        plan.get("lookups").and_then(Value::as_array).map(Vec::len),
        Some(3)
    );
    let (_, applied) = discover(
        &l,
        vec![answer("collect", GOOGLE_ACCOUNT)],
        vec![answer("collect", GOOGLE_ACCOUNT)],
    );
    let rec = record(&applied);
    assert_eq!(
        proofs(&rec),
        [("collect:c5".to_owned(), Some("identity".to_owned()))]
    );
    // The next plan, with the record: migrated at once, the account told the social user's id.
    let plan = plan_of(&with_record(google("ann@gmail.com", false), rec), "execute");
    assert_eq!(s(&plan, &["outcome"]), Some("continue"));
    let f = plan
        .get("fanout")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert_eq!(f.len(), 1);
    assert_eq!(
        s(f.first().unwrap_or(&Value::Null), &["auth0_user_id"]),
        Some("google-oauth2|1001")
    );
}

#[test]
fn an_account_the_product_returns_for_the_identity_without_holding_it_is_not_proven() {
    let l = google("ann@gmail.com", false);
    let wrong = r#"[{"id":"c5","email":"ann@gmail.com","email_verified":true,
        "identities":[{"provider":"google-oauth2","subject":"1002"}]}]"#;
    let (_, applied) = discover(&l, vec![answer("collect", wrong)], vec![]);
    assert!(proofs(&record(&applied)).is_empty());
    let events = applied.get("events").unwrap_or(&Value::Null).to_json();
    assert!(events.contains("identity.mismatch"), "{events}");
}

#[test]
fn a_slack_workspace_asserting_the_victims_address_gets_a_candidate_only_and_the_merge_redirect() {
    let victim = r#"[{"id":"p1","email":"victim@corp.example","email_verified":true,
        "password":{"algorithm":"bcrypt","hash":{"value":"$2b$10$abcdefghijklmnopqrstuu5Ttx9wKcTn/j9PQmnqT8G0l5wbW6E9i"}},
        "auth0_user_id":"auth0|tp_victim"}]"#;
    let l = slack("victim@corp.example");
    let (d, applied) = discover(&l, vec![], vec![answer("paste", victim)]);
    assert_eq!(d.get("vouched"), Some(&Value::Bool(false)));
    let rec = record(&applied);
    assert_eq!(proofs(&rec), [("paste:p1".to_owned(), None)]);
    // No link on the address alone, no fan-out: the mailbox must be proven first.
    let plan = plan_of(&with_record(slack("victim@corp.example"), rec), "execute");
    assert_eq!(s(&plan, &["outcome"]), Some("redirect"));
    assert_eq!(plan.get("link"), None);
    assert_eq!(
        plan.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(0)
    );
}

#[test]
fn only_a_provider_that_is_the_addresses_mail_provider_vouches_for_it() {
    let acct = |email: &str| {
        format!(
            r#"[{{"id":"p1","email":"{email}","email_verified":true,"auth0_user_id":"auth0|tp_victim"}}]"#
        )
    };
    // Google, verified, gmail.com: the mailbox itself.
    let l = google("ann@gmail.com", true);
    let (d, applied) = discover(&l, vec![], vec![answer("paste", &acct("ann@gmail.com"))]);
    assert_eq!(d.get("vouched"), Some(&Value::Bool(true)));
    assert_eq!(
        proofs(&record(&applied)),
        [("paste:p1".to_owned(), Some("provider".to_owned()))]
    );
    // Google says the address is not verified: nothing.
    let (d, _) = discover(
        &google("ann@gmail.com", false),
        vec![],
        vec![answer("paste", &acct("ann@gmail.com"))],
    );
    assert_eq!(d.get("vouched"), Some(&Value::Bool(false)));
    // A Google account (not Workspace) asserting another domain's address: nothing.
    let (d, _) = discover(&google("victim@corp.example", true), vec![], vec![]);
    assert_eq!(d.get("vouched"), Some(&Value::Bool(false)));
    // Workspace: hd must be the address's own domain.
    let mut w = google("victim@corp.example", true);
    w.hd = Some("attacker.example");
    assert_eq!(
        plan_of(&w, "execute")
            .get("discover")
            .and_then(|d| d.get("vouched")),
        Some(&Value::Bool(false))
    );
    w.hd = Some("corp.example");
    assert_eq!(
        plan_of(&w, "execute")
            .get("discover")
            .and_then(|d| d.get("vouched")),
        Some(&Value::Bool(true))
    );
    // Slack never vouches, Apple not for a relay address nor for another provider's domain.
    let (d, _) = discover(&slack("ann@gmail.com"), vec![], vec![]);
    assert_eq!(d.get("vouched"), Some(&Value::Bool(false)));
    let apple = |email| Login {
        user_id: "apple|000123.abc",
        email,
        email_verified: true,
        connection: "apple",
        subject: "000123.abc",
        hd: None,
        app_metadata: Value::Object(Map::new()),
    };
    for email in ["x7f3@privaterelay.appleid.com", "ann@gmail.com"] {
        assert_eq!(
            plan_of(&apple(email), "execute")
                .get("discover")
                .and_then(|d| d.get("vouched")),
            Some(&Value::Bool(false)),
            "{email}"
        );
    }
    assert_eq!(
        plan_of(&apple("ann@icloud.com"), "execute")
            .get("discover")
            .and_then(|d| d.get("vouched")),
        Some(&Value::Bool(true))
    );
    // Even when vouched, an account whose product never verified the address stays a candidate.
    let unverified = r#"[{"id":"p9","email":"ann@gmail.com","email_verified":false}]"#;
    let (_, applied) = discover(
        &google("ann@gmail.com", true),
        vec![],
        vec![answer("paste", unverified)],
    );
    assert_eq!(proofs(&record(&applied)), [("paste:p9".to_owned(), None)]);
}

fn rec_text(person: &str, accounts: &str) -> Value {
    j(&format!(
        r#"{{"v":1,"person_id":"{person}","accounts":{accounts}}}"#
    ))
}

#[test]
fn a_proven_account_that_another_user_proved_first_links_into_that_user() {
    // The person signed in with their password first: auth0|tp_ann holds paste:p1 and collect:c5.
    let primary_rec = rec_text(
        "tp_ann",
        r#"[{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true},
            {"product":"collect","id":"c5","proof":"merge","verified":true,"fanout":true}]"#,
    );
    // Now Google: collect:c5 holds the identity and was told auth0|tp_ann.
    let found = r#"[{"id":"c5","email":"ann@gmail.com","email_verified":true,"auth0_user_id":"auth0|tp_ann",
        "identities":[{"provider":"google-oauth2","subject":"1001"}]}]"#;
    let l = google("ann@gmail.com", false);
    let (_, applied) = discover(
        &l,
        vec![answer("collect", found)],
        vec![answer("collect", found)],
    );
    let rec = record(&applied);
    let plan = plan_of(
        &with_record(google("ann@gmail.com", false), rec.clone()),
        "execute",
    );
    assert_eq!(s(&plan, &["link"]), Some("auth0|tp_ann"));
    assert_eq!(
        plan.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(0)
    );
    let link = |primary_rec: Value| link_of(Some(primary_rec), rec.clone());
    let linked = link(primary_rec);
    assert_eq!(s(&linked, &["outcome"]), Some("link"));
    // The newcomer joins the existing user: it is the secondary, never the primary.
    assert_eq!(s(&linked, &["identity", "provider"]), Some("google-oauth2"));
    assert_eq!(s(&linked, &["identity", "user_id"]), Some("1001"));
    assert_eq!(
        s(&linked, &["set_app_metadata", "trickle", "person_id"]),
        Some("tp_ann")
    );
    // A pointer the primary's own record does not back (no such account, or not proven there)
    // is refused: a product's answer alone never joins two users.
    for forged in [
        rec_text(
            "tp_ann",
            r#"[{"product":"paste","id":"p1","proof":"password","verified":true}]"#,
        ),
        rec_text(
            "tp_ann",
            r#"[{"product":"collect","id":"c5","verified":true}]"#,
        ),
    ] {
        let refused = link(forged);
        assert_eq!(s(&refused, &["outcome"]), Some("refused"));
        assert!(refused.to_json().contains("link.not_proven"));
    }
}

#[test]
fn an_unproven_candidate_pointing_at_another_user_never_links() {
    let rec = rec_text(
        "tp_g",
        r#"[{"product":"paste","id":"p1","verified":true,"linked":"auth0|tp_victim"}]"#,
    );
    let plan = plan_of(&with_record(slack("victim@corp.example"), rec), "execute");
    assert_eq!(plan.get("link"), None);
    assert_eq!(s(&plan, &["outcome"]), Some("redirect"));
}

#[test]
fn logins_of_connections_not_configured_as_social_pass_untouched() {
    let mut l = google("ann@gmail.com", true);
    l.connection = "github";
    let plan = plan_of(&l, "execute");
    assert!(plan.to_json().contains("chain_other_connection"));
    assert_eq!(plan.get("discover"), None);
}

/// A tenant user of another connection (no social identity), as the Management API shows it.
fn other_user<'a>(user_id: &'a str, email: &'a str, email_verified: bool) -> Login<'a> {
    Login {
        user_id,
        email,
        email_verified,
        connection: "",
        subject: "",
        hd: None,
        app_metadata: Value::Object(Map::new()),
    }
}

fn link_of(primary_rec: Option<Value>, secondary_rec: Value) -> Value {
    let mut input = Map::new()
        .with("target", "auth0|tp_ann")
        .with(
            "secondary",
            user_of(&with_record(google("ann@gmail.com", false), secondary_rec)),
        )
        .with("products", PRODUCTS.to_vec());
    if let Some(rec) = primary_rec {
        input.insert(
            "primary",
            user_of(&with_record(
                other_user("auth0|tp_ann", "ann@gmail.com", true),
                rec,
            )),
        );
    }
    chain::link(&LinkInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}")))
        .to_value()
}

#[test]
fn a_stale_pointer_is_forgotten_on_refusal_so_the_chain_goes_on_for_this_user() {
    let secondary = rec_text(
        "tp_g",
        r#"[{"product":"collect","id":"c5","proof":"identity","verified":true,"linked":"auth0|tp_ann"}]"#,
    );
    // The named user is gone, or no longer holds the account with a proof.
    for primary in [
        None,
        Some(rec_text(
            "tp_ann",
            r#"[{"product":"collect","id":"c5","verified":true}]"#,
        )),
    ] {
        let out = link_of(primary, secondary.clone());
        assert_eq!(s(&out, &["outcome"]), Some("refused"));
        let cleaned = out
            .get("set_secondary")
            .and_then(|m| m.get("trickle"))
            .cloned()
            .unwrap_or(Value::Null);
        assert!(cleaned.to_json().contains("\"c5\""), "{}", out.to_json());
        assert!(!cleaned.to_json().contains("linked"), "{}", out.to_json());
        // With the pointer gone, the next plan tells the account this user.
        let plan = plan_of(
            &with_record(google("ann@gmail.com", false), cleaned),
            "execute",
        );
        assert_eq!(plan.get("link"), None);
        let told = plan.get("fanout").and_then(Value::as_array).map(Vec::len);
        assert_eq!(told, Some(1));
    }
}

#[test]
fn joining_takes_only_proven_accounts_nobody_else_holds() {
    let primary = rec_text(
        "tp_ann",
        r#"[{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true}]"#,
    );
    let secondary = rec_text(
        "tp_g",
        r#"[{"product":"paste","id":"p1","proof":"identity","verified":true,"linked":"auth0|tp_ann"},
            {"product":"collect","id":"y","proof":"identity","verified":true,"linked":"apple|someone-else"},
            {"product":"transfer","id":"t9","verified":true,"held":true},
            {"product":"transfer","id":"z","verified":true}]"#,
    );
    let out = link_of(Some(primary), secondary);
    assert_eq!(s(&out, &["outcome"]), Some("link"));
    let rec = record(&out);
    // Not collect:y (another user holds it), not transfer:t9 (its holder unknown), and not the
    // candidate transfer:z: it belongs to the address that found it, not to the primary's mailbox.
    let ids: Vec<String> = proofs(&rec).into_iter().map(|(k, _)| k).collect();
    assert_eq!(ids, ["paste:p1"]);
    assert_eq!(
        out.get("set_app_metadata").and_then(|m| m.get("migrated")),
        None
    );
    assert_eq!(
        out.get("fanout").and_then(Value::as_array).map(Vec::len),
        Some(0)
    );
}

/// A Slack workspace asserted the victim's address: the record the stranger's user gets, with the
/// victim's paste account (which the product told the victim's user) as a candidate.
fn strangers_record_with_victims_candidate() -> Value {
    let victim = r#"[{"id":"p1","email":"victim@corp.example","email_verified":true,"auth0_user_id":"auth0|tp_victim"}]"#;
    let (_, applied) = discover(
        &slack("victim@corp.example"),
        vec![],
        vec![answer("paste", victim)],
    );
    record(&applied)
}

#[test]
fn when_the_users_address_changes_the_candidates_found_by_the_old_one_are_dropped() {
    let rec = strangers_record_with_victims_candidate();
    // The candidate's holder is not written into the stranger's user.
    assert!(!rec.to_json().contains("tp_victim"), "{}", rec.to_json());
    assert_eq!(s(&rec, &["address"]), Some("victim@corp.example"));
    // The member now asserts the attacker's own mailbox: the victim's account is gone, no merge.
    let mut rec_with_merge = rec.clone();
    if let Value::Object(m) = &mut rec_with_merge {
        m.insert(
            "merge",
            j(r#"{"attempts":1,"jti":"jti-aaaaaaaaaaaaaaaa","issued_at":1800000000}"#),
        );
    }
    let plan = plan_of(
        &with_record(slack("mallory@attacker.example"), rec_with_merge),
        "execute",
    );
    assert_eq!(s(&plan, &["outcome"]), Some("continue"));
    let after = record(&plan);
    assert!(proofs(&after).is_empty(), "{}", after.to_json());
    assert_eq!(after.get("merge"), None);
    assert_eq!(s(&after, &["address"]), Some("mallory@attacker.example"));
    assert!(plan.to_json().contains("address_changed"));
}

#[test]
fn a_strangers_record_names_no_victim_neither_by_pointer_nor_by_person_id() {
    let rec = strangers_record_with_victims_candidate();
    assert_ne!(
        s(&rec, &["person_id"]),
        Some(trickle::person::derived_person_id("paste", "p1").as_str()),
        "the person id comes from proven accounts only"
    );
    // A pending product answering later: an account another user holds is recorded as held.
    let input = Map::new()
        .with(
            "user",
            Map::new()
                .with("user_id", "auth0|tp_b")
                .with("email", "b@x.example")
                .with("email_verified", true)
                .with(
                    "app_metadata",
                    Map::new().with(
                        "trickle",
                        rec_text("tp_b", r#"[{"product":"paste","id":"p1","proof":"password","verified":true}]"#)
                            .with_pending(),
                    ),
                ),
        )
        .with("fanout", Vec::<Value>::new())
        .with(
            "lookups",
            vec![answer(
                "collect",
                r#"[{"id":"c9","email":"b@x.example","email_verified":true,"auth0_user_id":"google-oauth2|OTHER"}]"#,
            )],
        );
    let applied = chain::apply(
        &ApplyInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    );
    let rec = record(&applied.to_value());
    let c9 = rec
        .get("accounts")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| s(x, &["id"]) == Some("c9")))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        c9.get("held"),
        Some(&Value::Bool(true)),
        "{}",
        rec.to_json()
    );
    assert!(!rec.to_json().contains("OTHER"));
}

trait WithPending {
    fn with_pending(self) -> Value;
}

impl WithPending for Value {
    fn with_pending(mut self) -> Value {
        if let Value::Object(m) = &mut self {
            m.insert("pending", vec!["collect"]);
        }
        self
    }
}

#[test]
fn a_person_with_candidates_of_their_own_merges_before_joining_so_none_is_left_behind() {
    let rec = rec_text(
        "tp_d",
        r#"[{"product":"collect","id":"c5","proof":"password","verified":true,"linked":"google-oauth2|777"},
            {"product":"transfer","id":"t9","verified":true}]"#,
    );
    let plan = plan_of(
        &with_record(google("pat@example.org", false), rec),
        "execute",
    );
    // (the Login helper is a social one; the decision is the same for a database user)
    assert_eq!(
        s(&plan, &["outcome"]),
        Some("redirect"),
        "{}",
        plan.to_json()
    );
    assert_eq!(plan.get("link"), None);
}

#[test]
fn a_product_answering_that_another_user_holds_the_account_makes_this_user_join_it() {
    // The person skipped a merge as Slack user S, then signed in with their password (the
    // database user D proved the account and told it); S now completes the merge: the product
    // refuses to store S over D (409) and names D, which S joins instead of overwriting it.
    let rec = rec_text(
        "tp_s",
        r#"[{"product":"paste","id":"p1","proof":"merge","verified":true}]"#,
    );
    let input = Map::new()
        .with(
            "user",
            user_of(&with_record(
                other_user("sign-in-with-slack|U1", "ann@corp.example", true),
                rec,
            )),
        )
        .with(
            "fanout",
            vec![Value::from(
                Map::new()
                    .with("product", "paste")
                    .with("account", "p1")
                    .with("ok", false)
                    .with("holder", "auth0|tp_d"),
            )],
        )
        .with("lookups", Vec::<Value>::new())
        .with("products", PRODUCTS.to_vec());
    let applied = chain::apply(
        &ApplyInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    );
    assert!(applied.relink);
    let rec = record(&applied.to_value());
    assert!(
        rec.to_json().contains(r#""linked":"auth0|tp_d""#),
        "{}",
        rec.to_json()
    );
    // The next plan joins D (the Action reads D's record before anything else).
    let plan = plan_of(&with_record(slack("ann@corp.example"), rec), "execute");
    assert_eq!(s(&plan, &["link"]), Some("auth0|tp_d"));
}

#[test]
fn a_forgotten_stale_pointer_is_replaced_at_the_product_by_name() {
    let rec = rec_text(
        "tp_g",
        r#"[{"product":"collect","id":"c5","proof":"identity","verified":true,"stale":"auth0|tp_gone"}]"#,
    );
    let plan = plan_of(&with_record(google("ann@gmail.com", false), rec), "execute");
    let body = plan
        .get("fanout")
        .and_then(Value::as_array)
        .and_then(|f| f.first())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(s(&body, &["replace"]), Some("auth0|tp_gone"));
    assert_eq!(s(&body, &["auth0_user_id"]), Some("google-oauth2|1001"));
}

#[test]
fn a_support_link_on_a_workspaces_word_never_becomes_the_primary_of_the_proper_owner() {
    // Issue 19, finding 2: the attacker's Slack user got the victim's account as a candidate and
    // support linked it. The victim proves it by identity (or password, or mailbox): the product
    // answers 409 with the attacker's user, and joining must be refused.
    let attacker_rec = j(
        r#"{"v":1,"person_id":"tp_ann","address":"ann@gmail.com","address_from":"sign-in-with-slack",
            "accounts":[{"product":"collect","id":"c5","proof":"support","verified":true,"fanout":true}]}"#,
    );
    let victim = rec_text(
        "tp_g",
        r#"[{"product":"collect","id":"c5","proof":"identity","verified":true,"linked":"auth0|tp_ann"}]"#,
    );
    let out = link_of(Some(attacker_rec), victim.clone());
    assert_eq!(s(&out, &["outcome"]), Some("refused"), "{}", out.to_json());
    assert!(out.to_json().contains("link.not_proven"));
    // The pointer is forgotten: the victim's user is told, replacing the attacker's id.
    let cleaned = out
        .get("set_secondary")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or(Value::Null);
    let plan = plan_of(
        &with_record(google("ann@gmail.com", false), cleaned),
        "execute",
    );
    assert_eq!(plan.get("link"), None);
    assert_eq!(
        s(&plan, &["fanout", "0", "replace"]).or_else(|| plan
            .get("fanout")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|r| r.get("replace"))
            .and_then(Value::as_str)),
        Some("auth0|tp_ann")
    );
    // A support link made on an address nobody disputes still takes the person in.
    let vouched_rec = j(
        r#"{"v":1,"person_id":"tp_ann","accounts":[{"product":"collect","id":"c5","proof":"support","verified":true,"fanout":true}]}"#,
    );
    let out = link_of(Some(vouched_rec), victim);
    assert_eq!(s(&out, &["outcome"]), Some("link"), "{}", out.to_json());
}

#[test]
fn a_first_slack_login_records_whose_word_the_address_is_and_google_on_gmail_does_not() {
    let victim = r#"[{"id":"p1","email":"victim@corp.example","email_verified":true}]"#;
    let (_, applied) = discover(
        &slack("victim@corp.example"),
        vec![],
        vec![answer("paste", victim)],
    );
    assert_eq!(
        s(&record(&applied), &["address_from"]),
        Some("sign-in-with-slack")
    );
    let mine = r#"[{"id":"p1","email":"ann@gmail.com","email_verified":true}]"#;
    let (_, applied) = discover(
        &google("ann@gmail.com", true),
        vec![],
        vec![answer("paste", mine)],
    );
    assert_eq!(record(&applied).get("address_from"), None);
}

#[test]
fn a_newcomer_proven_only_by_support_yields_to_a_holder_who_proved_the_account() {
    // Support linked collect:c5 to this user by mistake (the holder's fan-out was pending): the
    // product answers 409 naming the holder, who proved it by password. No join, no replace:
    // the support proof is withdrawn and the account stays someone else's.
    let holder = rec_text(
        "tp_ann",
        r#"[{"product":"collect","id":"c5","proof":"password","verified":true,"fanout":true}]"#,
    );
    let newcomer = rec_text(
        "tp_g",
        r#"[{"product":"collect","id":"c5","proof":"support","verified":true,"linked":"auth0|tp_ann"}]"#,
    );
    let out = link_of(Some(holder), newcomer);
    assert_eq!(s(&out, &["outcome"]), Some("refused"), "{}", out.to_json());
    let text = out.to_json();
    assert!(
        text.contains("link.outranked") && text.contains("support_proof_withdrawn"),
        "{text}"
    );
    let cleaned = out
        .get("set_secondary")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        cleaned.get("accounts"),
        Some(&j(
            r#"[{"product":"collect","id":"c5","verified":true,"held":true}]"#
        ))
    );
    // The next login tells nothing and joins nobody.
    let plan = plan_of(
        &with_record(google("ann@gmail.com", false), cleaned),
        "execute",
    );
    assert_eq!(plan.get("link"), None);
    assert_eq!(plan.get("fanout"), Some(&j("[]")));
}

#[test]
fn discovery_waits_for_every_answer_and_records_each_account_once() {
    let l = google("ann@gmail.com", true);
    let ok = |p: &str| answer(p, "[]");
    // Every product answered for the identity, but collect failed for the address: nothing is
    // recorded, the next login asks again.
    let failed = Map::new()
        .with("name", "collect")
        .with("error", "HTTP 503")
        .into();
    let (_, applied) = discover(
        &l,
        vec![ok("paste"), ok("collect"), ok("transfer")],
        vec![ok("paste"), failed, ok("transfer")],
    );
    assert_eq!(record(&applied), Value::Null, "{}", applied.to_json());
    assert!(applied.to_json().contains("social_discovery_incomplete"));
    // The identity's account found again by address is one account, proven by the identity;
    // another account of the same product, and one with the same id elsewhere, are candidates.
    let by_identity = answer(
        "paste",
        r#"[{"id":"p9","email":"ann@gmail.com","email_verified":true,"auth0_user_id":"auth0|tp_ann",
            "identities":[{"provider":"google-oauth2","subject":"1001"}]}]"#,
    );
    let by_email_paste = answer(
        "paste",
        r#"[{"id":"p9","email":"ann@gmail.com","email_verified":true},{"id":"p3","email":"ann@gmail.com","email_verified":false}]"#,
    );
    let by_email_collect = answer(
        "collect",
        r#"[{"id":"p9","email":"ann@gmail.com","email_verified":false,"auth0_user_id":"auth0|someone"}]"#,
    );
    let (_, applied) = discover(
        &l,
        vec![by_identity, ok("collect"), ok("transfer")],
        vec![by_email_paste, by_email_collect, ok("transfer")],
    );
    let rec = record(&applied);
    assert_eq!(rec.get("v").and_then(Value::as_i64), Some(1));
    assert!(
        s(&rec, &["person_id"]).is_some_and(|p| p.starts_with("tp_")),
        "{}",
        rec.to_json()
    );
    assert_eq!(
        rec.get("accounts"),
        Some(&j(
            r#"[{"product":"paste","id":"p9","proof":"identity","verified":true,"linked":"auth0|tp_ann"},
                {"product":"paste","id":"p3"},{"product":"collect","id":"p9","held":true}]"#
        )),
        "{}",
        rec.to_json()
    );
}

#[test]
fn a_link_needs_a_user_id_of_two_parts_and_the_newcomers_proof_of_an_account_the_primary_holds() {
    // This user proved paste:p1 on its own (no pointer) and collect:c5, which a product said the
    // primary holds; the primary holds paste:p1 with a proof, but has collect:c5 only as a
    // candidate: no shared account is proven by both, so no join.
    let primary = rec_text(
        "tp_ann",
        r#"[{"product":"paste","id":"p1","proof":"password","verified":true},{"product":"collect","id":"c5","verified":true}]"#,
    );
    let secondary = rec_text(
        "tp_g",
        r#"[{"product":"paste","id":"p1","proof":"identity","verified":true},{"product":"collect","id":"c5","proof":"identity","verified":true,"linked":"auth0|tp_ann"}]"#,
    );
    let out = link_of(Some(primary), secondary.clone());
    assert_eq!(s(&out, &["outcome"]), Some("refused"), "{}", out.to_json());
    // A user id without both parts is never linked.
    let mut input = Map::new()
        .with("target", "auth0|tp_ann")
        .with(
            "secondary",
            user_of(&with_record(
                other_user("|T9", "ann@gmail.com", true),
                secondary,
            )),
        )
        .with("products", PRODUCTS.to_vec());
    input.insert("primary", Value::Null);
    let out = chain::link(
        &LinkInput::from_value(&input.into()).unwrap_or_else(|e| unreachable!("{e:?}")),
    )
    .to_value();
    assert!(out.to_json().contains("link.user_id"), "{}", out.to_json());
}

#[test]
fn a_join_keeps_the_primarys_own_proofs_and_withdraws_only_the_yielding_account() {
    // The primary proved paste:p1 by password and was told; the newcomer proved it by identity.
    // Its candidates with the same id elsewhere, or in the same product, stay candidates.
    let primary = rec_text(
        "tp_ann",
        r#"[{"product":"collect","id":"p1"},{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true},{"product":"paste","id":"p7"}]"#,
    );
    let secondary = j(
        r#"{"v":1,"person_id":"tp_g","pending":["transfer"],"accounts":[{"product":"paste","id":"p1","proof":"identity","verified":true,"linked":"auth0|tp_ann"}]}"#,
    );
    let out = link_of(Some(primary), secondary);
    assert_eq!(s(&out, &["outcome"]), Some("link"), "{}", out.to_json());
    // What the newcomer could not look up yet is looked up by the primary.
    assert_eq!(
        out.get("set_app_metadata")
            .and_then(|m| m.get("trickle"))
            .and_then(|t| t.get("pending")),
        Some(&j(r#"["transfer"]"#))
    );
    let joined = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .and_then(|t| t.get("accounts"))
        .cloned();
    assert_eq!(
        joined,
        Some(j(
            r#"[{"product":"collect","id":"p1"},{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true},{"product":"paste","id":"p7"}]"#
        ))
    );
    // A newcomer proven only by support yields collect:c5; its own paste:c5 (same id, another
    // product) keeps its proof.
    let holder = rec_text(
        "tp_ann",
        r#"[{"product":"collect","id":"c5","proof":"password","verified":true,"fanout":true}]"#,
    );
    let newcomer = rec_text(
        "tp_g",
        r#"[{"product":"collect","id":"c5","proof":"support","verified":true,"linked":"auth0|tp_ann"},
            {"product":"paste","id":"c5","proof":"identity","verified":true}]"#,
    );
    let out = link_of(Some(holder), newcomer);
    let kept = out
        .get("set_secondary")
        .and_then(|m| m.get("trickle"))
        .and_then(|t| t.get("accounts"))
        .cloned();
    assert_eq!(
        kept,
        Some(j(
            r#"[{"product":"collect","id":"c5","verified":true,"held":true},{"product":"paste","id":"c5","proof":"identity","verified":true}]"#
        ))
    );
}

#[test]
fn a_changed_address_of_a_social_user_is_its_providers_word_only_where_it_vouches() {
    let rec = j(
        r#"{"v":1,"person_id":"tp_g","address":"old@gmail.com","accounts":[{"product":"paste","id":"p1","proof":"identity","verified":true}]}"#,
    );
    // Google, a Gmail address it verified: vouched, no provenance kept.
    let out = plan_of(
        &with_record(google("new@gmail.com", true), rec.clone()),
        "execute",
    );
    let written = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(s(&written, &["address"]), Some("new@gmail.com"));
    assert_eq!(written.get("address_from"), None, "{}", written.to_json());
    // An address of a domain Google does not host: Google's word only.
    let out = plan_of(
        &with_record(google("new@corp.example", true), rec),
        "execute",
    );
    let written = out
        .get("set_app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(s(&written, &["address_from"]), Some("google-oauth2"));
}
