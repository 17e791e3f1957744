//! Who owns what: the one place that decides which accounts a proof covers, when a tenant user
//! may be created, and which accounts may be told an Auth0 id. Every path asks this module: the
//! login script ([`crate::login`]), the post-login chain ([`crate::chain`]), the bulk export
//! ([`crate::bulk`]) and, through the core's exports, the Node commands. `docs/ownership.md` is
//! the written model.
//!
//! The rules:
//! - An account's own legacy password proves that account, and only it.
//! - A mailbox proof (a password reset, the merge service's mailed link) proves only the accounts
//!   whose product had verified that address: an account a product never verified may have been
//!   opened by anyone who typed the address, so only its own password links it.
//! - The address alone proves nothing.
//! - Only proven accounts are ever told an Auth0 id.
//! - Squatting is not rewarded: a password that matches only unverified accounts, while other
//!   accounts hold the address, does not create the tenant user (Auth0 would create it at once and
//!   never ask the login script again); the real owner resets, which proves the mailbox.
//! - When the mailbox is proven later, links made only by a password on an unverified address
//!   are withdrawn.
//! - A social identity proves the accounts whose product holds that identity (provider and
//!   subject): the product trusted the same identity. Its address proves nothing, unless the
//!   provider is authoritative for the address and says it verified it ([`provider_vouches`]):
//!   then it counts as a mailbox proof.
//! - Two tenant users are linked only when both proved the same account; the one that proved it
//!   first stays the primary, so a newcomer never becomes the primary of an existing user.

use crate::person::{proof, Account, AccountRef, PersonMeta};

/// The kinds of proof, as recorded in `app_metadata.trickle.accounts[].proof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// The account's own legacy password matched.
    Password,
    /// A password reset through the inbox.
    Reset,
    /// The merge service's mailbox proof plus a new password.
    Merge,
    /// The bulk import (the record's own hash, or a forced reset through the inbox).
    Import,
    /// The product holds the social identity the person signed in with.
    Identity,
    /// A provider authoritative for the address said it verified it.
    Provider,
    /// A staff member recorded it, with a reason and a ticket (the audit row beside it).
    Support,
}

impl Proof {
    /// The name stored in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Proof::Password => proof::PASSWORD,
            Proof::Reset => proof::RESET,
            Proof::Merge => proof::MERGE,
            Proof::Import => proof::IMPORT,
            Proof::Identity => proof::IDENTITY,
            Proof::Provider => proof::PROVIDER,
            Proof::Support => proof::SUPPORT,
        }
    }

    /// The proof a record names, or `None` for a name trickle never writes.
    pub fn from_name(name: &str) -> Option<Proof> {
        [
            Proof::Password,
            Proof::Reset,
            Proof::Merge,
            Proof::Import,
            Proof::Identity,
            Proof::Provider,
            Proof::Support,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }

    /// The proof's rank: what the person showed of the account itself (its password, its
    /// product's trusted identity, the mailbox its product verified, the import of its own hash)
    /// ranks above a staff member's word.
    pub fn rank(self) -> u8 {
        match self {
            Proof::Support => 1,
            _ => 2,
        }
    }

    /// True for the proofs that show the mailbox, not one account's password.
    pub fn is_mailbox(self) -> bool {
        matches!(self, Proof::Reset | Proof::Merge | Proof::Provider)
    }
}

/// Whether a mailbox proof covers an account: only when its product had verified the address.
pub fn mailbox_proves(account_verified: bool) -> bool {
    account_verified
}

/// Google's own consumer domains: Google is the mail provider, so its `email_verified` is the
/// mailbox itself.
const GOOGLE_MAIL: &[&str] = &["gmail.com", "googlemail.com"];
/// Apple's own mail domains.
const APPLE_MAIL: &[&str] = &["icloud.com", "me.com", "mac.com"];
/// Apple's private relay: an address made up per app, never a legacy account's.
pub const APPLE_RELAY: &str = "privaterelay.appleid.com";

