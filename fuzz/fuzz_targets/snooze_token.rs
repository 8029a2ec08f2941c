//! Snooze tokens: whatever arrives in a link's `token` and path is refused or accepted without
//! a panic, and a token the keyring signed verifies back to exactly the claims it was made of.
#![no_main]

use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use ttl_teardown::snooze::token::{Claims, Keyring, LinkAction};

fuzz_target!(|data: &[u8]| {
    let ring = Keyring::from_keys(vec![("k1".into(), vec![7; 32])], "k1").expect("keys");
    let now: Timestamp = "2026-11-23T12:00:00Z".parse().expect("now");
    let text = String::from_utf8_lossy(data);
    // As received: token and resource split at the first newline.
    let (token, resource) = text.split_once('\n').unwrap_or((&text, "k8s:x"));
    let _ = ring.verify(token, resource, now);

    // Round trip: claims built from the input, signed, verified.
    if data.len() < 10 {
        return;
    }
    let secs = i64::from(i32::from_le_bytes([data[0], data[1], data[2], data[3]]));
    let Ok(deadline) = Timestamp::from_second(1_700_000_000 + secs) else {
        return;
    };
    let rest = String::from_utf8_lossy(&data[10..]);
    let (resource, owner) = rest.split_once('\u{0}').unwrap_or((&rest, "o@example.com"));
    let claims = Claims {
        resource: resource.to_string(),
        action: if data[4] % 2 == 0 {
            LinkAction::Extend(u32::from(data[5]))
        } else {
            LinkAction::Release
        },
        deadline,
        extension_count: data[6],
        owner: owner.to_string(),
        expires: deadline,
    };
    let token = ring.sign(&claims);
    let Ok(before) = Timestamp::from_second(deadline.as_second() - 1) else {
        return;
    };
    match ring.verify(&token, &claims.resource, before) {
        Ok(back) => assert_eq!(back, claims, "token {token}"),
        Err(e) => panic!("a token we signed is refused: {e:?} ({token})"),
    }
});
