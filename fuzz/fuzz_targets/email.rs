//! The canonical address is idempotent and agrees with full Unicode lower-casing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use trickle::email;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(once) = email::canonical(text) {
        assert_eq!(email::canonical(&once).as_deref(), Ok(once.as_str()));
        assert_eq!(once.to_lowercase(), once);
    }
});
