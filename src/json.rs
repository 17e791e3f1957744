//! A small JSON reader and writer.
//!
//! The deployable artefacts must stay under Auth0's 100 kB script limit with the wasm inlined;
//! `serde_json` with derives cost about 60 kB of wasm here, this module a few. It is strict:
//! duplicate keys, lone surrogates, trailing data and nesting deeper than [`MAX_DEPTH`] are
//! errors (duplicate keys in a token's claims are a classic confusion attack).

use std::borrow::Cow;
use std::fmt::Write as _;

/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// A JSON value. Numbers keep their text, so integers of any size survive a round trip.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written (already checked against the JSON grammar).
    Number(String),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, in document order.
    Object(Map),
}

/// A JSON object: keys in insertion order, unique. Keys the code names (`"trickle"`,
/// `"accounts"`, …) are kept as borrowed text, so building an answer allocates no key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Map(Vec<(Cow<'static, str>, Value)>);

impl Map {
    /// An empty object.
    pub fn new() -> Self {
        Map(Vec::new())
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing any earlier value.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Builder form of [`Map::insert`].
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` only when `value` is `Some`.
    pub fn with_opt(self, key: &'static str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.with(key, v),
            None => self,
        }
    }

    /// Copies every entry of `other` in.
    pub fn extend(&mut self, other: Map) {
        for (k, v) in other.0 {
            self.insert(k, v);
        }
    }

    /// Removes a key, if present.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// Takes a key's value out, leaving the key absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// The value of a key, mutably.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// This object as a [`Value`].
    pub fn into_value(self) -> Value {
        Value::Object(self)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as an integer, if it is one (a zero fraction such as `1.0` is accepted).
    pub fn as_i64(&self) -> Option<i64> {
        let Value::Number(n) = self else { return None };
        let (int, frac) = n.split_once('.').unwrap_or((n, ""));
        if n.contains(['e', 'E']) || !frac.bytes().all(|b| b == b'0') {
            return None;
        }
        int.parse().ok()
    }

    /// The array, if this is one.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The object, mutably, if this is one.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// True for an object.
    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// Compact JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        write_value(self, &mut out);
        out
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::String(s.clone())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n.to_string())
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(n.to_string())
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Bytes a JSON string cannot hold as they are: controls, quote and backslash (and `also`).
#[allow(clippy::indexing_slicing)] // const evaluation: every index is below 256
const fn special(also: u8) -> [bool; 256] {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[also as usize] = true;
    table
}

/// Object keys of trickle's own inputs and records, as static text.
#[cfg(feature = "chain")]
fn known_key(text: &str) -> Option<&'static str> {
    Some(match text {
        "account" => "account",
        "accounts" => "accounts",
        "address" => "address",
        "address_from" => "address_from",
        "alg" => "alg",
        "app_metadata" => "app_metadata",
        "attempts" => "attempts",
        "aud" => "aud",
        "auth0_user_id" => "auth0_user_id",
        "body" => "body",
        "bulkImported" => "bulkImported",
        "can_redirect" => "can_redirect",
        "config" => "config",
        "connection" => "connection",
        "connection_id" => "connection_id",
        "created_at" => "created_at",
        "discover" => "discover",
        "email" => "email",
        "email_verified" => "email_verified",
        "error" => "error",
        "exp" => "exp",
        "family_name" => "family_name",
        "fanout" => "fanout",
        "fanout_budget_ms" => "fanout_budget_ms",
        "forget" => "forget",
        "given_name" => "given_name",
        "hd" => "hd",
        "held" => "held",
        "holder" => "holder",
        "iat" => "iat",
        "id" => "id",
        "identities" => "identities",
        "identity" => "identity",
        "identity_lookups" => "identity_lookups",
        "input" => "input",
        "iss" => "iss",
        "issued_at" => "issued_at",
        "jti" => "jti",
        "link" => "link",
        "linked" => "linked",
        "lookup_timeout_ms" => "lookup_timeout_ms",
        "lookups" => "lookups",
        "merge" => "merge",
        "merge_url" => "merge_url",
        "mfa_factors" => "mfa_factors",
        "migrated" => "migrated",
        "ms" => "ms",
        "name" => "name",
        "now" => "now",
        "ok" => "ok",
        "outcome" => "outcome",
        "password" => "password",
        "pending" => "pending",
        "person_id" => "person_id",
        "phase" => "phase",
        "picture" => "picture",
        "product" => "product",
        "products" => "products",
        "proof" => "proof",
        "provider" => "provider",
        "replace" => "replace",
        "results" => "results",
        "retries" => "retries",
        "session_token" => "session_token",
        "shown" => "shown",
        "social" => "social",
        "stale" => "stale",
        "state" => "state",
        "status" => "status",
        "sub" => "sub",
        "subject" => "subject",
        "token_secret" => "token_secret",
        "totp_secret" => "totp_secret",
        "transaction" => "transaction",
        "trickle" => "trickle",
        "typ" => "typ",
        "unproven" => "unproven",
        "unverified" => "unverified",
        "user" => "user",
        "user_id" => "user_id",
        "v" => "v",
        "verified" => "verified",
        "vouched" => "vouched",
        _ => return None,
    })
}

/// True when a scan with `table` stops at `c`.
fn stops(table: &[bool; 256], c: u8) -> bool {
    table.get(usize::from(c)) == Some(&true)
}

/// What the writer stops at: [`special`] bytes and 0xE2, the lead byte of U+2028/U+2029.
static WRITE_STOPS: [bool; 256] = special(0xE2);
/// What the parser stops at inside a string: [`special`] bytes.
static READ_STOPS: [bool; 256] = special(b'"');

/// Writes `s` as a JSON string. Runs that need no escape are copied in one go; only ASCII
/// controls, quote and backslash are escaped, plus U+2028/U+2029 (so the text is also safe inside
/// a JS string literal). The scan is over bytes: every byte that starts an escape is ASCII or the
/// lead byte of U+2028/U+2029, so every cut is at a character boundary.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let b = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    loop {
        let rest = b.get(i..).unwrap_or_default();
        let Some(at) = rest.iter().position(|&c| stops(&WRITE_STOPS, c)) else {
            break;
        };
        i += at;
        let (escape, width): (&str, usize) = match b.get(i).copied().unwrap_or(0) {
            b'"' => ("\\\"", 1),
            b'\\' => ("\\\\", 1),
            b'\n' => ("\\n", 1),
            b'\r' => ("\\r", 1),
            b'\t' => ("\\t", 1),
            0xE2 if b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8 | 0xA9)) => {
                ("", 3)
            }
            0xE2 => {
                i += 1;
                continue;
            }
            _ => ("", 1),
        };
        out.push_str(s.get(run_start..i).unwrap_or(""));
        if escape.is_empty() {
            let code = s
                .get(i..i + width)
                .and_then(|ch| ch.chars().next())
                .map_or(0, |ch| ch as u32);
            let _ = write!(out, "\\u{code:04x}");
        } else {
            out.push_str(escape);
        }
        i += width;
        run_start = i;
    }
    out.push_str(s.get(run_start..).unwrap_or(""));
    out.push('"');
}

/// Writes one JSON object straight into text, member by member: answers made of typed values
/// need no tree of [`Value`]s allocated, copied and dropped on their way out.
pub struct ObjectWriter<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Opens an object at the end of `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, empty: true }
    }

    /// Writes `key:` and hands the text over for the value.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_str(key, self.out);
        self.out.push(':');
        self.out
    }

    /// A string member.
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        write_str(value, self.key(key));
        self
    }

    /// A string member, left out when `None`.
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.str(key, v);
        }
        self
    }

    /// A boolean member.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// An integer member.
    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        write_int(value, self.key(key));
        self
    }

    /// A member holding any value.
    pub fn value(&mut self, key: &str, value: &Value) -> &mut Self {
        write_value(value, self.key(key));
        self
    }

    /// A member holding an array, each item written by `each`.
    pub fn array<T>(
        &mut self,
        key: &str,
        items: &[T],
        each: impl Fn(&T, &mut String),
    ) -> &mut Self {
        write_array(items, self.key(key), each);
        self
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

/// Writes an integer in decimal (without the formatting machinery: the answers hold several).
pub fn write_int(value: i64, out: &mut String) {
    if value < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(d) = digits.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(digits.get(at..).unwrap_or_default()).unwrap_or_default());
}

