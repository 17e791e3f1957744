//! A small JSON reader and writer.
//!
//! The deployable artefacts must stay under Auth0's 100 kB script limit with the wasm inlined;
//! `serde_json` with derives cost about 60 kB of wasm here, this module a few. It is strict:
//! duplicate keys, lone surrogates, trailing data and nesting deeper than [`MAX_DEPTH`] are
//! errors (duplicate keys in a token's claims are a classic confusion attack).

use std::fmt::Write as _;

use crate::event::ErrorBody;

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

/// A JSON object: keys in insertion order, unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Map(Vec<(String, Value)>);

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
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Builder form of [`Map::insert`].
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` only when `value` is `Some`.
    pub fn with_opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
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
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
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

    /// The object, if this is one.
    /// The object, mutably, if this is one.
    pub fn as_object_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

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

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    // Copy runs that need no escape in one go; only ASCII controls, quote and backslash are
    // escaped, plus U+2028/U+2029 (so the text is also safe inside a JS string literal).
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => "",
            _ => continue,
        };
        out.push_str(s.get(run_start..i).unwrap_or(""));
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escape);
        }
        run_start = i + c.len_utf8();
    }
    out.push_str(s.get(run_start..).unwrap_or(""));
    out.push('"');
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(n),
        Value::String(s) => write_str(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write_value(x, out);
            }
            out.push('}');
        }
    }
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

fn syntax(what: &str, at: usize) -> ErrorBody {
    ErrorBody::new(
        "input.json",
        format!("input is not valid JSON: {what} at byte {at}"),
    )
}

impl Parser<'_> {
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

    fn value(&mut self, depth: usize) -> Result<Value, ErrorBody> {
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
                    let k = self.string()?;
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
                            let mut keys: Vec<&str> = m.0.iter().map(|(k, _)| k.as_str()).collect();
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

    fn number(&mut self) -> Result<Value, ErrorBody> {
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

    fn hex4(&mut self) -> Result<u32, ErrorBody> {
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

    fn string(&mut self) -> Result<String, ErrorBody> {
        if !self.eat(b"\"") {
            return Err(syntax("expected a string", self.i));
        }
        // Most strings have no escape: one exact allocation, straight from the (valid UTF-8)
        // input, cut at ASCII quotes, so at character boundaries.
        {
            let rest = self.b.get(self.i..).unwrap_or_default();
            if let Some(run) = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            {
                if rest.get(run) == Some(&b'"') {
                    let text = self.s.get(self.i..self.i + run);
                    if let Some(text) = text {
                        self.i += run + 1;
                        return Ok(text.to_owned());
                    }
                }
            }
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy the run of plain bytes up to the next quote, backslash or control character.
            let rest = self.b.get(self.i..).unwrap_or_default();
            let run = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
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
pub fn parse(text: &str) -> Result<Value, ErrorBody> {
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

/// Reads typed fields of an input object, naming the field in every error.
pub struct Fields<'a> {
    obj: &'a Map,
    path: &'a str,
}

fn field_name(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Fields<'a> {
    /// Fields of `v`, which must be an object; `path` names it in errors (empty at the root).
    pub fn of(v: &'a Value, path: &'a str) -> Result<Self, ErrorBody> {
        match v {
            Value::Object(obj) => Ok(Fields { obj, path }),
            _ => Err(ErrorBody::new(
                "input.wrong_type",
                format!(
                    "{} must be an object",
                    if path.is_empty() { "input" } else { path }
                ),
            )),
        }
    }

    fn wrong(&self, key: &str, what: &str) -> ErrorBody {
        ErrorBody::new(
            "input.wrong_type",
            format!("{} must be {what}", field_name(self.path, key)),
        )
    }

    /// The raw member (absent and `null` are both `None`).
    pub fn any(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<&'a str, ErrorBody> {
        match self.any(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.wrong(key, "a string")),
            None => Err(ErrorBody::new(
                "input.missing_field",
                format!("{} is required", field_name(self.path, key)),
            )),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ErrorBody> {
        match self.any(key) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(key, "a string")),
            None => Ok(None),
        }
    }

    /// An optional boolean, `false` when absent.
    pub fn bool(&self, key: &str) -> Result<bool, ErrorBody> {
        match self.any(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.wrong(key, "a boolean")),
            None => Ok(false),
        }
    }

    /// A required integer.
    pub fn int(&self, key: &str) -> Result<i64, ErrorBody> {
        match self.any(key).map(Value::as_i64) {
            Some(Some(n)) => Ok(n),
            Some(None) => Err(self.wrong(key, "an integer")),
            None => Err(ErrorBody::new(
                "input.missing_field",
                format!("{} is required", field_name(self.path, key)),
            )),
        }
    }

    /// An optional array (empty when absent).
    pub fn array(&self, key: &str) -> Result<&'a [Value], ErrorBody> {
        match self.any(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(self.wrong(key, "an array")),
            None => Ok(&[]),
        }
    }

    /// An array of strings (empty when absent).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, ErrorBody> {
        self.array(key)?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.wrong(key, "an array of strings"))
            })
            .collect()
    }
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

    #[test]
    fn fields_name_the_path() {
        let v = parse(r#"{"user":{"id":5}}"#).unwrap_or_default();
        let user = v.get("user").cloned().unwrap_or_default();
        let f = Fields::of(&user, "user");
        let e = f.and_then(|f| f.str("id").map(str::to_owned)).err();
        assert_eq!(
            e.map(|e| e.message),
            Some("user.id must be a string".to_owned())
        );
    }
}