/// Whether a provider's `email_verified` counts as a mailbox proof of `email` (canonical): only
/// when the provider is the address's mail provider. Google for gmail.com and googlemail.com, and
/// for a Workspace domain when the token's `hd` names that very domain (the Workspace admin owns
/// the domain's mail); Apple for icloud.com, me.com and mac.com. Never Slack (any workspace
/// admin can assert any address), never an Apple private-relay address, never another provider.
pub fn provider_vouches(
    provider: &str,
    email: &str,
    email_verified: bool,
    hd: Option<&str>,
) -> bool {
    if !email_verified {
        return false;
    }
    let Some((_, domain)) = email.rsplit_once('@') else {
        return false;
    };
    match provider {
        "google-oauth2" => {
            GOOGLE_MAIL.contains(&domain) || hd.is_some_and(|h| h.eq_ignore_ascii_case(domain))
        }
        "apple" => APPLE_MAIL.contains(&domain),
        _ => false,
    }
}

/// Whether a product's account is proven by the social identity (provider, subject) the person
/// signed in with: the product lists exactly that identity for it.
pub fn identity_proves(a: &Account, provider: &str, subject: &str) -> bool {
    a.identities
        .iter()
        .any(|(p, s)| p == provider && s == subject)
}

/// The existing tenant user this one should be linked into: another user the product already
/// told for an account this user has now proven too. `None` when there is none.
pub fn link_target<'a>(accounts: &'a [AccountRef], user_id: &str) -> Option<&'a str> {
    accounts
        .iter()
        .filter(|a| a.proof.is_some())
        .filter_map(|a| a.linked.as_deref())
        .find(|l| *l != user_id)
}

/// Whether `primary` (that user's own record) may take in a user who proved `proven`: the
/// primary holds at least one of those accounts with a proof of its own that the newcomer's does
/// not outrank ([`outranks`]). A pointer a product returned is never enough by itself.
pub fn may_link(primary: &PersonMeta, proven: &[&AccountRef]) -> bool {
    proven.iter().any(|s| {
        primary.accounts.iter().any(|p| {
            p.product == s.product
                && p.id == s.id
                && p.proof.as_deref().is_some_and(|held| {
                    let mine = s.proof.as_deref().unwrap_or("");
                    !outranks(mine, held, primary.address_from.is_some()) && !yields(mine, held)
                })
        })
    })
}

/// Whether a newcomer's proof of an account yields to the holder's, so that the newcomer must
/// neither join the holder nor be told the account: a staff member's word (a support proof)
/// never takes an account from someone who proved it themselves (the support link was a mistake,
/// or was made before the holder's proof reached the product). The newcomer's support proof is
/// withdrawn instead.
pub fn yields(newcomer: &str, holder: &str) -> bool {
    let rank = |name: &str| Proof::from_name(name).map_or(0, Proof::rank);
    rank(newcomer) < rank(holder)
}

/// Whether a newcomer's proof of an account outranks the proof the holder's record has of it, so
/// that the newcomer must not join the holder: a support proof made for a user whose address
/// came from a provider that never vouched for it (its candidates may be a stranger's, asserted
/// by a workspace the stranger controls) yields to any proof the person made of the account
/// itself. An unknown proof name outranks nothing and is outranked by everything.
pub fn outranks(newcomer: &str, holder: &str, holder_address_unvouched: bool) -> bool {
    let rank = |name: &str| Proof::from_name(name).map_or(0, Proof::rank);
    let held = rank(holder);
    let mine = rank(newcomer);
    held == 0 || (mine > held && holder_address_unvouched)
}

/// What the login script may do once the password was checked against every account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerdict {
    /// No account matched.
    NoMatch,
    /// Create the tenant user; `email_verified` says whether a matched account's product had
    /// verified the address.
    Create {
        /// The profile's `email_verified`.
        email_verified: bool,
    },
    /// The password matched only accounts whose product never verified the address, while other
    /// accounts hold it: refuse, and tell a real owner to reset the password (which proves the
    /// mailbox).
    ResetRequired,
    /// As [`LoginVerdict::ResetRequired`], but a product could not be asked: it may hold the real
    /// owner's account, so try again later rather than hand the address to whoever came first.
    RetryLater,
}