/// Writes an array, each item by `each`.
pub fn write_array<T>(items: &[T], out: &mut String, each: impl Fn(&T, &mut String)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(item, out);
    }
    out.push(']');
}

/// Writes an array of strings.
pub fn write_strings(items: &[String], out: &mut String) {
    write_array(items, out, |s, out| write_str(s, out));
}

/// Writes any value as compact JSON.
pub fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => write_array(a, out, write_value),
        Value::Object(m) => write_map(m, out),
    }
}

/// Writes an object as compact JSON.
pub fn write_map(m: &Map, out: &mut String) {
    out.push('{');
    for (i, (k, x)) in m.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(k, out);
        out.push(':');
        write_value(x, out);
    }
    out.push('}');
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Text that is not JSON trickle accepts: what is wrong and where. Its own type, so that this
/// module depends on no other of the crate (`event::ErrorBody` converts it, code `input.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What was wrong, and at which byte.
    pub message: String,
}

impl JsonError {
    /// The stable code every JSON syntax error carries.
    pub const CODE: &'static str = "input.json";
}

fn syntax(what: &str, at: usize) -> JsonError {
    JsonError {
        message: format!("input is not valid JSON: {what} at byte {at}"),
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.b.get(self.i..self.i + lit.len()) == Some(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(syntax("nesting too deep", self.i));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                let start = self.i;
                self.ws();
                if self.eat(b"}") {
                    return Ok(Value::Object(m));
                }
                loop {
                    self.ws();
                    let at = self.i;
                    let k = self.key()?;
                    self.ws();
                    if !self.eat(b":") {
                        return Err(syntax("expected ':'", self.i));
                    }
                    let v = self.value(depth + 1)?;
                    // Small objects are checked key by key; large ones once, sorted, at the end
                    // (an answer with 80 000 keys must not cost a quadratic search).
                    if m.0.len() < 16 && m.contains_key(&k) {
                        return Err(syntax("duplicate key", at));
                    }
                    m.0.push((k, v));
                    self.ws();
                    if self.eat(b"}") {
                        if m.0.len() > 16 {
                            let mut keys: Vec<&str> = m.0.iter().map(|(k, _)| k.as_ref()).collect();
                            keys.sort_unstable();
                            if keys.windows(2).any(|w| w.first() == w.get(1)) {
                                return Err(syntax("duplicate key", start));
                            }
                        }
                        return Ok(Value::Object(m));
                    }
                    if !self.eat(b",") {
                        return Err(syntax("expected ',' or '}'", self.i));
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat(b"]") {
                    return Ok(Value::Array(a));
                }
                loop {
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b"]") {
                        return Ok(Value::Array(a));
                    }
                    if !self.eat(b",") {
                        return Err(syntax("expected ',' or ']'", self.i));
                    }
                }
            }
            Some(b'"') => self.string().map(Value::String),
            Some(b't') if self.eat(b"true") => Ok(Value::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Value::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(syntax("unexpected character", self.i)),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.i;
        self.eat(b"-");
        if self.eat(b"0") {
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(syntax("leading zero", self.i));
            }
        } else if self.digits() == 0 {
            return Err(syntax("expected digits", self.i));
        }
        if self.eat(b".") && self.digits() == 0 {
            return Err(syntax("expected digits", self.i));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b"+") {
                self.eat(b"-");
            }
            if self.digits() == 0 {
                return Err(syntax("expected digits", self.i));
            }
        }
        // ASCII only, so the cut is at character boundaries.
        Ok(Value::Number(
            self.s.get(start..self.i).unwrap_or_default().to_owned(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let text = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| syntax("short \\u escape", self.i))?;
        // `from_str_radix` takes a leading `+`; JSON (and JSON.parse) takes four hex digits only.
        if !text.iter().all(u8::is_ascii_hexdigit) {
            return Err(syntax("bad \\u escape", self.i));
        }
        let s = std::str::from_utf8(text).map_err(|_| syntax("bad \\u escape", self.i))?;
        let n = u32::from_str_radix(s, 16).map_err(|_| syntax("bad \\u escape", self.i))?;
        self.i += 4;
        Ok(n)
    }

    /// An object's key: the keys trickle's own inputs use are taken from [`known_key`] (no
    /// allocation, nothing to free), any other as its own text.
    fn key(&mut self) -> Result<Cow<'static, str>, JsonError> {
        #[cfg(feature = "chain")]
        if let Some(known) = self.known_key() {
            return Ok(Cow::Borrowed(known));
        }
        self.string().map(Cow::Owned)
    }

    /// The post-login chain's build only: the size-bound builds keep to plain keys.
    #[cfg(feature = "chain")]
    fn known_key(&mut self) -> Option<&'static str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let text = self.plain(self.i + 1)?;
        let known = known_key(text)?;
        self.i += text.len() + 2;
        Some(known)
    }

    /// The text from `from` to the next quote when nothing on the way needs unescaping (most
    /// strings): straight from the (valid UTF-8) input, cut at an ASCII quote, so at a character
    /// boundary.
    fn plain(&self, from: usize) -> Option<&'a str> {
        let rest = self.b.get(from..)?;
        let run = rest.iter().position(|&c| stops(&READ_STOPS, c))?;
        if rest.get(run) != Some(&b'"') {
            return None;
        }
        self.s.get(from..from + run)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        if !self.eat(b"\"") {
            return Err(syntax("expected a string", self.i));
        }
        // Most strings have no escape: one exact allocation.
        if let Some(text) = self.plain(self.i) {
            self.i += text.len() + 1;
            return Ok(text.to_owned());
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy the run of plain bytes up to the next quote, backslash or control character.
            let rest = self.b.get(self.i..).unwrap_or_default();
            let run = rest
                .iter()
                .position(|&c| stops(&READ_STOPS, c))
                .unwrap_or(rest.len());
            out.extend_from_slice(rest.get(..run).unwrap_or_default());
            self.i += run;
            let c = self
                .peek()
                .ok_or_else(|| syntax("unterminated string", self.i))?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self
                        .peek()
                        .ok_or_else(|| syntax("unterminated string", self.i))?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return Err(syntax("lone surrogate", self.i));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(syntax("lone surrogate", self.i));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or_else(|| syntax("lone surrogate", self.i))?
                        }
                        _ => return Err(syntax("bad escape", self.i)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(syntax("control character in string", self.i)),
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| syntax("invalid UTF-8", self.i))
    }
}

