//! `custom_password_hash` descriptors: parsing never panics; an accepted descriptor stays inside
//! the work budget, and a wrong password never matches it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trickle::{json, password};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(v) = json::parse(text) else { return };
    let Ok(d) = password::parse(&v) else { return };
    if password::cost_ms(&d) > 50 {
        return; // accepted but slow: correct, just not worth a fuzzing iteration
    }
    let a = password::check(&d, "\u{1}fuzz-password-a");
    let b = password::check(&d, "\u{2}fuzz-password-b");
    // Two different passwords cannot both match one stored hash of 16 bytes or more.
    assert!(
        !(a == Ok(password::Check::Done(true)) && b == Ok(password::Check::Done(true))),
        "{text}"
    );
    assert!(!password::finish(&d, &[]));
});
