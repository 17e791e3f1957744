//! A person: the accounts one human holds across products, found by normalised email, and the
//! person's stable id. Also the `app_metadata.trickle` record that remembers them in Auth0.

use crate::fields::Fields;
use crate::json::{self, ObjectWriter, Value};
use sha2::{Digest, Sha256};

use crate::email;
use crate::event::{ErrorBody, Event};
use crate::time::parse_rfc3339_ms;

/// The most accounts one person may carry in metadata (a profile must stay well under 10 kB).
pub const MAX_ACCOUNTS: usize = 32;
/// The most accounts one product may answer for one address: more is a hostile or broken
/// answer (sign-ups made to crowd the owner's account out), and that product counts as
/// unavailable.
pub const MAX_ACCOUNTS_PER_ANSWER: usize = MAX_ACCOUNTS;
/// The longest response text accepted from one product's look-up.
pub const MAX_ANSWER_BYTES: usize = 256 << 10;
/// The longest person id accepted from a product's prelink column.
pub const MAX_PERSON_ID_LEN: usize = 64;

/// One account in one product, as the product API returns it (see `docs/product-api.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The product's name (from `TRICKLE_PRODUCTS`).
    pub product: String,
    /// The product's own id for the account.
    pub id: String,
    /// The account's email, normalised.
    pub email: String,
    /// Whether the product had verified the address.
    pub email_verified: bool,
    /// The `custom_password_hash` descriptor, if the product has a password for the account.
    pub password: Option<Value>,
    /// Display name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
    /// The prelinked cross-product person id, when `trickle prelink` wrote one.
    pub person_id: Option<String>,
    /// A legacy TOTP secret (base32).
    pub totp_secret: Option<String>,
    /// The Auth0 user id trickle told the product for this account (only ever a proven owner).
    pub auth0_user_id: Option<String>,
    /// The social identities the product trusts for this account: (provider, subject).
    pub identities: Vec<(String, String)>,
}

/// How many social identities one account may list.
pub const MAX_IDENTITIES_PER_ACCOUNT: usize = 8;

/// Reads `identities: [{"provider", "subject"}]`; absent or null is none.
fn identities(v: &Value) -> Result<Vec<(String, String)>, ErrorBody> {
    let list = match v.get("identities") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ErrorBody::new(
                "account.wrong_type",
                "account field identities is not an array",
            ))
        }
    };
    if list.len() > MAX_IDENTITIES_PER_ACCOUNT {
        return Err(ErrorBody::new(
            "account.too_many_identities",
            format!("an account lists more than {MAX_IDENTITIES_PER_ACCOUNT} identities"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let provider = opt_string(item, "provider")?;
        let subject = opt_string(item, "subject")?;
        match (provider, subject) {
            (Some(p), Some(s)) if p.len() <= 64 && s.len() <= 255 => out.push((p, s)),
            _ => {
                return Err(ErrorBody::new(
                    "account.invalid_identity",
                    "an identity needs a provider (at most 64 bytes) and a subject (at most 255)",
                ))
            }
        }
    }
    Ok(out)
}

fn opt_string(v: &Value, key: &str) -> Result<Option<String>, ErrorBody> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // Integer ids are common in legacy databases; format them without float machinery.
        Some(n @ Value::Number(_)) if key == "id" || key == "person_id" => match n.as_i64() {
            Some(i) => Ok(Some(i.to_string())),
            None => Err(ErrorBody::new(
                "account.wrong_type",
                format!("account field {key} is not an integer"),
            )),
        },
        Some(_) => Err(ErrorBody::new(
            "account.wrong_type",
            format!("account field {key} has the wrong type"),
        )),
    }
}

