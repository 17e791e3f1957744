//! The login decision on arbitrary input: never panics, never a profile without a matched
//! password, and never a profile for an address that is not canonical.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trickle::json::{self, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.len() > 64 << 10 {
        return;
    }
    let Ok(input) = json::parse(text) else { return };
    let Ok(login) = trickle::login::LoginInput::from_value(&input) else { return };
    let v = trickle::login::login(&login).to_value();
    if v.get("outcome").and_then(Value::as_str) == Some("profile") {
        let password = input.get("password").and_then(Value::as_str).unwrap_or("");
        assert!(!password.is_empty(), "a profile needs a password");
        let email = v
            .get("profile")
            .and_then(|p| p.get("email"))
            .and_then(Value::as_str)
            .unwrap_or("");
        assert_eq!(trickle::email::canonical(email).as_deref(), Ok(email));
    }
});
