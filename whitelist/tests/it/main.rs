//! Integration tests of the `whitelist` crate: one test binary, one module per concern.

#![allow(missing_docs)]

mod cli;
mod load;
mod props;
mod verdict;
mod warnings;

use jiff::Timestamp;
use whitelist::Whitelist;

/// The example file shipped with the crate (the TTL job's demo uses it too).
pub const EXAMPLE: &str = include_str!("../../examples/whitelist.yaml");

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// A fixed "now" before every `expires` in the fixtures.
pub fn now() -> Timestamp {
    ts("2026-06-01T00:00:00Z")
}

pub fn wl(yaml: &str) -> Whitelist {
    match Whitelist::from_yaml_str(yaml, "whitelist.yaml") {
        Ok(w) => w,
        Err(e) => panic!("fixture should load:\n{e}"),
    }
}

/// The problems of an invalid fixture, rendered.
pub fn problems(yaml: &str) -> Vec<String> {
    match Whitelist::from_yaml_str(yaml, "whitelist.yaml") {
        Ok(_) => panic!("fixture should be invalid"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}
