//! Fixtures every test tier shares, so that a "valid tag set" means the same thing in a unit
//! test of the planner, a provider test against moto and a binary-level test of a job.

use std::collections::BTreeMap;

/// The owner the fixtures name.
pub const OWNER: &str = "dev@example.com";

/// A tag set that satisfies the platform's tagging standard: a non-production (`dev`),
/// opted-in, `internal` resource with a 7-day ttl, created 2026-11-20T12:00:00Z.
pub fn valid_tags() -> BTreeMap<String, String> {
    tags(&[
        ("environment", "dev"),
        ("owner", OWNER),
        ("project", "checkout"),
        ("cost-center", "cc-42"),
        ("ttl", "7d"),
        ("created_at", "2026-11-20T12:00:00Z"),
        ("auto-teardown", "true"),
        ("data-class", "internal"),
    ])
}

/// A tag map from pairs.
pub fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// [`valid_tags`] with `changes` applied (an empty value removes the tag).
pub fn valid_tags_with(changes: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut t = valid_tags();
    for (k, v) in changes {
        if v.is_empty() {
            t.remove(*k);
        } else {
            t.insert(k.to_string(), v.to_string());
        }
    }
    t
}