/// Parses JSON text.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(syntax("trailing data", p.i));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let text = r#"{"a":[1,-2.5e3,true,false,null],"b":"x\"\\\n\u0001é😀","c":{}}"#;
        let v = parse(text).unwrap_or_default();
        assert_eq!(
            v.to_json(),
            r#"{"a":[1,-2.5e3,true,false,null],"b":"x\"\\\n\u0001é😀","c":{}}"#
        );
        assert_eq!(parse(r#""\ud83d\ude00""#), Ok(Value::String("😀".into())));
        assert_eq!(parse(" 12 ").ok().and_then(|v| v.as_i64()), Some(12));
        assert_eq!(parse("1.0").ok().and_then(|v| v.as_i64()), Some(1));
        assert_eq!(parse("1.5").ok().and_then(|v| v.as_i64()), None);
    }

    #[test]
    fn escapes_exactly_what_json_and_js_string_literals_need() {
        let out = |s: &str| {
            let mut o = String::new();
            write_str(s, &mut o);
            o
        };
        assert_eq!(out(""), r#""""#);
        assert_eq!(out("plain"), r#""plain""#);
        assert_eq!(out("\t\r\n\u{8}\u{1f}"), r#""\t\r\n\u0008\u001f""#);
        assert_eq!(out("a\"b\\c"), r#""a\"b\\c""#);
        // U+2028 and U+2029 end a line inside a JS string literal; their neighbours sharing the
        // lead byte 0xE2 (U+2027, U+202A, U+20AC) are copied as they are.
        assert_eq!(out("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        assert_eq!(out("\u{2027}\u{202a}€"), "\"\u{2027}\u{202a}€\"");
        assert_eq!(out("é😀\u{2028}"), r#""é😀\u2028""#);
        // Whatever is written reads back as the same text.
        for s in [
            "\u{2028}",
            "€\"\\",
            "\u{0}\u{7f}\u{80}",
            "\u{e2}\u{2028}\u{e2}",
        ] {
            assert_eq!(parse(&out(s)), Ok(Value::String(s.into())));
        }
    }

    #[test]
    fn the_object_writer_writes_what_the_value_writer_writes() {
        let mut text = String::new();
        let mut o = ObjectWriter::new(&mut text);
        o.str("a", "x\"y")
            .opt_str("absent", None)
            .opt_str("b", Some("z"))
            .bool("c", true)
            .int("d", -42)
            .value("e", &Value::Array(vec![Value::Null]))
            .array("f", &["p".to_owned(), "q".to_owned()], |s, out| {
                write_str(s, out)
            });
        o.end();
        let value = Map::new()
            .with("a", "x\"y")
            .with("b", "z")
            .with("c", true)
            .with("d", -42i64)
            .with("e", Value::Array(vec![Value::Null]))
            .with("f", vec!["p", "q"])
            .into_value();
        assert_eq!(text, value.to_json());
        assert_eq!(parse(&text), Ok(value));
    }

    #[test]
    fn integers_are_written_as_rust_writes_them() {
        for n in [
            0,
            7,
            -7,
            10,
            1_796_134_935,
            i64::MAX,
            i64::MIN,
            -1_000_000_000_000,
        ] {
            let mut out = String::new();
            write_int(n, &mut out);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn known_keys_are_read_as_any_other() {
        let v = parse(r#"{"product":"a","produc":"b","pro\u0064uct2":"c","products":[]}"#)
            .unwrap_or_default();
        assert_eq!(v.get("product").and_then(Value::as_str), Some("a"));
        assert_eq!(v.get("produc").and_then(Value::as_str), Some("b"));
        assert_eq!(v.get("product2").and_then(Value::as_str), Some("c"));
        assert_eq!(parse(r#"{"product":1,"product":2}"#).ok(), None);
    }

    #[test]
    fn refuses_bad_json() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,\"a\":2}",
            "01",
            "1.",
            "-",
            "\"\\ud800\"",
            "\"\\x\"",
            "tru",
            "1 2",
            "\"a\u{1}\"",
            "\"\\u+051\"",
            "\"\\u-051\"",
            "\"\\u 051\"",
            &deep,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duplicate_keys_in_large_objects_are_found_without_a_quadratic_search() {
        let n = 80_000;
        let mut text = String::from("{");
        for i in 0..n {
            text.push_str(&format!("\"k{i}\":0,"));
        }
        text.push_str("\"k0\":1}");
        assert!(parse(&text).is_err());
        let ok = text.replace("\"k0\":1}", "\"z\":1}");
        assert_eq!(
            parse(&ok)
                .ok()
                .and_then(|v| v.as_object().map(|m| m.iter().count())),
            Some(n + 1)
        );
        for i in 0..20 {
            let mut t = String::from("{");
            for j in 0..20 {
                t.push_str(&format!("\"k{j}\":0,"));
            }
            t.push_str(&format!("\"k{i}\":1}}"));
            assert!(parse(&t).is_err(), "duplicate k{i}");
        }
    }
}
