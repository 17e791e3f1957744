//! Bulk migration decisions: one Auth0 import record per person, and the classification of an
//! import job's per-user errors. The Node shell streams the products, packs the records into
//! files and talks to the Management API.

use crate::event::ErrorBody;
use crate::fields::Fields;
use crate::json::{Map, Value};
use crate::ownership;
use crate::password::{self, Scheme};
use crate::person::{self, Account, AccountRef, PersonMeta};

/// The largest profile the import accepts comfortably (Auth0 advises under 10 kB).
pub const MAX_RECORD_BYTES: usize = 10_000;

/// Why a person cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Stable code.
    pub code: &'static str,
    /// What is wrong, naming the account or field.
    pub reason: String,
}

impl Reject {
    fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Reject {
            code,
            reason: reason.into(),
        }
    }

    /// As JSON.
    pub fn to_value(&self) -> Value {
        Map::new()
            .with("code", self.code)
            .with("reason", self.reason.as_str())
            .into()
    }
}

/// The legacy hash of the one account the import may own (`chosen`, ownership::import_hash: a
/// lone account's, or the first verified one of several), as bcrypt cost 10 in `password_hash`
/// or as `custom_password_hash`; without one, a person with several accounts gets the
/// forced-reset hash (the first sign-in is a reset through the inbox), a lone account none.
fn insert_password(
    record: &mut Map,
    accounts: &[Account],
    chosen: Option<usize>,
    forced_reset_hash: &str,
) -> Result<(), Reject> {
    match chosen.and_then(|i| accounts.get(i)) {
        Some(a) => {
            let descriptor = a.password.as_ref().ok_or_else(|| {
                Reject::new(
                    "export.no_password",
                    format!("{}/{}: no hash", a.product, a.id),
                )
            })?;
            let parsed = password::parse(descriptor).map_err(|e| {
                Reject::new(e.code(), format!("{}/{}: {}", a.product, a.id, e.message()))
            })?;
            match &parsed.scheme {
                Scheme::Bcrypt(h) if h.cost == 10 && parsed.salt.is_none() => {
                    let value = descriptor
                        .get("hash")
                        .and_then(|h| h.get("value"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if value.starts_with("$2y$") {
                        record.insert("custom_password_hash", descriptor.clone());
                    } else {
                        record.insert("password_hash", value);
                    }
                }
                _ => record.insert("custom_password_hash", descriptor.clone()),
            }
        }
        // A lone account without any hash: nothing to import (social-only people).
        None if accounts.len() == 1 && accounts.iter().all(|a| a.password.is_none()) => {}
        None => {
            if password::parse_bcrypt(forced_reset_hash).is_err() {
                return Err(Reject::new(
                    "export.forced_reset_hash",
                    "the run's forced-reset hash is not a bcrypt string",
                ));
            }
            record.insert("password_hash", forced_reset_hash);
        }
    }
    Ok(())
}

/// Builds the import record of one person from all of their accounts (every product, one email).
/// `forced_reset_hash` is the run's bcrypt string that no password matches.
pub fn export_record(
    email: &str,
    accounts: &[Account],
    products: &[String],
    forced_reset_hash: &str,
) -> Result<Value, Reject> {
    let email = crate::email::canonical(email)
        .map_err(|e| Reject::new(e.code(), format!("email: {}", e.body().message)))?;
    if accounts.is_empty() {
        return Err(Reject::new("export.no_accounts", "no account to export"));
    }
    let mut accounts = accounts.to_vec();
    person::canonical_order(&mut accounts, products);
    let mut events = vec![];
    let person_id = person::person_id(&accounts, &mut events)
        .ok_or_else(|| Reject::new("export.no_person_id", "no person id"))?;
    let first = accounts
        .first()
        .ok_or_else(|| Reject::new("export.no_accounts", "no account"))?;
    let mut record = Map::new()
        .with("email", email.as_str())
        .with("email_verified", accounts.iter().any(|a| a.email_verified))
        .with("user_id", person_id.as_str());
    for (key, value) in [
        ("name", &first.name),
        ("given_name", &first.given_name),
        ("family_name", &first.family_name),
        ("picture", &first.picture),
    ] {
        if let Some(v) = value {
            record.insert(key, v.as_str());
        }
    }
    let chosen = ownership::import_hash(&accounts);
    insert_password(&mut record, &accounts, chosen, forced_reset_hash)?;
    let mut factors = vec![];
    for a in &accounts {
        if let Some(raw) = &a.totp_secret {
            let secret = person::totp_secret(raw).ok_or_else(|| {
                Reject::new(
                    "mfa.invalid_totp_secret",
                    format!("{}/{}: the TOTP secret is not base32", a.product, a.id),
                )
            })?;
            let f: Value = Map::new()
                .with("totp", Map::new().with("secret", secret))
                .into();
            if !factors.contains(&f) && factors.len() < 10 {
                factors.push(f);
            }
        }
    }
    if !factors.is_empty() {
        record.insert("mfa_factors", factors);
    }
    let meta = PersonMeta {
        v: PersonMeta::VERSION,
        person_id: person_id.clone(),
        accounts: accounts
            .iter()
            .zip(ownership::import_owns(&accounts))
            .map(|(a, owned)| AccountRef {
                product: a.product.clone(),
                id: a.id.clone(),
                proof: owned.then(|| person::proof::IMPORT.to_owned()),
                verified: a.email_verified,
                fanout: false,
                linked: None,
                held: false,
                stale: None,
            })
            .collect(),
        pending: vec![],
        merge: None,
        // A lone account its product never verified, imported with its own hash: as at a lazy
        // login, once the mailbox is proven (a reset), the link made by that hash is withdrawn.
        unverified: chosen.is_some() && !accounts.iter().any(|a| a.email_verified),
        address: Some(email.clone()),
        address_from: None,
    };
    record.insert(
        "app_metadata",
        Map::new()
            .with("bulkImported", true)
            .with("trickle", meta.to_value()),
    );
    let value: Value = record.into();
    let bytes = value.to_json().len();
    if bytes > MAX_RECORD_BYTES {
        return Err(Reject::new(
            "export.too_large",
            format!("the record is {bytes} bytes (limit {MAX_RECORD_BYTES})"),
        ));
    }
    Ok(value)
}

/// Reads `{email, products: [...], accounts: [{product, …account}], forced_reset_hash}` and builds
/// the record (`{"outcome":"record","record"}` or `{"outcome":"reject","reject"}`).
pub fn export_from_value(v: &Value) -> Result<Value, ErrorBody> {
    let f = Fields::of(v, "")?;
    let products = f.strings("products")?;
    let mut accounts = vec![];
    let mut rejects = vec![];
    for a in f.array("accounts")? {
        let product = a.get("product").and_then(Value::as_str).unwrap_or("");
        match Account::from_json(product, a) {
            Ok(acc) => accounts.push(acc),
            Err(e) => rejects.push(Reject::new(e.code, format!("{product}: {}", e.message))),
        }
    }
    let email = f.str("email")?;
    let forced = f.str("forced_reset_hash")?;
    let result = match rejects.into_iter().next() {
        Some(r) => Err(r),
        None => export_record(email, &accounts, &products, forced),
    };
    let out = match result {
        // How many of the person's hashes are in a format only trickle verifies (the summary
        // counts the people whose forced reset comes from that).
        Ok(record) => Map::new()
            .with("outcome", "record")
            .with("record", record)
            .with(
                "unimportable",
                accounts
                    .iter()
                    .filter(|a| {
                        a.password
                            .as_ref()
                            .is_some_and(|d| !password::importable(d) && password::parse(d).is_ok())
                    })
                    .count() as i64,
            ),
        Err(r) => Map::new()
            .with("outcome", "reject")
            .with("reject", r.to_value()),
    };
    Ok(out.into())
}

/// What to do with one user of a finished import job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Present in the tenant already (migrated lazily meanwhile): done, never overwritten.
    AlreadyPresent,
    /// Worth importing again later.
    Retry,
    /// Will not succeed as it is: reported with the reason.
    Permanent,
}

impl Fate {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Fate::AlreadyPresent => "already_present",
            Fate::Retry => "retry",
            Fate::Permanent => "permanent",
        }
    }
}

