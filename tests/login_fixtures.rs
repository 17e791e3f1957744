//! The custom-DB decisions against the shared fixtures (`tests/fixtures/`), which the Node tests
//! also replay through the built artefacts and real HTTP product servers.
#![cfg(feature = "login")]

use trickle::email;
use trickle::json::{self, Value};
use trickle::login::{self, Decision, GetUserInput, LoginInput, ProductAnswer};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| unreachable!("{path}: {e}"));
    json::parse(&text).unwrap_or_else(|e| unreachable!("{path}: {e:?}"))
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What the product servers answer: accounts whose normalised email equals the one asked for.
fn answers(accounts: &Value, email_asked: &str, down: &[String]) -> Vec<ProductAnswer> {
    let products = strs(accounts.get("products"));
    products
        .iter()
        .map(|p| {
            if down.contains(p) {
                return ProductAnswer {
                    name: p.clone(),
                    accounts: None,
                    error: Some("timeout".into()),
                };
            }
            let list: Vec<Value> = accounts
                .get("accounts")
                .and_then(|a| a.get(p))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| {
                    a.get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|e| email::same(e, email_asked))
                })
                .collect();
            ProductAnswer {
                name: p.clone(),
                accounts: Some(list),
                error: None,
            }
        })
        .collect()
}

fn check(case: &Value, decision: &Decision) {
    let name = case.get("name").and_then(Value::as_str).unwrap_or("?");
    let expect = case.get("expect").cloned().unwrap_or_default();
    let out = decision.to_value();
    assert_eq!(
        out.get("outcome"),
        expect.get("outcome"),
        "{name}: {}",
        out.to_json()
    );
    if let Some(code) = expect.get("code") {
        assert_eq!(
            out.get("error").and_then(|e| e.get("code")),
            Some(code),
            "{name}"
        );
    }
    if let Some(ev) = expect.get("event").and_then(Value::as_str) {
        let events = out
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        assert!(
            events
                .iter()
                .any(|e| e.get("event").and_then(Value::as_str) == Some(ev)),
            "{name}: no {ev} in {}",
            out.to_json()
        );
    }
    let Some(profile) = out.get("profile") else {
        return;
    };
    for key in ["user_id", "email_verified", "name"] {
        if let Some(want) = expect.get(key) {
            assert_eq!(profile.get(key), Some(want), "{name}: {key}");
        }
    }
    let meta = profile
        .get("app_metadata")
        .and_then(|m| m.get("trickle"))
        .cloned()
        .unwrap_or_default();
    let accounts = meta
        .get("accounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pairs = |proven: bool| -> Vec<String> {
        accounts
            .iter()
            .filter(|a| a.get("proof").is_some() == proven)
            .map(|a| {
                format!(
                    "{}:{}",
                    a.get("product").and_then(Value::as_str).unwrap_or(""),
                    a.get("id").and_then(Value::as_str).unwrap_or("")
                )
            })
            .collect()
    };
    if expect.get("proven").is_some() {
        assert_eq!(pairs(true), strs(expect.get("proven")), "{name}: proven");
        assert_eq!(
            pairs(false),
            strs(expect.get("unproven")),
            "{name}: unproven"
        );
    }
    if expect.get("pending").is_some() {
        assert_eq!(
            strs(meta.get("pending")),
            strs(expect.get("pending")),
            "{name}: pending"
        );
    }
    if let Some(mfa) = expect.get("mfa") {
        let got: Vec<String> = profile
            .get("mfa_factors")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|x| x.get("totp")?.get("secret")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, strs(Some(mfa)), "{name}: mfa");
    }
    assert_eq!(
        profile.get("user_id"),
        meta.get("person_id"),
        "{name}: person id in metadata"
    );
}

#[test]
fn login_cases() {
    let accounts = load("accounts.json");
    let cases = load("login-cases.json");
    let list = cases
        .get("login")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(list.len() >= 10);
    for case in &list {
        let email = case.get("email").and_then(Value::as_str).unwrap_or("");
        let input = LoginInput {
            email: email.to_owned(),
            password: case
                .get("password")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            products: answers(&accounts, email, &strs(case.get("down"))),
            computed: vec![],
            host: Default::default(),
        };
        let decision = login::login(&input);
        // The login build leaves digests, PBKDF2 and scrypt to the host's crypto: its answer is
        // the work to do, which the Node tests of the built script carry out (tests/node/db.test.js).
        if !cfg!(feature = "wasm-digests") && matches!(decision, login::Decision::Compute { .. }) {
            continue;
        }
        check(case, &decision);
    }
}

#[test]
fn get_user_cases() {
    let accounts = load("accounts.json");
    let cases = load("login-cases.json");
    let list = cases
        .get("get_user")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(list.len() >= 3);
    for case in &list {
        let email = case.get("email").and_then(Value::as_str).unwrap_or("");
        let input = GetUserInput {
            email: email.to_owned(),
            products: answers(&accounts, email, &strs(case.get("down"))),
        };
        check(case, &login::get_user(&input));
    }
}

#[test]
fn product_answers_for_another_address_are_ignored() {
    let accounts = load("accounts.json");
    // A product that answers with every account it has, whatever was asked.
    let everything: Vec<ProductAnswer> = strs(accounts.get("products"))
        .into_iter()
        .map(|p| ProductAnswer {
            accounts: accounts
                .get("accounts")
                .and_then(|a| a.get(&p))
                .and_then(Value::as_array)
                .cloned(),
            name: p,
            error: None,
        })
        .collect();
    let input = LoginInput {
        email: "solo@example.com".into(),
        password: "solo-pass".into(),
        products: everything,
        computed: vec![],
        host: Default::default(),
    };
    let out = login::login(&input).to_value();
    let accounts = out
        .get("profile")
        .and_then(|p| p.get("app_metadata"))
        .and_then(|m| m.get("trickle"))
        .and_then(|t| t.get("accounts"))
        .and_then(Value::as_array)
        .map(Vec::len);
    assert_eq!(accounts, Some(1), "{}", out.to_json());
}
