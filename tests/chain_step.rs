//! The post-login chain as a step machine (issue 19): the shell performs what `chain::step`
//! names and reports results; every rule of the login (discovery, the merge, the relink, the
//! join and its undo, the deadline) is decided here, with the results a shell would report.
#![cfg(feature = "chain")]

use trickle::chain::{self, StepInput};
use trickle::json::{self, Map, Value};
use trickle::token;

const SECRET: &str = "a-test-secret-that-is-32-bytes-long!!";
const NOW: i64 = 1_700_000_000;
const ME: &str = "auth0|tp_me";
const PRIMARY: &str = "google-oauth2|primary";

fn j(text: &str) -> Value {
    json::parse(text).unwrap_or_else(|e| unreachable!("{text}: {e:?}"))
}

fn login(phase: &str, user: Value, connection: &str, can_redirect: bool, extra: &str) -> Value {
    j(&format!(
        r#"{{"phase":"{phase}","now":{NOW},"user":{user},
            "transaction":{{"can_redirect":{can_redirect},"state":"st-1","connection":"{connection}"}},
            "config":{{"products":["paste","collect"],"merge_url":"https://merge.example.com/merge","token_secret":"{SECRET}",
                      "connection":"trickle","social":["google-oauth2","sign-in-with-slack"],"lookup_timeout_ms":2000,"fanout_budget_ms":1500,
                      "link":true,"connection_id":"con_1"}},
            "jti":"jti-aaaaaaaaaaaaaaaa"{extra}}}"#,
        user = user.to_json()
    ))
}

fn db_user(record: &str, extra_app: &str) -> Value {
    j(&format!(
        r#"{{"user_id":"{ME}","email":"me@example.com","email_verified":true,"app_metadata":{{"trickle":{record}{extra_app}}}}}"#
    ))
}

/// One step: the login and the results so far.
fn step(input: &Value, results: &[Value]) -> Value {
    let v = Map::new()
        .with("input", input.clone())
        .with("results", results.to_vec());
    let answer =
        chain::step(&StepInput::from_owned(v.into()).unwrap_or_else(|e| unreachable!("{e:?}")))
            .unwrap_or_else(|e| unreachable!("{e:?}"));
    j(&answer.to_json())
}

