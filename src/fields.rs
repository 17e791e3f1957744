//! Reading trickle's inputs: typed fields of a JSON object, each error naming the field.

use crate::event::ErrorBody;
use crate::json::{Map, Value};

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
    use crate::json::parse;

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