/// Classifies one user's error codes from `GET /jobs/{id}/errors`.
pub fn classify(codes: &[&str]) -> Fate {
    if codes
        .iter()
        .any(|c| *c == "DUPLICATED_USER" || c.starts_with("CONFLICT"))
        && codes
            .iter()
            .all(|c| *c == "DUPLICATED_USER" || c.starts_with("CONFLICT"))
    {
        return Fate::AlreadyPresent;
    }
    if !codes.is_empty()
        && codes.iter().all(|c| {
            matches!(
                *c,
                "INTERNAL_ERROR" | "TOO_MANY_REQUESTS" | "UNKNOWN" | "TIMEOUT"
            )
        })
    {
        return Fate::Retry;
    }
    Fate::Permanent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    const RESET: &str = "$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    fn acct(product: &str, json: &str) -> Account {
        let v = parse(json).unwrap_or_default();
        Account::from_json(product, &v).unwrap_or_else(|e| unreachable!("{e:?}"))
    }

    fn products() -> Vec<String> {
        vec!["paste".into(), "collect".into()]
    }

    #[test]
    fn one_account_keeps_its_legacy_hash() {
        let bcrypt10 = acct(
            "paste",
            r#"{"id":"1","email":"A@x.com","password":{"algorithm":"bcrypt","hash":{"value":"$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}}}"#,
        );
        let r = export_record("a@x.com", &[bcrypt10], &products(), RESET).unwrap_or_default();
        assert_eq!(
            r.get("password_hash")
                .and_then(Value::as_str)
                .map(|s| s.starts_with("$2b$10$")),
            Some(true)
        );
        assert_eq!(
            r.get("app_metadata").and_then(|m| m.get("bulkImported")),
            Some(&Value::Bool(true))
        );
        let sha = acct(
            "collect",
            r#"{"id":"2","email":"b@x.com","password":{"algorithm":"sha256","hash":{"value":"2dd47348967664fcf1e906b16a98c3e2a7c3b3b234023872c02834513b4ef7c0","encoding":"hex"}}}"#,
        );
        let r = export_record("b@x.com", &[sha], &products(), RESET).unwrap_or_default();
        assert_eq!(
            r.get("custom_password_hash")
                .and_then(|d| d.get("algorithm"))
                .and_then(Value::as_str),
            Some("sha256")
        );
        assert!(r.get("password_hash").is_none());
    }

    #[test]
    fn several_accounts_get_the_forced_reset_hash_and_all_accounts() {
        let a = acct(
            "paste",
            r#"{"id":"1","email":"c@x.com","created_at":"2015-01-01","totp_secret":"JBSWY3DPEHPK3PXP","password":{"algorithm":"md5","hash":{"value":"5f4dcc3b5aa765d61d8327deb882cf99"}}}"#,
        );
        let b = acct(
            "collect",
            r#"{"id":"9","email":"C@x.com","created_at":"2014-01-01"}"#,
        );
        let r = export_record("c@x.com", &[a, b], &products(), RESET).unwrap_or_default();
        assert_eq!(r.get("password_hash").and_then(Value::as_str), Some(RESET));
        assert_eq!(
            r.get("user_id").and_then(Value::as_str),
            Some(person::derived_person_id("collect", "9").as_str())
        );
        let accounts = r
            .get("app_metadata")
            .and_then(|m| m.get("trickle"))
            .and_then(|t| t.get("accounts"))
            .and_then(Value::as_array)
            .map(Vec::len);
        assert_eq!(accounts, Some(2));
        assert_eq!(
            r.get("mfa_factors").and_then(Value::as_array).map(Vec::len),
            Some(1)
        );
    }

    #[test]
    #[cfg(feature = "formats-all")]
    fn a_hash_auth0_cannot_import_is_a_forced_reset_never_a_custom_password_hash() {
        // A lone WordPress account, and a person whose only verified account is Django's:
        // Auth0's import would refuse either descriptor, so both get the run's forced reset, the
        // reset proves the mailbox, and the export says why (`unimportable`).
        let wp = acct(
            "blog",
            r#"{"id":"1","email":"w@x.com","email_verified":true,"password":{"algorithm":"wordpress","hash":{"value":"$P$BabcdefghWyMfDhtZ/NJM6QT8qQ.yq."}}}"#,
        );
        let r = export_record("w@x.com", std::slice::from_ref(&wp), &products(), RESET)
            .unwrap_or_default();
        assert_eq!(r.get("password_hash").and_then(Value::as_str), Some(RESET));
        assert!(r.get("custom_password_hash").is_none());
        let dj = acct(
            "paste",
            r#"{"id":"2","email":"d@x.com","email_verified":true,"password":{"algorithm":"django","hash":{"value":"bcrypt$$2b$10$EEEEEEEEEEEEEEEEEEEEE.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}}}"#,
        );
        let other = acct(
            "collect",
            r#"{"id":"3","email":"d@x.com","password":{"algorithm":"bcrypt","hash":{"value":"$2b$10$DDDDDDDDDDDDDDDDDDDDD.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}}}"#,
        );
        let r = export_record("d@x.com", &[dj, other], &products(), RESET).unwrap_or_default();
        assert_eq!(r.get("password_hash").and_then(Value::as_str), Some(RESET));
        // Through the boundary: the count of such hashes comes back beside the record.
        let input = crate::json::parse(&format!(
            r#"{{"email":"w@x.com","products":["blog"],"forced_reset_hash":"{RESET}","accounts":[{{"product":"blog","id":"1","email":"w@x.com","email_verified":true,"password":{{"algorithm":"wordpress","hash":{{"value":"$P$BabcdefghWyMfDhtZ/NJM6QT8qQ.yq."}}}}}}]}}"#
        ))
        .unwrap_or_default();
        let out = export_from_value(&input).unwrap_or_default();
        assert_eq!(out.get("unimportable").and_then(Value::as_i64), Some(1));
        // A malformed hash is still rejected with its code, never silently reset.
        let bad = acct(
            "blog",
            r#"{"id":"1","email":"w@x.com","password":{"algorithm":"wordpress","hash":{"value":"$P$"}}}"#,
        );
        assert!(export_record("w@x.com", &[bad], &products(), RESET).is_err());
        let _ = wp;
    }

    #[test]
    fn a_person_in_two_products_keeps_the_password_of_the_verified_account() {
        // collect is older (canonical first) but never verified; paste verified the address:
        // its hash is imported, and only its account is owned (backfilled); collect waits for
        // the merge flow.
        let a = acct(
            "paste",
            r#"{"id":"1","email":"e@x.com","email_verified":true,"created_at":"2015-01-01","password":{"algorithm":"bcrypt","hash":{"value":"$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}}}"#,
        );
        let b = acct(
            "collect",
            r#"{"id":"9","email":"E@x.com","created_at":"2014-01-01","password":{"algorithm":"bcrypt","hash":{"value":"$2b$10$DDDDDDDDDDDDDDDDDDDDD.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}}}"#,
        );
        let r = export_record("e@x.com", &[a, b], &products(), RESET).unwrap_or_default();
        assert_eq!(
            r.get("password_hash").and_then(Value::as_str),
            Some("$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
        );
        assert_eq!(r.get("email_verified").and_then(Value::as_bool), Some(true));
        let meta = r
            .get("app_metadata")
            .and_then(|m| m.get("trickle"))
            .cloned()
            .unwrap_or_default();
        let proofs: Vec<_> = meta
            .get("accounts")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|a| {
                        (
                            a.get("product").and_then(Value::as_str).unwrap_or(""),
                            a.get("proof").and_then(Value::as_str),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(proofs, [("collect", None), ("paste", Some("import"))]);
        assert!(meta.get("unverified").is_none());
    }

    #[test]
    fn rejects_name_the_problem() {
        let bad_hash = acct(
            "paste",
            r#"{"id":"1","email":"d@x.com","password":{"algorithm":"bcrypt","hash":{"value":"nope"}}}"#,
        );
        assert_eq!(
            export_record("d@x.com", &[bad_hash], &products(), RESET)
                .err()
                .map(|r| r.code),
            Some("password.invalid_field")
        );
        let bad_totp = acct(
            "paste",
            r#"{"id":"1","email":"d@x.com","totp_secret":"not base32!!"}"#,
        );
        assert_eq!(
            export_record("d@x.com", &[bad_totp], &products(), RESET)
                .err()
                .map(|r| r.code),
            Some("mfa.invalid_totp_secret")
        );
        let big = acct(
            "paste",
            &format!(
                r#"{{"id":"1","email":"d@x.com","name":"{}"}}"#,
                "n".repeat(11_000)
            ),
        );
        assert_eq!(
            export_record("d@x.com", &[big], &products(), RESET)
                .err()
                .map(|r| r.code),
            Some("export.too_large")
        );
        assert_eq!(
            export_record("not an email", &[], &products(), RESET)
                .err()
                .map(|r| r.code),
            Some("email.invalid")
        );
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&["DUPLICATED_USER"]), Fate::AlreadyPresent);
        assert_eq!(classify(&["CONFLICT_EMAIL"]), Fate::AlreadyPresent);
        assert_eq!(classify(&["INTERNAL_ERROR"]), Fate::Retry);
        assert_eq!(classify(&["FORMAT"]), Fate::Permanent);
        assert_eq!(classify(&["DUPLICATED_USER", "FORMAT"]), Fate::Permanent);
        assert_eq!(classify(&[]), Fate::Permanent);
    }
}

