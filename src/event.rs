//! Structured log events returned with every decision. They never carry passwords, hashes,
//! tokens or secrets: only kinds, product names, account ids and stable error codes.

use serde::Serialize;

/// One structured event for the host's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// What happened, e.g. `password_unverifiable`, `person_id_conflict`.
    pub event: &'static str,
    /// The product concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// The account concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// A stable error code, when the event reports a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// A short human-readable detail, free of secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Event {
    /// An event with only a kind.
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            product: None,
            account: None,
            code: None,
            detail: None,
        }
    }

    /// Sets the product.
    pub fn product(mut self, product: &str) -> Self {
        self.product = Some(product.to_owned());
        self
    }

    /// Sets the account id.
    pub fn account(mut self, account: &str) -> Self {
        self.account = Some(account.to_owned());
        self
    }

    /// Sets the error code.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An error as it crosses the boundary: a stable code and a message naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// Stable, dotted, machine-readable code (`email.invalid`, `token.expired`, …).
    pub code: &'static str,
    /// Human-readable explanation; never contains a secret.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