/// Decides the login from the accounts found, which of them the password matched, and whether
/// some product could not be asked.
pub fn login_verdict(
    accounts: &[Account],
    matched: &[bool],
    some_product_down: bool,
) -> LoginVerdict {
    let mut any = false;
    let mut verified = false;
    let mut others = false;
    for (a, m) in accounts.iter().zip(matched) {
        if *m {
            any = true;
            verified |= a.email_verified;
        } else {
            others = true;
        }
    }
    if !any {
        return LoginVerdict::NoMatch;
    }
    if verified {
        return LoginVerdict::Create {
            email_verified: true,
        };
    }
    if others {
        return LoginVerdict::ResetRequired;
    }
    if some_product_down {
        return LoginVerdict::RetryLater;
    }
    LoginVerdict::Create {
        email_verified: false,
    }
}

/// The accounts a password reset proves (the reset shows the mailbox).
pub fn reset_proves(accounts: &[Account]) -> Vec<bool> {
    accounts
        .iter()
        .map(|a| mailbox_proves(a.email_verified))
        .collect()
}

#[cfg(feature = "login")]
/// The account whose legacy hash a person is imported with, if any (`accounts` in canonical
/// order): a lone account's own; for several, the first whose product verified the address and
/// whose hash can be read. A password matching only an unverified account while other accounts
/// hold the address proves nothing at a lazy login, so such a hash is never imported for a
/// person with several accounts; without a verified one, the person gets a forced reset.
pub fn import_hash(accounts: &[Account]) -> Option<usize> {
    // Only a hash Auth0's import can take: the formats only trickle verifies (phpass, Django,
    // crypt(3), …) are a forced reset, never a custom_password_hash Auth0 would refuse.
    let usable = |a: &Account| a.password.as_ref().is_some_and(crate::password::importable);
    if let [lone] = accounts {
        // A malformed hash stays chosen, so that the export rejects it with its code.
        let malformed = |d: &crate::json::Value| crate::password::parse(d).is_err();
        return (usable(lone) || lone.password.as_ref().is_some_and(malformed)).then_some(0);
    }
    accounts
        .iter()
        .position(|a| mailbox_proves(a.email_verified) && usable(a))
}

#[cfg(feature = "login")]
/// The accounts an imported user owns: the account whose own hash is imported (whoever signs
/// in with it knew that account's password), and nothing else of a person with several; for a
/// person imported with a forced reset through the inbox, the accounts whose product verified
/// the address (the reset proves them). The others wait for the merge flow.
pub fn import_owns(accounts: &[Account]) -> Vec<bool> {
    match import_hash(accounts) {
        Some(i) => (0..accounts.len()).map(|j| j == i).collect(),
        // Without a hash, the first sign-in is a reset through the inbox, which proves only
        // the accounts whose product verified the address.
        None => reset_proves(accounts),
    }
}

/// True when the merge service's mailbox proof would prove this remembered account.
pub fn merge_proves(a: &AccountRef) -> bool {
    a.proof.is_none() && mailbox_proves(a.verified)
}

/// True when the person should be sent to the merge service for this account: unproven, and a
/// mailbox proof could prove it (an account its product never verified waits for its own
/// password, so asking the mailbox again would be pointless).
pub fn merge_wanted(a: &AccountRef) -> bool {
    merge_proves(a)
}

/// How many logins a person is offered to prove, by its own password at the merge service, an
/// account whose product never verified the address; after that the offer stops (it may be
/// someone else's account with the same address, whose password they cannot know).
pub const PASSWORD_OFFERS: u32 = 3;

/// True when the merge service may prove this account by that account's own legacy password:
/// unproven, never verified by its product (so the mailbox proves nothing about it), held by no
/// other user, and not still to be told to forget a withdrawn link (that goes first). The
/// password proves it as at a lazy login, and like one it is withdrawn once someone proves the
/// mailbox (`withdrawn_by_mailbox`).
pub fn password_wanted(a: &AccountRef) -> bool {
    a.proof.is_none() && !a.verified && !a.held && !must_forget_auth0_id(a)
}

/// True when a link must be withdrawn once the mailbox is proven by someone: it was made only by
/// a password (typed at a lazy login, or its hash imported) on an address its product never
/// verified.
pub fn withdrawn_by_mailbox(a: &AccountRef) -> bool {
    matches!(a.proof.as_deref(), Some(proof::PASSWORD | proof::IMPORT)) && !a.verified
}

/// True when this account may be told the person's Auth0 id.
pub fn may_learn_auth0_id(a: &AccountRef) -> bool {
    a.proof.is_some()
}

