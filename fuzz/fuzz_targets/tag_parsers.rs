//! Tags as a resource carries them (anyone with tag rights writes them): every parser gives a
//! value or a violation, never a panic.
#![no_main]

use std::collections::BTreeMap;

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use ttl_teardown::tags::{TagPolicy, is_plausible_email, parse_created_at, parse_tags, parse_ttl};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_ttl(&text);
    let _ = parse_created_at(&text);
    let _ = is_plausible_email(&text);
    // One tag per line, `key=value`; the standard keys get the lines' values in turn too.
    let mut tags: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let keys = [
        "environment",
        "owner",
        "project",
        "cost-center",
        "ttl",
        "created_at",
        "auto-teardown",
        "data-class",
        "ttl-notified-stage",
        "ttl-extension-count",
        "ttl-extended-days",
    ];
    for (k, v) in keys.iter().zip(text.lines()) {
        tags.entry((*k).to_string())
            .or_insert_with(|| v.to_string());
    }
    let now: Timestamp = "2026-11-23T12:00:00Z".parse().expect("now");
    let _ = parse_tags(&tags, None, &TagPolicy::default(), now);
});
