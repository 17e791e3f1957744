//! trickle's decision core: pure functions from JSON-shaped inputs to decisions and effects.
//!
//! Nothing in this crate performs I/O, reads a clock or draws random numbers: the Node shell
//! passes `now` and any random values in, performs the effects that come back, and feeds the
//! results to the matching `apply_*` step. Invalid input is a decision carrying a stable error
//! code, never a panic.
#![forbid(unsafe_code)]

pub mod base64;
pub mod email;
pub mod event;
pub mod fields;
pub mod json;
pub mod ownership;
pub mod person;
pub mod time;

#[cfg(feature = "login")]
pub mod formats;
#[cfg(feature = "login")]
pub mod hashes;
#[cfg(feature = "login")]
pub mod limits;
#[cfg(feature = "lookup")]
pub mod login;
#[cfg(feature = "login")]
pub mod password;
#[cfg(feature = "login")]
pub mod stepwise;

#[cfg(feature = "chain")]
pub mod chain;
#[cfg(feature = "chain")]
pub mod token;

#[cfg(feature = "tools")]
pub mod bulk;
#[cfg(feature = "tools")]
pub mod support;

pub mod wasm;
#[cfg(feature = "small-alloc")]
use small_alloc as _;