/// True when this account was told the Auth0 id but no longer has a proof (its link was
/// withdrawn): the product must be told to forget it.
pub fn must_forget_auth0_id(a: &AccountRef) -> bool {
    a.proof.is_none() && a.fanout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Map;

    fn acct(product: &str, verified: bool) -> Account {
        let v = Map::new()
            .with("id", product)
            .with("email", "v@x.com")
            .with("email_verified", verified)
            .into();
        Account::from_json(product, &v).unwrap_or_else(|e| unreachable!("{e:?}"))
    }

    fn aref(proof: Option<&str>, verified: bool) -> AccountRef {
        AccountRef {
            product: "p".into(),
            id: "1".into(),
            proof: proof.map(str::to_owned),
            verified,
            fanout: false,
            linked: None,
            held: false,
            stale: None,
        }
    }

    #[test]
    fn a_squatter_cannot_create_the_user() {
        let accounts = [acct("squat", false), acct("victim", true)];
        assert_eq!(
            login_verdict(&accounts, &[true, false], false),
            LoginVerdict::ResetRequired
        );
        assert_eq!(
            login_verdict(&accounts, &[false, true], false),
            LoginVerdict::Create {
                email_verified: true
            }
        );
        assert_eq!(
            login_verdict(&accounts, &[false, false], false),
            LoginVerdict::NoMatch
        );
        assert_eq!(
            login_verdict(&[acct("a", false), acct("b", false)], &[true, false], false),
            LoginVerdict::ResetRequired
        );
    }

    #[test]
    fn a_lone_unverified_account_signs_in_unverified_unless_a_product_is_down() {
        let accounts = [acct("only", false)];
        assert_eq!(
            login_verdict(&accounts, &[true], false),
            LoginVerdict::Create {
                email_verified: false
            }
        );
        assert_eq!(
            login_verdict(&accounts, &[true], true),
            LoginVerdict::RetryLater
        );
        assert_eq!(
            login_verdict(&[acct("v", true)], &[true], true),
            LoginVerdict::Create {
                email_verified: true
            }
        );
    }

    #[cfg(feature = "login")]
    fn hashed(id: &str, verified: bool, hash: &str) -> Account {
        let mut a = acct(id, verified);
        a.password = Some(
            crate::json::parse(&format!(
                r#"{{"algorithm":"bcrypt","hash":{{"value":"{hash}"}}}}"#
            ))
            .unwrap_or_else(|e| unreachable!("{e:?}")),
        );
        a
    }

    #[cfg(feature = "login")]
    #[test]
    fn a_person_with_several_accounts_is_imported_with_the_first_verified_readable_hash_and_owns_only_that_account(
    ) {
        let good = "$2b$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        // An unverified account first (a squatter's, say), a verified one with an unreadable
        // hash, then the verified readable one: that one is imported, and owned alone.
        let accounts = [
            hashed("squat", false, good),
            hashed("broken", true, "nope"),
            hashed("real", true, good),
            hashed("later", true, good),
        ];
        assert_eq!(import_hash(&accounts), Some(2));
        assert_eq!(import_owns(&accounts), [false, false, true, false]);
        // Only unverified hashes: none is imported (it would prove nothing at a lazy login).
        let unverified = [hashed("a", false, good), hashed("b", false, good)];
        assert_eq!(import_hash(&unverified), None);
        assert_eq!(import_owns(&unverified), [false, false]);
        // A lone account keeps its own hash, verified or not.
        assert_eq!(import_hash(&[hashed("lone", false, good)]), Some(0));
        assert_eq!(import_hash(&[acct("lone", true)]), None);
    }

    #[test]
    fn the_mailbox_proves_only_verified_accounts() {
        let accounts = [acct("a", true), acct("b", false), acct("c", true)];
        assert_eq!(reset_proves(&accounts), [true, false, true]);
        // Nobody's hash can be read here: a forced reset, which proves the verified accounts.
        assert_eq!(import_hash(&accounts), None);
        assert_eq!(import_owns(&accounts), [true, false, true]);
        // A lone account: owned when its own hash is imported, or when the reset its first
        // sign-in needs proves it (its product verified the address); never otherwise.
        assert_eq!(import_owns(&[acct("lone", false)]), [false]);
        assert_eq!(import_owns(&[acct("lone", true)]), [true]);
        let mut hashed = acct("lone", false);
        hashed.password = Some(crate::json::Value::Bool(true));
        assert_eq!(import_owns(&[hashed]), [true]);
        assert!(merge_proves(&aref(None, true)));
        assert!(!merge_proves(&aref(None, false)));
        assert!(!merge_proves(&aref(Some("password"), true)));
        assert!(merge_wanted(&aref(None, true)));
        assert!(!merge_wanted(&aref(None, false)));
    }

    #[test]
    fn withdrawal_and_learning_the_id() {
        assert!(withdrawn_by_mailbox(&aref(Some("password"), false)));
        assert!(!withdrawn_by_mailbox(&aref(Some("password"), true)));
        assert!(!withdrawn_by_mailbox(&aref(Some("reset"), false)));
        assert!(!withdrawn_by_mailbox(&aref(None, false)));
        assert!(may_learn_auth0_id(&aref(Some("import"), false)));
        assert!(!may_learn_auth0_id(&aref(None, true)));
        let told = |proof: Option<&str>| AccountRef {
            fanout: true,
            ..aref(proof, false)
        };
        assert!(must_forget_auth0_id(&told(None)));
        assert!(!must_forget_auth0_id(&told(Some("password"))));
        assert!(!must_forget_auth0_id(&aref(None, false)));
        assert!(withdrawn_by_mailbox(&aref(Some("import"), false)));
        assert!(!withdrawn_by_mailbox(&aref(Some("import"), true)));
        assert!(!withdrawn_by_mailbox(&aref(Some("support"), false)));
        assert!(Proof::Reset.is_mailbox() && Proof::Merge.is_mailbox());
        assert!(!Proof::Password.is_mailbox() && !Proof::Import.is_mailbox());
        assert_eq!(Proof::Merge.name(), "merge");
    }

    #[test]
    fn every_proof_outranks_a_support_link_made_on_an_unvouched_address_and_nothing_else() {
        for p in [
            "password", "reset", "merge", "import", "identity", "provider", "support",
        ] {
            let kind = Proof::from_name(p).unwrap_or_else(|| unreachable!("{p}"));
            assert_eq!(kind.name(), p);
            assert_eq!(kind.rank(), if p == "support" { 1 } else { 2 });
            // A holder's proper proof is never outranked, vouched address or not.
            for unvouched in [false, true] {
                assert!(!outranks(p, "password", unvouched));
                assert!(!outranks(p, "merge", unvouched));
            }
            // A support link yields only when made on an address a provider never vouched for,
            // and only to a proof the person made of the account itself.
            assert_eq!(outranks(p, "support", true), p != "support", "{p}");
            assert!(!outranks(p, "support", false));
        }
        assert_eq!(Proof::from_name("admin"), None);
        // A proof name trickle never writes holds nothing.
        assert!(outranks("password", "admin", false));
        assert!(outranks("", "", false));
        assert!(
            !outranks("admin", "support", true),
            "an unknown proof outranks nothing"
        );
    }

    #[test]
    fn linking_needs_the_primarys_own_proof_of_an_account_the_newcomer_proved() {
        let mine = |proof: &str| AccountRef {
            linked: Some("auth0|primary".into()),
            ..aref(Some(proof), true)
        };
        let primary = |proof: Option<&str>, from: Option<&str>| PersonMeta {
            accounts: vec![aref(proof, true)],
            address_from: from.map(str::to_owned),
            ..PersonMeta::default()
        };
        let newcomer = mine("password");
        assert!(may_link(&primary(Some("password"), None), &[&newcomer]));
        assert!(
            !may_link(&primary(None, None), &[&newcomer]),
            "a candidate holds nothing"
        );
        assert!(may_link(&primary(Some("support"), None), &[&newcomer]));
        assert!(
            !may_link(
                &primary(Some("support"), Some("sign-in-with-slack")),
                &[&newcomer]
            ),
            "a support link on a workspace's word yields to the account's password"
        );
        let support = mine("support");
        assert!(may_link(
            &primary(Some("support"), Some("sign-in-with-slack")),
            &[&support]
        ));
        let other = AccountRef {
            id: "2".into(),
            ..mine("password")
        };
        assert!(
            !may_link(&primary(Some("password"), None), &[&other]),
            "another account"
        );
        assert!(!may_link(&primary(Some("password"), None), &[]));
    }
}