/// The accounts of an import record (`app_metadata.trickle`, as [`export_record`] wrote it) that
/// backfill tells the imported user's id: those the import owns (a proof), and no other
/// (`ownership::may_learn_auth0_id`). `{"trickle"}` → `{"outcome":"ok","told":[{product,id}],
/// "unowned": n}`; a record that does not read is `backfill.record_malformed`.
pub fn told_from_value(v: &Value) -> Result<Value, ErrorBody> {
    let meta = v
        .get("trickle")
        .ok_or_else(|| {
            ErrorBody::new(
                "backfill.record_malformed",
                "app_metadata.trickle is missing",
            )
        })
        .and_then(PersonMeta::from_value)
        .map_err(|e| ErrorBody::new("backfill.record_malformed", e.message))?;
    let mut told = vec![];
    let mut unowned = 0i64;
    for a in &meta.accounts {
        if ownership::may_learn_auth0_id(a) {
            told.push(Value::from(
                Map::new()
                    .with("product", a.product.as_str())
                    .with("id", a.id.as_str()),
            ));
        } else {
            unowned += 1;
        }
    }
    Ok(Map::new()
        .with("outcome", "ok")
        .with("told", told)
        .with("unowned", unowned)
        .into())
}

#[cfg(test)]
mod told_tests {
    use super::*;

    #[test]
    fn backfill_tells_only_the_accounts_the_import_owns() {
        let v: Value = crate::json::parse(
            r#"{"trickle":{"v":1,"person_id":"tp_1","accounts":[{"product":"paste","id":"p1","proof":"import"},{"product":"collect","id":"c1"},{"product":"collect","id":"c2","proof":"import","verified":true}]}}"#,
        )
        .unwrap_or_default();
        let out = told_from_value(&v).unwrap_or_default();
        assert_eq!(
            out.to_json(),
            r#"{"outcome":"ok","told":[{"product":"paste","id":"p1"},{"product":"collect","id":"c2"}],"unowned":1}"#
        );
        for bad in [r#"{}"#, r#"{"trickle":{"accounts":"x"}}"#] {
            let v: Value = crate::json::parse(bad).unwrap_or_default();
            assert_eq!(
                told_from_value(&v).err().map(|e| e.code),
                Some("backfill.record_malformed")
            );
        }
    }
}