fn effects(a: &Value) -> Vec<String> {
    a.get("effects")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|e| {
                    e.as_object()
                        .and_then(|m| m.iter().next().map(|(k, _)| k.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn effect<'a>(a: &'a Value, i: usize, kind: &str) -> &'a Value {
    a.get("effects")
        .and_then(Value::as_array)
        .and_then(|l| l.get(i))
        .and_then(|e| e.get(kind))
        .unwrap_or_else(|| unreachable!("effect {i} is not {kind}: {}", a.to_json()))
}

fn done(a: &Value) -> Option<&str> {
    a.get("done").and_then(Value::as_str)
}

fn has_event(a: &Value, name: &str) -> bool {
    a.get("events")
        .map(Value::to_json)
        .unwrap_or_default()
        .contains(name)
}

const PROVEN: &str = r#"{"v":1,"person_id":"tp_me","accounts":[{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true}]}"#;

#[test]
fn a_returning_person_is_answered_at_once_and_the_answer_may_be_remembered() {
    let a = step(
        &login(
            "execute",
            db_user(PROVEN, r#","migrated":true"#),
            "trickle",
            true,
            "",
        ),
        &[],
    );
    assert_eq!(done(&a), Some("continue"));
    assert!(effects(&a).is_empty());
    assert_eq!(a.get("quiet"), Some(&Value::Bool(true)));
}

#[test]
fn a_person_with_candidates_is_written_then_sent_to_the_merge_in_one_step() {
    let rec = r#"{"v":1,"person_id":"tp_me","accounts":[{"product":"paste","id":"p1","proof":"password","verified":true},{"product":"collect","id":"c1","verified":true}]}"#;
    let a = step(
        &login("execute", db_user(rec, ""), "trickle", true, ""),
        &[],
    );
    assert_eq!(effects(&a), ["write", "redirect"]);
    assert_eq!(done(&a), Some("redirect"));
    assert!(effect(&a, 0, "write")
        .to_json()
        .contains(r#""shown":["collect:c1"]"#));
    assert_eq!(a.get("quiet"), None);
}

/// Ann's Google login (google-oauth2|1001) with this `app_metadata` and `"identities":[…]`.
fn google_login(app_metadata: &str, identities: &str) -> Value {
    let user = j(&format!(
        r#"{{"user_id":"google-oauth2|1001","email":"ann@gmail.com","email_verified":true,"app_metadata":{app_metadata}}}"#
    ));
    login(
        "execute",
        user,
        "google-oauth2",
        true,
        &format!(",{identities}"),
    )
}

/// The login coming back from a merge that showed collect:c1, this user holding `accounts`.
fn resumed_with(accounts: &str) -> Value {
    let claims = token::claims(
        token::ISS_MERGE,
        token::AUD_TRICKLE,
        ME,
        "jti-aaaaaaaaaaaaaaaa",
        NOW,
        300,
        Map::new().with("state", "st-1").with("outcome", "merged"),
    );
    let tok = token::sign(&claims, SECRET.as_bytes()).unwrap_or_default();
    let rec = format!(
        r#"{{"v":1,"person_id":"tp_me","accounts":{accounts},
            "merge":{{"attempts":1,"jti":"jti-aaaaaaaaaaaaaaaa","issued_at":{NOW},"shown":["collect:c1"]}}}}"#
    );
    login(
        "continue",
        db_user(&rec, ""),
        "trickle",
        true,
        &format!(r#","session_token":"{tok}""#),
    )
}

fn resumed() -> Value {
    resumed_with(
        r#"[{"product":"paste","id":"p1","proof":"password","verified":true},{"product":"collect","id":"c1","verified":true}]"#,
    )
}

#[test]
fn a_resume_tells_the_proven_accounts_and_says_what_follows_when_all_acknowledge() {
    let input = resumed();
    let a = step(&input, &[]);
    assert_eq!(effects(&a), ["write", "ask"]);
    assert_eq!(done(&a), None, "waits for the products");
    let ask = effect(&a, 1, "ask");
    assert_eq!(ask.get("budget_ms").and_then(Value::as_i64), Some(1500));
    let then = ask.get("then").map(Value::to_json).unwrap_or_default();
    assert!(then.contains(r#""fanout":true"#), "{then}");
    // The same answers reported as a result: the same record as `then`.
    let ok = j(
        r#"{"fanout":[{"product":"paste","account":"p1","ok":true},{"product":"collect","account":"c1","ok":true}],"lookups":[],"ms":40}"#,
    );
    let b = step(&input, &[ok]);
    assert_eq!(done(&b), Some("continue"));
    assert_eq!(effects(&b), ["write"]);
    assert_eq!(
        effect(&b, 0, "write").to_json(),
        ask.get("then")
            .and_then(|t| t.get("effects"))
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(|e| e.get("write"))
            .map(Value::to_json)
            .unwrap_or_default()
    );
}

/// A fan-out result in which the product names the primary as holder of collect:c1 (and paste
/// acknowledged, when `paste`), reported at `ms`.
fn held_by_primary(paste: bool, ms: i64) -> Value {
    let p = if paste {
        r#"{"product":"paste","account":"p1","ok":true},"#
    } else {
        ""
    };
    j(&format!(
        r#"{{"fanout":[{p}{{"product":"collect","account":"c1","ok":false,"holder":"{PRIMARY}"}}],"lookups":[],"ms":{ms}}}"#
    ))
}

/// The Management API's answer reading the primary with this record, at `ms`.
fn read_primary(record: &str, ms: i64) -> Value {
    Map::new()
        .with("status", 200i64)
        .with("user", primary_user(record))
        .with("ms", ms)
        .into()
}

/// The link part of an answer's log, as text.
fn link_log(a: &Value) -> String {
    a.get("link").map(Value::to_json).unwrap_or_default()
}

fn primary_user(record: &str) -> Value {
    j(&format!(
        r#"{{"user_id":"{PRIMARY}","email":"me@example.com","email_verified":true,"app_metadata":{{"keep":1,"trickle":{record}}}}}"#
    ))
}

const HOLDS: &str = r#"{"v":1,"person_id":"tp_primary","accounts":[{"product":"collect","id":"c1","proof":"identity","verified":true,"fanout":true}]}"#;

#[test]
fn a_product_naming_another_holder_joins_that_user_step_by_step() {
    let input = resumed();
    // The results a shell reports, one more at each step.
    let mut results = vec![held_by_primary(true, 40)];
    // The relink: planned once more without a redirect, this user joins the holder.
    let a = step(&input, &results);
    assert_eq!(effects(&a), ["write", "read_user"], "{}", a.to_json());
    assert_eq!(
        effect(&a, 1, "read_user").get("id").and_then(Value::as_str),
        Some(PRIMARY)
    );
    results.push(read_primary(HOLDS, 60));
    let b = step(&input, &results);
    assert_eq!(effects(&b), ["patch_user"]);
    let patch = effect(&b, 0, "patch_user").to_json();
    assert!(patch.contains(r#""id":"p1""#), "the joined record: {patch}");
    results.push(j(r#"{"status":200,"ms":80}"#));
    let c = step(&input, &results);
    assert_eq!(effects(&c), ["link_identity"]);
    let li = effect(&c, 0, "link_identity");
    assert_eq!(li.get("provider").and_then(Value::as_str), Some("auth0"));
    assert_eq!(li.get("user_id").and_then(Value::as_str), Some("tp_me"));
    assert_eq!(
        li.get("connection_id").and_then(Value::as_str),
        Some("con_1")
    );
    results.push(j(r#"{"status":201,"ms":100}"#));
    let d = step(&input, &results);
    assert_eq!(effects(&d), ["set_primary", "ask"]);
    assert_eq!(effect(&d, 0, "set_primary").as_str(), Some(PRIMARY));
    assert!(link_log(&d).contains(r#""outcome":"linked""#));
    results.push(j(
        r#"{"fanout":[{"product":"paste","account":"p1","ok":true}],"lookups":[],"ms":150}"#,
    ));
    let e = step(&input, &results);
    assert_eq!(effects(&e), ["patch_user"]);
    results.push(j(r#"{"status":200,"ms":160}"#));
    let f = step(&input, &results);
    assert_eq!(done(&f), Some("continue"));
    assert!(effects(&f).is_empty());
}

#[test]
fn a_failed_link_puts_the_primarys_record_back_and_the_login_goes_on_as_itself() {
    let input = resumed();
    let held = held_by_primary(false, 40);
    let read = || -> Value { read_primary(HOLDS, 60) };
    let refused = j(r#"{"status":400,"error":"HTTP 400","ms":100}"#);
    let a = step(
        &input,
        &[
            held.clone(),
            read(),
            j(r#"{"status":200,"ms":80}"#),
            refused.clone(),
        ],
    );
    assert_eq!(effects(&a), ["patch_user"]);
    // The keys the link wrote, back to what they were.
    let restore = effect(&a, 0, "patch_user")
        .get("app_metadata")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        restore.get("trickle"),
        Some(&j(HOLDS)),
        "{}",
        restore.to_json()
    );
    let b = step(
        &input,
        &[
            held,
            read(),
            j(r#"{"status":200,"ms":80}"#),
            refused,
            j(r#"{"status":500,"ms":120}"#),
        ],
    );
    assert_eq!(done(&b), Some("continue"));
    assert!(!effects(&b).contains(&"set_primary".to_owned()));
    let link = b.get("link").map(Value::to_json).unwrap_or_default();
    assert!(
        link.contains("link.identities") && link.contains("restoring"),
        "{link}"
    );
}

#[test]
fn a_primary_that_does_not_hold_the_account_is_not_joined_and_the_pointer_is_forgotten() {
    let input = resumed();
    let held = held_by_primary(false, 40);
    let candidate_only = r#"{"v":1,"person_id":"tp_primary","accounts":[{"product":"collect","id":"c1","verified":true}]}"#;
    let read = read_primary(candidate_only, 60);
    let a = step(&input, &[held.clone(), read]);
    assert_eq!(done(&a), Some("continue"));
    assert_eq!(effects(&a), ["write"], "{}", a.to_json());
    assert!(!effect(&a, 0, "write").to_json().contains(r#""linked""#));
    assert!(link_log(&a).contains("link.not_proven"));
    // A primary that is gone: the same.
    let gone = j(r#"{"status":404,"error":"HTTP 404","ms":60}"#);
    let b = step(&input, &[held.clone(), gone]);
    assert!(link_log(&b).contains("link.primary_missing"));
    // A tenant that does not answer: nothing changes, the login goes on.
    let down = j(r#"{"status":0,"error":"timeout","ms":2000}"#);
    let c = step(&input, &[held, down]);
    assert_eq!(done(&c), Some("continue"));
    assert!(link_log(&c).contains("link.primary_unavailable"));
}

#[test]
fn without_the_management_api_nobody_is_joined() {
    let mut input = resumed();
    if let Some(c) = input
        .as_object_mut()
        .and_then(|m| m.get_mut("config"))
        .and_then(Value::as_object_mut)
    {
        c.insert("link", false);
    }
    let held = held_by_primary(false, 40);
    let a = step(&input, &[held]);
    assert_eq!(done(&a), Some("continue"));
    assert!(link_log(&a).contains("link.unconfigured"));
}

#[test]
fn out_of_time_after_the_link_the_fanout_is_left_to_a_later_login() {
    let input = resumed();
    let held = held_by_primary(true, 40);
    let read = read_primary(HOLDS, 60);
    // The deadline: min(10 s, 2000 + 2 × 1500) = 5 s; the identity was linked at 4.95 s.
    let a = step(
        &input,
        &[
            held,
            read,
            j(r#"{"status":200,"ms":3000}"#),
            j(r#"{"status":201,"ms":4950}"#),
        ],
    );
    assert_eq!(effects(&a), ["set_primary"]);
    assert_eq!(done(&a), Some("continue"));
}

#[test]
fn a_first_social_login_asks_for_the_identity_then_records_and_tells_what_it_proved() {
    let input = google_login(
        r#"{}"#,
        r#""identities":[{"provider":"google-oauth2","connection":"google-oauth2","user_id":"1001","hd":null}]"#,
    );
    let a = step(&input, &[]);
    assert_eq!(effects(&a), ["ask"]);
    let ask = effect(&a, 0, "ask");
    assert_eq!(
        ask.get("identity").map(Value::to_json).as_deref(),
        Some(r#"{"provider":"google-oauth2","subject":"1001"}"#)
    );
    assert_eq!(
        ask.get("email").and_then(Value::as_str),
        Some("ann@gmail.com")
    );
    let found = j(
        r#"{"lookups":[{"name":"paste","body":"{\"accounts\":[]}"},{"name":"collect","body":"{\"accounts\":[]}"}],
        "identity_lookups":[{"name":"paste","body":"{\"accounts\":[{\"id\":\"p9\",\"email\":\"ann@gmail.com\",\"email_verified\":true,\"identities\":[{\"provider\":\"google-oauth2\",\"subject\":\"1001\"}]}]}"},{"name":"collect","body":"{\"accounts\":[]}"}],"ms":30}"#,
    );
    let b = step(&input, &[found]);
    assert_eq!(effects(&b), ["write", "write", "ask"], "{}", b.to_json());
    assert!(effect(&b, 0, "write")
        .to_json()
        .contains(r#""proof":"identity""#));
    assert!(has_event(&b, "account_proven"));
}

#[test]
fn only_the_identity_the_user_is_made_of_is_resolved() {
    // A database user with a Google identity linked into it signs in with Google: the profile's
    // address and verification are not Google's word; nothing is looked up for the identity.
    let user = db_user(PROVEN, "");
    let input = login(
        "execute",
        user,
        "google-oauth2",
        true,
        r#","identities":[{"provider":"auth0","connection":"trickle","user_id":"tp_me"},{"provider":"google-oauth2","connection":"google-oauth2","user_id":"1001"}]"#,
    );
    let a = step(&input, &[]);
    assert_eq!(done(&a), Some("continue"));
    assert!(effects(&a).is_empty());
    assert!(has_event(&a, "chain_other_connection"));
}

#[test]
fn results_the_login_did_not_ask_for_are_refused() {
    let input = login(
        "execute",
        db_user(PROVEN, r#","migrated":true"#),
        "trickle",
        true,
        "",
    );
    let v = Map::new()
        .with("input", input)
        .with("results", vec![j("{}")]);
    let err =
        chain::step(&StepInput::from_owned(v.into()).unwrap_or_else(|e| unreachable!("{e:?}")));
    assert_eq!(err.err().map(|e| e.code), Some("input.results"));
    let bad = resumed();
    let v = Map::new()
        .with("input", bad)
        .with("results", vec![j(r#"{"fanout":[{"account":"p1"}]}"#)]);
    let err =
        chain::step(&StepInput::from_owned(v.into()).unwrap_or_else(|e| unreachable!("{e:?}")));
    assert!(err.is_err());
}

#[test]
fn past_the_deadline_no_join_is_started_and_a_half_made_one_is_put_back() {
    let input = resumed();
    let held = held_by_primary(false, 4950);
    // 5 s deadline: the fan-out came back at 4.95 s, no read is started.
    let a = step(&input, std::slice::from_ref(&held));
    assert_eq!(done(&a), Some("continue"));
    assert!(link_log(&a).contains("link.deadline"));
    // The joined record written at 4.95 s: the identity is not linked, the record goes back.
    let early = held_by_primary(false, 40);
    let read = read_primary(HOLDS, 60);
    let b = step(&input, &[early, read, j(r#"{"status":200,"ms":4950}"#)]);
    assert_eq!(effects(&b), ["patch_user"], "{}", b.to_json());
    assert_eq!(
        effect(&b, 0, "patch_user")
            .get("app_metadata")
            .and_then(|m| m.get("trickle")),
        Some(&j(HOLDS))
    );
}

#[test]
fn a_relink_joins_in_this_login_even_when_a_merge_could_still_be_asked_for() {
    // After the merge, collect:c2 (found after the redirect) still waits for a merge of its own;
    // a product names the primary for collect:c1: planned again without a redirect, the join.
    let input = resumed_with(
        r#"[{"product":"paste","id":"p1","proof":"password","verified":true},{"product":"collect","id":"c1","verified":true},{"product":"collect","id":"c2","verified":true}]"#,
    );
    let a = step(&input, &[held_by_primary(true, 40)]);
    assert_eq!(effects(&a), ["write", "read_user"], "{}", a.to_json());
}

#[test]
fn the_join_has_until_its_deadline_to_tell_the_primarys_accounts() {
    // 5 s deadline (2000 + 2 × 1500): linked at 4 s, the fan-out still goes out with 1 s.
    let input = resumed();
    let a = step(
        &input,
        &[
            held_by_primary(true, 40),
            read_primary(HOLDS, 60),
            j(r#"{"status":200,"ms":3000}"#),
            j(r#"{"status":201,"ms":4000}"#),
        ],
    );
    assert_eq!(effects(&a), ["set_primary", "ask"], "{}", a.to_json());
    assert_eq!(
        effect(&a, 1, "ask")
            .get("budget_ms")
            .and_then(Value::as_i64),
        Some(1000)
    );
}

#[test]
fn only_an_answer_that_asks_for_nothing_may_be_remembered() {
    // Proven and told, not yet marked migrated: the answer writes `migrated`, so it is not quiet.
    let rec = r#"{"v":1,"person_id":"tp_me","accounts":[{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true}]}"#;
    let a = step(
        &login("execute", db_user(rec, ""), "trickle", true, ""),
        &[],
    );
    assert_eq!(done(&a), Some("continue"));
    assert_eq!(effects(&a), ["write"]);
    assert_eq!(a.get("quiet"), None);
    // A join the tenant cannot make (no Management API): nothing to perform, but not quiet
    // either (the join is tried again at the next login).
    let mut input = login(
        "execute",
        db_user(
            r#"{"v":1,"person_id":"tp_me","accounts":[{"product":"paste","id":"p1","proof":"password","verified":true,"fanout":true,"linked":"google-oauth2|primary"}]}"#,
            r#","migrated":true"#,
        ),
        "trickle",
        true,
        "",
    );
    if let Some(c) = input
        .as_object_mut()
        .and_then(|m| m.get_mut("config"))
        .and_then(Value::as_object_mut)
    {
        c.insert("link", false);
    }
    let b = step(&input, &[]);
    assert_eq!(done(&b), Some("continue"));
    assert!(effects(&b).is_empty());
    assert_eq!(b.get("quiet"), None, "{}", b.to_json());
}

#[test]
fn the_writes_keep_the_users_other_metadata_for_the_plans_that_follow() {
    // A first social login of a user the bulk import made: after the record is written, the
    // plan again still sees `bulkImported` (the merge stages skipped).
    let input = google_login(
        r#"{"bulkImported":true}"#,
        r#""identities":[{"provider":"google-oauth2","connection":"google-oauth2","user_id":"1001"}]"#,
    );
    let found = j(
        r#"{"lookups":[{"name":"paste","body":"{\"accounts\":[]}"},{"name":"collect","body":"{\"accounts\":[{\"id\":\"c1\",\"email\":\"ann@gmail.com\",\"email_verified\":true}]}"}],
        "identity_lookups":[{"name":"paste","body":"{\"accounts\":[{\"id\":\"p9\",\"email\":\"ann@gmail.com\",\"email_verified\":true,\"identities\":[{\"provider\":\"google-oauth2\",\"subject\":\"1001\"}]}]}"},{"name":"collect","body":"{\"accounts\":[]}"}],"ms":30}"#,
    );
    let b = step(&input, &[found]);
    assert!(has_event(&b, "bulk_imported_skip"), "{}", b.to_json());
}

#[test]
fn each_management_call_gets_the_time_left_of_the_join_and_100_ms_is_enough_to_start() {
    let input = resumed();
    // Exactly 100 ms left of the 5 s deadline: the read is still made, with what is left.
    let a = step(&input, &[held_by_primary(true, 4900)]);
    assert_eq!(effects(&a), ["write", "read_user"], "{}", a.to_json());
    assert_eq!(
        effect(&a, 1, "read_user")
            .get("timeout_ms")
            .and_then(Value::as_i64),
        Some(100)
    );
    // Read at 3.5 s: the joined record's write gets the 1.5 s left, not the look-up timeout.
    let b = step(
        &input,
        &[held_by_primary(true, 40), read_primary(HOLDS, 3500)],
    );
    assert_eq!(
        effect(&b, 0, "patch_user")
            .get("timeout_ms")
            .and_then(Value::as_i64),
        Some(1500)
    );
    assert_eq!(
        effect(&b, 0, "patch_user")
            .get("retries")
            .and_then(Value::as_i64),
        Some(1)
    );
}

#[test]
fn every_step_of_the_join_stops_at_the_deadline_and_not_before() {
    let input = resumed();
    let held = || held_by_primary(true, 40);
    let patched = |ms: i64| j(&format!(r#"{{"status":200,"ms":{ms}}}"#));
    let linked_at = |ms: i64| j(&format!(r#"{{"status":201,"ms":{ms}}}"#));
    let told_at = |ms: i64| {
        j(&format!(
            r#"{{"fanout":[{{"product":"paste","account":"p1","ok":true}}],"lookups":[],"ms":{ms}}}"#
        ))
    };
    // Read with 50 ms left: nothing is written to the primary.
    let a = step(&input, &[held(), read_primary(HOLDS, 4950)]);
    assert_eq!(done(&a), Some("continue"));
    assert!(link_log(&a).contains("link.deadline"));
    // Read with exactly 100 ms left: the joined record is written.
    let a = step(&input, &[held(), read_primary(HOLDS, 4900)]);
    assert_eq!(effects(&a), ["patch_user"]);
    // Written with exactly 100 ms left: the identity is linked.
    let a = step(&input, &[held(), read_primary(HOLDS, 60), patched(4900)]);
    assert_eq!(effects(&a), ["link_identity"]);
    // Linked with exactly 100 ms left: the primary's accounts are told.
    let a = step(
        &input,
        &[
            held(),
            read_primary(HOLDS, 60),
            patched(80),
            linked_at(4900),
        ],
    );
    assert_eq!(effects(&a), ["set_primary", "ask"]);
    assert!(link_log(&a).contains(&format!(r#""primary":"{PRIMARY}""#)));
    // Told with 50 ms left: the acknowledgements wait for a later login.
    let a = step(
        &input,
        &[
            held(),
            read_primary(HOLDS, 60),
            patched(80),
            linked_at(100),
            told_at(4950),
        ],
    );
    assert_eq!(done(&a), Some("continue"));
    assert!(effects(&a).is_empty(), "{}", a.to_json());
    // Told with exactly 100 ms left: recorded on the primary.
    let a = step(
        &input,
        &[
            held(),
            read_primary(HOLDS, 60),
            patched(80),
            linked_at(100),
            told_at(4900),
        ],
    );
    assert_eq!(effects(&a), ["patch_user"]);
}

#[test]
fn a_primarys_accounts_that_do_not_answer_leave_its_record_alone() {
    let input = resumed();
    let failed =
        j(r#"{"fanout":[{"product":"paste","account":"p1","ok":false}],"lookups":[],"ms":200}"#);
    let a = step(
        &input,
        &[
            held_by_primary(true, 40),
            read_primary(HOLDS, 60),
            j(r#"{"status":200,"ms":80}"#),
            j(r#"{"status":201,"ms":100}"#),
            failed,
        ],
    );
    assert_eq!(done(&a), Some("continue"));
    assert!(effects(&a).is_empty(), "{}", a.to_json());
}

#[test]
fn the_identity_a_login_is_made_of_is_found_wherever_it_is_listed() {
    // A Google user with a database identity linked into it, listed first.
    let input = google_login(
        r#"{}"#,
        r#""identities":[{"provider":"auth0","connection":"trickle","user_id":"tp_old"},{"provider":"google-oauth2","connection":"google-oauth2","user_id":"1001"}]"#,
    );
    let a = step(&input, &[]);
    assert_eq!(effects(&a), ["ask"], "{}", a.to_json());
    assert_eq!(
        effect(&a, 0, "ask")
            .get("identity")
            .map(Value::to_json)
            .as_deref(),
        Some(r#"{"provider":"google-oauth2","subject":"1001"}"#)
    );
}

#[test]
fn a_linked_identity_with_the_same_id_as_the_users_own_is_not_the_users() {
    // A database user auth0|1001 with a Google identity whose id is also 1001 linked into it:
    // the Google login is not what the user is made of, whatever the ids.
    let user = j(
        r#"{"user_id":"auth0|1001","email":"ann@gmail.com","email_verified":true,"app_metadata":{}}"#,
    );
    let input = login(
        "execute",
        user,
        "google-oauth2",
        true,
        r#","identities":[{"provider":"google-oauth2","connection":"google-oauth2","user_id":"1001"},{"provider":"auth0","connection":"trickle","user_id":"1001"}]"#,
    );
    let a = step(&input, &[]);
    assert_eq!(done(&a), Some("continue"));
    assert!(effects(&a).is_empty(), "{}", a.to_json());
}