impl Account {
    /// Reads one account of a product's answer. Fields other than `id` and `email` are optional.
    pub fn from_json(product: &str, v: &Value) -> Result<Account, ErrorBody> {
        if !v.is_object() {
            return Err(ErrorBody::new(
                "account.not_object",
                "account is not a JSON object",
            ));
        }
        let id = opt_string(v, "id")?
            .ok_or_else(|| ErrorBody::new("account.missing_id", "account has no id"))?;
        if id.len() > 128 {
            return Err(ErrorBody::new(
                "account.invalid_id",
                "account id is longer than 128 bytes",
            ));
        }
        let raw_email = opt_string(v, "email")?
            .ok_or_else(|| ErrorBody::new("account.missing_email", "account has no email"))?;
        let email = email::canonical(&raw_email).map_err(|e| e.body())?;
        let email_verified = matches!(v.get("email_verified"), Some(Value::Bool(true)));
        let password = v.get("password").filter(|p| !p.is_null()).cloned();
        Ok(Account {
            product: product.to_owned(),
            id,
            email,
            email_verified,
            password,
            name: opt_string(v, "name")?,
            given_name: opt_string(v, "given_name")?,
            family_name: opt_string(v, "family_name")?,
            picture: opt_string(v, "picture")?,
            created_at: opt_string(v, "created_at")?,
            person_id: opt_string(v, "person_id")?,
            totp_secret: opt_string(v, "totp_secret")?,
            auth0_user_id: opt_string(v, "auth0_user_id")?.filter(|u| valid_user_id(u)),
            identities: identities(v)?,
        })
    }
}

/// What one product answered to a look-up by email: its accounts, or why it could not answer.
#[derive(Debug, Clone)]
pub struct ProductAnswer {
    /// Product name, as configured.
    pub name: String,
    /// The accounts found (empty when the product has none), when the look-up succeeded.
    pub accounts: Option<Vec<Value>>,
    /// Why the look-up failed (timeout, HTTP status, …), when it did.
    pub error: Option<String>,
}

impl ProductAnswer {
    /// Reads `{"name", "accounts": [...]}`, `{"name", "body": "<the product's response text>"}`
    /// or `{"name", "error": "..."}`; `path` names the list in errors (`products[]`,
    /// `lookups[]`). A `body` is parsed here, on its own: an oversized, malformed or hostile
    /// answer (too deep, a lone surrogate, duplicate keys, more accounts than one person holds)
    /// makes only that product unavailable, never the others' accounts unusable.
    pub fn from_value(v: &Value, path: &'static str) -> Result<Self, ErrorBody> {
        let f = Fields::of(v, path)?;
        let name = f.str("name")?.to_owned();
        let mut error = f.opt_str("error")?.map(str::to_owned);
        let accounts = match (f.any("accounts"), f.opt_str("body")?) {
            (None, None) => None,
            (Some(Value::Array(a)), _) => Some(a.clone()),
            (Some(_), _) => {
                return Err(ErrorBody::new(
                    "input.wrong_type",
                    format!("{path}.accounts must be an array"),
                ))
            }
            (None, Some(body)) => match Self::read_body(body) {
                Ok(a) => Some(a),
                Err(why) => {
                    error = Some(why.to_owned());
                    None
                }
            },
        };
        let accounts = match accounts {
            Some(a) if a.len() > MAX_ACCOUNTS_PER_ANSWER => {
                error = Some("answer holds too many accounts".to_owned());
                None
            }
            other => other,
        };
        Ok(ProductAnswer {
            name,
            accounts,
            error,
        })
    }

    fn read_body(body: &str) -> Result<Vec<Value>, &'static str> {
        if body.len() > MAX_ANSWER_BYTES {
            return Err("answer too large");
        }
        let v = crate::json::parse(body).map_err(|_| "malformed answer")?;
        match v.get("accounts") {
            Some(Value::Array(a)) => Ok(a.clone()),
            _ => Err("malformed answer"),
        }
    }

    /// Reads a list of answers.
    pub fn list(values: &[Value], path: &'static str) -> Result<Vec<Self>, ErrorBody> {
        values.iter().map(|v| Self::from_value(v, path)).collect()
    }
}

