//! The strict JSON reader: never panics, and what it accepts writes back to text it reads again
//! as the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trickle::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = json::parse(text) {
        let again = json::parse(&v.to_json());
        assert_eq!(again.as_ref(), Ok(&v));
    }
});
