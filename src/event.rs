//! Structured log events returned with every decision. They never carry passwords, hashes,
//! tokens or secrets: only kinds, product names, account ids and stable error codes.

use crate::json::{Map, ObjectWriter, Value};

/// One structured event for the host's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened, e.g. `password_unverifiable`, `person_id_conflict`.
    pub event: &'static str,
    /// The product concerned, when there is one.
    pub product: Option<String>,
    /// The account concerned, when there is one.
    pub account: Option<String>,
    /// A stable error code, when the event reports a problem.
    pub code: Option<&'static str>,
    /// A short human-readable detail, free of secrets.
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

    /// As JSON: `{"event", "product"?, "account"?, "code"?, "detail"?}`.
    pub fn to_value(&self) -> Value {
        Map::new()
            .with("event", self.event)
            .with_opt("product", self.product.as_deref())
            .with_opt("account", self.account.as_deref())
            .with_opt("code", self.code)
            .with_opt("detail", self.detail.as_deref())
            .into()
    }

    /// As [`Event::to_value`], written straight into `out`.
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("event", self.event)
            .opt_str("product", self.product.as_deref())
            .opt_str("account", self.account.as_deref())
            .opt_str("code", self.code)
            .opt_str("detail", self.detail.as_deref());
        o.end();
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An error as it crosses the boundary: a stable code and a message naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable, dotted, machine-readable code (`email.invalid`, `token.expired`, …).
    pub code: &'static str,
    /// Human-readable explanation; never contains a secret.
    pub message: String,
}

impl From<crate::json::JsonError> for ErrorBody {
    fn from(e: crate::json::JsonError) -> Self {
        ErrorBody::new(crate::json::JsonError::CODE, e.message)
    }
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// As JSON: `{"code", "message"}`.
    pub fn to_value(&self) -> Value {
        Map::new()
            .with("code", self.code)
            .with("message", self.message.as_str())
            .into()
    }

    /// As [`ErrorBody::to_value`], written straight into `out`.
    pub fn write_json(&self, out: &mut String) {
        let mut o = ObjectWriter::new(out);
        o.str("code", self.code).str("message", &self.message);
        o.end();
    }
}

/// A list of events as a JSON array.
pub fn events_value(events: &[Event]) -> Value {
    Value::Array(events.iter().map(Event::to_value).collect())
}

/// As [`events_value`], written straight into `out`.
pub fn write_events(events: &[Event], out: &mut String) {
    crate::json::write_array(events, out, Event::write_json);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_as_their_values() {
        let events = vec![
            Event::new("merge_completed"),
            Event::new("fanout_failed")
                .product("paste")
                .account("p\"1")
                .code("fanout.http")
                .detail("HTTP 503"),
        ];
        let mut text = String::new();
        write_events(&events, &mut text);
        assert_eq!(text, events_value(&events).to_json());
        let mut error = String::new();
        ErrorBody::new("input.json", "bad \u{2028}").write_json(&mut error);
        assert_eq!(
            error,
            ErrorBody::new("input.json", "bad \u{2028}")
                .to_value()
                .to_json()
        );
    }
}