/// True when a prelinked person id is usable as an Auth0 `user_id` suffix.
pub fn valid_person_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PERSON_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The deterministic id of a person with no prelinked id: derived from the canonical account,
/// so every later look-up of the same accounts yields the same id.
pub fn derived_person_id(product: &str, account_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"trickle.person.v1\0");
    h.update(product.as_bytes());
    h.update(b"\0");
    h.update(account_id.as_bytes());
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("tp_{hex}")
}

/// Orders accounts canonically: earliest `created_at` first (unparseable or missing dates last),
/// ties by product priority (the order of `TRICKLE_PRODUCTS`), then by account id.
pub fn canonical_order(accounts: &mut [Account], product_order: &[String]) {
    let rank = |p: &str| {
        product_order
            .iter()
            .position(|x| x == p)
            .unwrap_or(usize::MAX)
    };
    sort_small(accounts, |a, b| {
        let ta = a
            .created_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .unwrap_or(i64::MAX);
        let tb = b
            .created_at
            .as_deref()
            .and_then(parse_rfc3339_ms)
            .unwrap_or(i64::MAX);
        ta.cmp(&tb)
            .then_with(|| rank(&a.product).cmp(&rank(&b.product)))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// A stable insertion sort for the few accounts of one person (at most [`MAX_ACCOUNTS`] per
/// product): one small function in place of the standard library's sorts, which the login
/// script would otherwise carry once per element type (about 9 kB of its wasm).
pub fn sort_small<T>(items: &mut [T], cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 {
            let (Some(a), Some(b)) = (items.get(j - 1), items.get(j)) else {
                break;
            };
            if cmp(a, b) != std::cmp::Ordering::Greater {
                break;
            }
            items.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The person's stable id: the prelinked `person_id` when products carry one (the smallest, with
/// a `person_id_conflict` event when they disagree), else [`derived_person_id`] of the first
/// account in canonical order. `accounts` must already be in canonical order.
pub fn person_id(accounts: &[Account], events: &mut Vec<Event>) -> Option<String> {
    let mut prelinked: Vec<&str> = Vec::new();
    for a in accounts {
        if let Some(p) = a.person_id.as_deref() {
            if valid_person_id(p) {
                prelinked.push(p);
            } else {
                events.push(
                    Event::new("person_id_invalid")
                        .product(&a.product)
                        .account(&a.id)
                        .code("person.invalid_id"),
                );
            }
        }
    }
    sort_small(&mut prelinked, |a, b| a.cmp(b));
    prelinked.dedup();
    if prelinked.len() > 1 {
        events.push(
            Event::new("person_id_conflict")
                .code("person.conflict")
                .detail(prelinked.join(",")),
        );
    }
    if let Some(p) = prelinked.first() {
        return Some((*p).to_owned());
    }
    accounts
        .first()
        .map(|a| derived_person_id(&a.product, &a.id))
}

/// Normalises a legacy TOTP secret to unpadded upper-case base32, or `None` when it is not one.
pub fn totp_secret(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .trim_end_matches('=')
        .to_ascii_uppercase();
    let ok = (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    ok.then_some(s)
}

/// How an account was shown to belong to the person.
pub mod proof {
    /// The typed password matched the account's legacy hash.
    pub const PASSWORD: &str = "password";
    /// The person completed a password reset through the inbox.
    pub const RESET: &str = "reset";
    /// The person completed the merge flow (inbox proven, new password set and used).
    pub const MERGE: &str = "merge";
    /// Brought in by the bulk import, whose rules stand in for the proof.
    pub const IMPORT: &str = "import";
    /// The product holds the social identity the person signed in with (provider and subject).
    pub const IDENTITY: &str = "identity";
    /// A provider authoritative for the address asserted it verified (see `docs/ownership.md`).
    pub const PROVIDER: &str = "provider";
    /// A staff member recorded it (console or `trickle support link`), with a reason and a ticket
    /// in the audit row beside it.
    pub const SUPPORT: &str = "support";
}

/// `address_from` of an address the tenant never verified: nobody's word at all (a sign-up, or a
/// user made through an account its product never verified).
pub const ADDRESS_UNVERIFIED: &str = "unverified";

/// True for an Auth0 user id trickle could have told a product: `provider|id`, printable ASCII,
/// at most 255 bytes (anything else a product returns is ignored, never followed).
pub fn valid_user_id(u: &str) -> bool {
    u.len() <= 255
        && u.bytes().all(|b| b.is_ascii_graphic())
        && u.split_once('|')
            .is_some_and(|(p, id)| !p.is_empty() && !id.is_empty())
}

/// One account as remembered in `app_metadata.trickle.accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// Product name.
    pub product: String,
    /// The product's account id.
    pub id: String,
    /// How ownership was proven; absent while unproven.
    pub proof: Option<String>,
    /// True when the product had verified the address (a mailbox proof covers only these).
    pub verified: bool,
    /// True once the product acknowledged the Auth0 user id.
    pub fanout: bool,
    /// The Auth0 user id the product already held for the account: another tenant user that
    /// proved it. Kept only for an account proven here (only proven accounts are told an Auth0
    /// id, by any path); followed (account linking) only when that user's own record holds the
    /// account with a proof.
    pub linked: Option<String>,
    /// True when the product held another user's id for the account while it was unproven here
    /// (the id itself withheld).
    pub held: bool,
    /// A stale id the product holds (its user is gone, or does not hold the account): the next
    /// fan-out replaces it.
    pub stale: Option<String>,
}

/// The merge round trip in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeState {
    /// How many times the person was sent to the merge service.
    pub attempts: u32,
    /// The single-use id of the outstanding session token; cleared when used.
    pub jti: Option<String>,
    /// When that token was issued (Unix seconds).
    pub issued_at: Option<i64>,
    /// The accounts the merge page was sent for (`product:id`): a merge proves these and no
    /// others (an account found after the redirect is shown at the next merge).
    pub shown: Vec<String>,
}

/// `app_metadata.trickle`: everything trickle remembers about a person, kept small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonMeta {
    /// Record version.
    pub v: u32,
    /// The person's cross-product id (the Auth0 `user_id` without `auth0|`).
    pub person_id: String,
    /// Every account of the person.
    pub accounts: Vec<AccountRef>,
    /// Products that could not be asked at login and must be looked up again.
    pub pending: Vec<String>,
    /// The merge round trip, once one was started.
    pub merge: Option<MergeState>,
    /// True when the tenant user was created through an account whose product never verified
    /// the address: once the mailbox is proven, links made only by such a password are withdrawn.
    pub unverified: bool,
    /// The canonical address the unproven accounts were found by (a social login's discovery):
    /// when the user's address changes, those candidates are dropped, so a mailbox proof of the
    /// new address never proves accounts found by the old one.
    pub address: Option<String>,
    /// The social connection whose word the address is, when that provider does not vouch for
    /// it (`ownership::provider_vouches`): its candidates may be a stranger's, so support may not
    /// prove them and a support proof of this record never outranks the account's own proofs.
    pub address_from: Option<String>,
}

impl PersonMeta {
    /// Current record version.
    pub const VERSION: u32 = 1;

    /// Reads the record from `app_metadata.trickle`.
    pub fn from_value(v: &Value) -> Result<PersonMeta, ErrorBody> {
        let f = Fields::of(v, "trickle")?;
        let mut accounts = Vec::new();
        for a in f.array("accounts")? {
            let af = Fields::of(a, "trickle.accounts")?;
            accounts.push(AccountRef {
                product: af.str("product")?.to_owned(),
                id: af.str("id")?.to_owned(),
                proof: af.opt_str("proof")?.map(str::to_owned),
                verified: af.bool("verified")?,
                fanout: af.bool("fanout")?,
                linked: af.opt_str("linked")?.map(str::to_owned),
                held: af.bool("held")?,
                stale: af.opt_str("stale")?.map(str::to_owned),
            });
        }
        let merge = match f.any("merge") {
            None => None,
            Some(m) => {
                let mf = Fields::of(m, "trickle.merge")?;
                Some(MergeState {
                    attempts: mf
                        .any("attempts")
                        .and_then(Value::as_i64)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0),
                    jti: mf.opt_str("jti")?.map(str::to_owned),
                    issued_at: mf.any("issued_at").and_then(Value::as_i64),
                    shown: match mf.any("shown") {
                        None => vec![],
                        Some(_) => mf.strings("shown")?,
                    },
                })
            }
        };
        Ok(PersonMeta {
            v: f.any("v")
                .and_then(Value::as_i64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            person_id: f.str("person_id")?.to_owned(),
            accounts,
            pending: f.strings("pending")?,
            merge,
            unverified: f.bool("unverified")?,
            address: f.opt_str("address")?.map(str::to_owned),
            address_from: f.opt_str("address_from")?.map(str::to_owned),
        })
    }

    /// The record as stored in `app_metadata.trickle` (absent fields left out to stay small).
    pub fn to_value(&self) -> Value {
        let mut text = String::with_capacity(256);
        self.write_json(&mut text);
        json::parse(&text).unwrap_or_default()
    }

    /// The record as JSON text, written straight into `out` (the one writer of its form).
    pub fn write_json(&self, out: &mut String) {
        let mut m = ObjectWriter::new(out);
        m.int("v", i64::from(self.v))
            .str("person_id", &self.person_id)
            .array("accounts", &self.accounts, |a, out| {
                let mut o = ObjectWriter::new(out);
                o.str("product", &a.product)
                    .str("id", &a.id)
                    .opt_str("proof", a.proof.as_deref());
                if a.verified {
                    o.bool("verified", true);
                }
                if a.fanout {
                    o.bool("fanout", true);
                }
                if a.held {
                    o.bool("held", true);
                }
                o.opt_str("linked", a.linked.as_deref())
                    .opt_str("stale", a.stale.as_deref());
                o.end();
            });
        if !self.pending.is_empty() {
            json::write_strings(&self.pending, m.key("pending"));
        }
        if self.unverified {
            m.bool("unverified", true);
        }
        m.opt_str("address", self.address.as_deref())
            .opt_str("address_from", self.address_from.as_deref());
        if let Some(merge) = &self.merge {
            let mut mm = ObjectWriter::new(m.key("merge"));
            mm.int("attempts", i64::from(merge.attempts));
            mm.opt_str("jti", merge.jti.as_deref());
            if let Some(at) = merge.issued_at {
                mm.int("issued_at", at);
            }
            if !merge.shown.is_empty() {
                json::write_strings(&merge.shown, mm.key("shown"));
            }
            mm.end();
        }
        m.end();
    }

    /// Adds an account unless it is already known; returns true when added.
    pub fn add_account(
        &mut self,
        product: &str,
        id: &str,
        proof: Option<&str>,
        verified: bool,
    ) -> bool {
        self.add_linked(product, id, proof, verified, None, false)
    }

    /// As [`PersonMeta::add_account`], remembering the Auth0 id the product already held.
    pub fn add_linked(
        &mut self,
        product: &str,
        id: &str,
        proof: Option<&str>,
        verified: bool,
        linked: Option<&str>,
        held: bool,
    ) -> bool {
        if self
            .accounts
            .iter()
            .any(|a| a.product == product && a.id == id)
        {
            return false;
        }
        if self.accounts.len() >= MAX_ACCOUNTS {
            return false;
        }
        self.accounts.push(AccountRef {
            product: product.to_owned(),
            id: id.to_owned(),
            proof: proof.map(str::to_owned),
            verified,
            fanout: false,
            linked: linked.map(str::to_owned),
            held,
            stale: None,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Map;

    fn acct(product: &str, id: &str, created: Option<&str>, pid: Option<&str>) -> Account {
        let v: Value = Map::new()
            .with("id", id)
            .with("email", "A@x.com")
            .with("created_at", created)
            .with("person_id", pid)
            .into();
        Account::from_json(product, &v).unwrap_or_else(|e| unreachable!("{e:?}"))
    }

    fn order() -> Vec<String> {
        vec!["paste".into(), "collect".into(), "transfer".into()]
    }

    #[test]
    fn the_record_reads_back_exactly_as_written() {
        let account = |proof: Option<&str>, flags: bool, text: Option<&str>| AccountRef {
            product: "paste".into(),
            id: "p\"1\u{2028}".into(),
            proof: proof.map(str::to_owned),
            verified: flags,
            fanout: flags,
            linked: text.map(str::to_owned),
            held: flags,
            stale: text.map(str::to_owned),
        };
        let full = PersonMeta {
            v: 1,
            person_id: "tp_1".into(),
            accounts: vec![
                account(Some("merge"), true, Some("auth0|x")),
                account(None, false, None),
            ],
            pending: vec!["collect".into()],
            merge: Some(MergeState {
                attempts: 2,
                jti: Some("j".into()),
                issued_at: Some(1_700_000_000),
                shown: vec!["paste:1".into()],
            }),
            unverified: true,
            address: Some("a@x.com".into()),
            address_from: Some("sign-in-with-slack".into()),
        };
        let bare = PersonMeta {
            merge: Some(MergeState::default()),
            ..PersonMeta::default()
        };
        for meta in [full, bare, PersonMeta::default()] {
            let mut text = String::new();
            meta.write_json(&mut text);
            assert_eq!(text, meta.to_value().to_json());
            let back =
                PersonMeta::from_value(&meta.to_value()).unwrap_or_else(|e| unreachable!("{e:?}"));
            assert_eq!(back, meta, "{text}");
        }
    }

    #[test]
    fn canonical_account_is_earliest_then_product_order() {
        let mut a = vec![
            acct("transfer", "9", Some("2018-01-01T00:00:00Z"), None),
            acct("collect", "5", Some("2017-06-01T00:00:00Z"), None),
            acct("paste", "1", Some("2017-06-01T00:00:00Z"), None),
            acct("paste", "0", None, None),
        ];
        canonical_order(&mut a, &order());
        let ids: Vec<&str> = a.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, ["1", "5", "9", "0"]);
        let mut ev = vec![];
        assert_eq!(
            person_id(&a, &mut ev),
            Some(derived_person_id("paste", "1"))
        );
        assert!(ev.is_empty());
    }

    #[test]
    fn same_id_whatever_order_the_accounts_arrive_in() {
        let base = vec![
            acct("transfer", "9", Some("2018-01-01T00:00:00Z"), None),
            acct("collect", "5", Some("2016-06-01T00:00:00+01:00"), None),
        ];
        let mut a = base.clone();
        let mut b: Vec<Account> = base.into_iter().rev().collect();
        canonical_order(&mut a, &order());
        canonical_order(&mut b, &order());
        assert_eq!(person_id(&a, &mut vec![]), person_id(&b, &mut vec![]));
    }

    #[test]
    fn prelinked_id_wins_and_conflicts_take_the_smallest() {
        let a = vec![
            acct("paste", "1", None, Some("p-200")),
            acct("collect", "2", None, Some("p-100")),
        ];
        let mut ev = vec![];
        assert_eq!(person_id(&a, &mut ev).as_deref(), Some("p-100"));
        assert_eq!(ev.first().map(|e| e.event), Some("person_id_conflict"));
        let bad = vec![acct("paste", "1", None, Some("bad|id"))];
        let mut ev = vec![];
        assert_eq!(
            person_id(&bad, &mut ev),
            Some(derived_person_id("paste", "1"))
        );
        assert_eq!(ev.first().map(|e| e.event), Some("person_id_invalid"));
    }

    #[test]
    fn totp_secrets() {
        assert_eq!(
            totp_secret("jbsw y3dp ehpk 3pxp=").as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        assert_eq!(totp_secret("JBSWY3DPEHPK3PX1"), None);
        assert_eq!(totp_secret("SHORT"), None);
    }
}
