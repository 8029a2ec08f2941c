//! Signed link tokens: the **Snooze +N days** and **Delete now** links of the warning emails.
//!
//! A token is `v2.<key id>.<claims>.<mac>`. The claims are base64url of a short text,
//! `<action>~<deadline>~<extension count>~<expires>~<owner>` (action `7`, `14` … for a snooze
//! of that many days, `r` for a release; instants as Unix seconds, with `.nanos` only when not
//! whole), and the MAC is HMAC-SHA256, cut to its first 16 bytes (128 bits, the truncation
//! RFC 2104 §5 allows), over `v2.<key id>.<claims>` **and the resource id**, with the key named
//! by the key id. The resource id is bound by the MAC but not carried: it is already in the
//! link's path, and the link stays about half as long (≈ 100 characters of token instead of
//! ≈ 300). Keys can rotate (sign with the active key, verify with any key still mounted)
//! without breaking links already sent.
//!
//! The claims bind the action, the resource's **current deadline and extension count**, the
//! owner it was sent to, and the link's own expiry. Once a snooze or a release is applied the
//! deadline changes, so a used link no longer matches — nor does its sibling in the same email:
//! links are single use.
//!
//! `v1` tokens (JSON claims with the resource inside, full MAC), sent before this format, still
//! verify until they expire (at most `max_lifetime` after they were sent, in practice a few days).
//!
//! Every verification failure is the same opaque [`TokenError`]: callers answer the same 403 for a
//! forged, tampered, expired, unknown-key or mismatched token, whether or not the resource exists.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const VERSION_V1: &str = "v1";

/// Shortest accepted key, in bytes (HMAC-SHA256 wants at least its output size).
pub const MIN_KEY_BYTES: usize = 32;

/// What a link asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkAction {
    /// Extend the deadline by this many days (**Snooze +N days**).
    Extend(u32),
    /// Delete the resource at the next run (**Delete now**).
    Release,
}

impl LinkAction {
    fn encode(self) -> String {
        match self {
            LinkAction::Extend(days) => days.to_string(),
            LinkAction::Release => "r".to_string(),
        }
    }

    fn decode(text: &str) -> Option<LinkAction> {
        match text {
            "r" => Some(LinkAction::Release),
            d => d.parse().ok().map(LinkAction::Extend),
        }
    }
}

/// What a link may do, and for which state of the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The resource id (ARN or `k8s:…`), bound by the MAC.
    pub resource: String,
    /// Snooze by N days, or release.
    pub action: LinkAction,
    /// The resource's deadline when the link was made.
    pub deadline: Timestamp,
    /// The resource's extension count when the link was made.
    pub extension_count: u8,
    /// Who the link was sent to (recorded as who extended or released).
    pub owner: String,
    /// The link stops working at this instant: when the resource can first be deleted (its
    /// deadline, or later after a late warning: `Decision::delete_not_before`).
    pub expires: Timestamp,
}

/// The claims of a `v1` token (JSON), still accepted until they expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ClaimsV1 {
    #[serde(rename = "r")]
    resource: String,
    #[serde(rename = "d")]
    days: u32,
    #[serde(rename = "dl")]
    deadline: Timestamp,
    #[serde(rename = "n")]
    extension_count: u8,
    #[serde(rename = "o")]
    owner: String,
    #[serde(rename = "exp")]
    expires: Timestamp,
}

/// Bytes of the HMAC-SHA256 tag kept in a `v2` token.
const MAC_BYTES: usize = 16;

fn encode_instant(t: Timestamp) -> String {
    let nanos = t.subsec_nanosecond();
    if nanos == 0 {
        t.as_second().to_string()
    } else {
        // Negative subsecond parts only occur before 1970; keep the exact instant anyway.
        format!("{}.{nanos}", t.as_second())
    }
}

fn decode_instant(text: &str) -> Option<Timestamp> {
    let (secs, nanos) = match text.split_once('.') {
        Some((s, n)) => (s.parse().ok()?, n.parse().ok()?),
        None => (text.parse().ok()?, 0),
    };
    Timestamp::new(secs, nanos).ok()
}

/// A token was refused. Deliberately says nothing about why (logs may, answers must not).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid or expired snooze token")]
pub struct TokenError {
    /// Why, for the server's log only.
    pub detail: &'static str,
}

/// The signing keys, by key id.
pub struct Keyring {
    keys: BTreeMap<String, SecretSlice<u8>>,
    active: String,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

/// A keyring that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The keys directory could not be read.
    #[error("cannot read snooze keys from {path}: {source}")]
    Read {
        /// The directory or file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The keys are unusable.
    #[error("snooze keys in {path}: {message}")]
    Invalid {
        /// The directory.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Keyring {
    /// Reads every file of `dir` (a mounted Kubernetes Secret: one file per key id, the file
    /// content is the key; a trailing newline is ignored; files starting with `.` are skipped).
    /// `active` names the key new links are signed with.
    pub fn load(dir: &Path, active: &str) -> Result<Keyring, KeyringError> {
        let path = dir.display().to_string();
        let read_err = |source| KeyringError::Read {
            path: path.clone(),
            source,
        };
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            let mut bytes = std::fs::read(entry.path()).map_err(read_err)?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            keys.push((name, bytes));
        }
        Keyring::from_keys(keys, active).map_err(|message| KeyringError::Invalid { path, message })
    }

    /// A keyring from `(key id, key bytes)` pairs.
    pub fn from_keys(keys: Vec<(String, Vec<u8>)>, active: &str) -> Result<Keyring, String> {
        let mut map = BTreeMap::new();
        for (id, key) in keys {
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!("key id {id:?} must be letters, digits, - or _"));
            }
            if key.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "key {id:?} is {} bytes, at least {MIN_KEY_BYTES} are needed",
                    key.len()
                ));
            }
            map.insert(id, SecretSlice::from(key));
        }
        if !map.contains_key(active) {
            return Err(format!(
                "the active key {active:?} is not among the keys ({})",
                map.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(Keyring {
            keys: map,
            active: active.to_string(),
        })
    }

    fn mac(key: &SecretSlice<u8>, signed: &str) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.expose_secret())
            .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
        mac.update(signed.as_bytes());
        mac
    }

    /// Signs `claims` with the active key, as a `v2` token.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = format!(
            "{}~{}~{}~{}~{}",
            claims.action.encode(),
            encode_instant(claims.deadline),
            claims.extension_count,
            encode_instant(claims.expires),
            claims.owner
        );
        let signed = format!("v2.{}.{}", self.active, URL_SAFE_NO_PAD.encode(body));
        let key = &self.keys[&self.active];
        let tag = Self::mac_v2(key, &signed, &claims.resource)
            .finalize()
            .into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]))
    }

    fn mac_v2(key: &SecretSlice<u8>, signed: &str, resource: &str) -> HmacSha256 {
        // A NUL cannot occur in the signed part (base64url and a key id), so the split between
        // the two inputs is unambiguous.
        let mut mac = Self::mac(key, signed);
        mac.update(b"\0");
        mac.update(resource.as_bytes());
        mac
    }

    /// Checks the MAC (in constant time) with the key the token names, for the `resource` the
    /// link is about (the id in its path), then the expiry.
    pub fn verify(
        &self,
        token: &str,
        resource: &str,
        now: Timestamp,
    ) -> Result<Claims, TokenError> {
        let refuse = |detail| Err(TokenError { detail });
        let mut parts = token.split('.');
        let (Some(version), Some(kid), Some(body), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return refuse("malformed");
        };
        if version != "v2" && version != VERSION_V1 {
            return refuse("unknown version");
        }
        let Some(key) = self.keys.get(kid) else {
            return refuse("unknown key id");
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return refuse("malformed mac");
        };
        let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        let Ok(body) = URL_SAFE_NO_PAD.decode(body) else {
            return refuse("malformed claims");
        };
        let claims = if version == "v2" {
            // Constant time, over the first MAC_BYTES of the tag.
            if tag.len() != MAC_BYTES
                || Self::mac_v2(key, signed, resource)
                    .verify_truncated_left(&tag)
                    .is_err()
            {
                return refuse("bad mac");
            }
            let Some(claims) = std::str::from_utf8(&body)
                .ok()
                .and_then(|b| Self::parse_v2(b, resource))
            else {
                return refuse("malformed claims");
            };
            claims
        } else {
            if Self::mac(key, signed).verify_slice(&tag).is_err() {
                return refuse("bad mac");
            }
            let Ok(c) = serde_json::from_slice::<ClaimsV1>(&body) else {
                return refuse("malformed claims");
            };
            if c.resource != resource {
                return refuse("token is for another resource");
            }
            Claims {
                resource: c.resource,
                action: LinkAction::Extend(c.days),
                deadline: c.deadline,
                extension_count: c.extension_count,
                owner: c.owner,
                expires: c.expires,
            }
        };
        if now >= claims.expires {
            return refuse("expired");
        }
        Ok(claims)
    }

    fn parse_v2(body: &str, resource: &str) -> Option<Claims> {
        let mut f = body.splitn(5, '~');
        let action = LinkAction::decode(f.next()?)?;
        let deadline = decode_instant(f.next()?)?;
        let extension_count = f.next()?.parse().ok()?;
        let expires = decode_instant(f.next()?)?;
        let owner = f.next()?.to_string();
        Some(Claims {
            resource: resource.to_string(),
            action,
            deadline,
            extension_count,
            owner,
            expires,
        })
    }

    /// Signs a `v1` token (the format sent before `v2`), for tests of old links.
    #[doc(hidden)]
    pub fn sign_v1(&self, claims: &Claims) -> String {
        let days = match claims.action {
            LinkAction::Extend(d) => d,
            LinkAction::Release => 0,
        };
        let v1 = ClaimsV1 {
            resource: claims.resource.clone(),
            days,
            deadline: claims.deadline,
            extension_count: claims.extension_count,
            owner: claims.owner.clone(),
            expires: claims.expires,
        };
        let json = serde_json::to_vec(&v1).unwrap_or_default();
        let signed = format!(
            "{VERSION_V1}.{}.{}",
            self.active,
            URL_SAFE_NO_PAD.encode(json)
        );
        let tag = Self::mac(&self.keys[&self.active], &signed)
            .finalize()
            .into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }
}

/// Characters of a resource id kept as they are in a link's path segment: RFC 3986's
/// unreserved characters and `:` and `@` (allowed in a path segment). Everything else, `/`
/// first, is percent-encoded, so the id stays one segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'@');

/// The link an owner clicks:
/// - `GET {base}/v1/resources/{id}/extend?days=N&token=…` for a snooze,
/// - `GET {base}/v1/resources/{id}/release?token=…` for **Delete now**,
///
/// with the resource id as one path segment (only what must be is percent-encoded; an ARN's
/// `/` becomes `%2F`) and the token as it is (base64url and dots need no encoding).
pub fn link(base_url: &str, resource: &str, action: LinkAction, token: &str) -> String {
    let id = percent_encoding::utf8_percent_encode(resource, PATH_SEGMENT);
    let base = base_url.trim_end_matches('/');
    match action {
        LinkAction::Extend(days) => {
            format!("{base}/v1/resources/{id}/extend?days={days}&token={token}")
        }
        LinkAction::Release => format!("{base}/v1/resources/{id}/release?token={token}"),
    }
}

/// [`link`] for a snooze of `days`.
pub fn extend_link(base_url: &str, resource: &str, days: u32, token: &str) -> String {
    link(base_url, resource, LinkAction::Extend(days), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:ec2:us-east-1:123456789012:instance/i-1";

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn keyring(active: &str) -> Keyring {
        Keyring::from_keys(
            vec![("k1".into(), vec![1; 32]), ("k2".into(), vec![2; 32])],
            active,
        )
        .expect("keys")
    }

    fn claims() -> Claims {
        Claims {
            resource: ARN.into(),
            action: LinkAction::Extend(7),
            deadline: ts("2026-11-25T10:00:00Z"),
            extension_count: 0,
            owner: "dev@example.com".into(),
            expires: ts("2026-11-25T10:00:00Z"),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_rotation_keeps_old_links_working() {
        let now = ts("2026-11-24T10:00:00Z");
        let token = keyring("k1").sign(&claims());
        assert_eq!(keyring("k1").verify(&token, ARN, now), Ok(claims()));
        // Rotated: k2 signs now, k1 still verifies the links already sent.
        assert_eq!(keyring("k2").verify(&token, ARN, now), Ok(claims()));
        // k1 removed: its links stop working.
        let only_k2 = Keyring::from_keys(vec![("k2".into(), vec![2; 32])], "k2").expect("keys");
        assert_eq!(
            only_k2.verify(&token, ARN, now).map_err(|e| e.detail),
            Err("unknown key id")
        );
    }

    #[test]
    fn tokens_are_compact_and_carry_every_claim_exactly() {
        let ring = keyring("k1");
        let mut c = claims();
        c.action = LinkAction::Release;
        // A fractional deadline (from a fractional created_at) survives exactly.
        c.deadline = ts("2026-11-25T10:00:00.123456789Z");
        c.extension_count = 2;
        let token = ring.sign(&c);
        assert!(token.starts_with("v2.k1."), "{token}");
        assert!(token.len() < 110, "{} characters: {token}", token.len());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "needs no percent-encoding: {token}"
        );
        assert_eq!(ring.verify(&token, ARN, ts("2026-11-24T10:00:00Z")), Ok(c));
    }

    #[test]
    fn v1_tokens_sent_before_still_verify_until_they_expire() {
        let ring = keyring("k1");
        let token = ring.sign_v1(&claims());
        assert!(token.starts_with("v1.k1."));
        let now = ts("2026-11-24T10:00:00Z");
        assert_eq!(ring.verify(&token, ARN, now), Ok(claims()));
        assert!(ring.verify(&token, "arn:other", now).is_err());
        assert!(
            ring.verify(&token, ARN, ts("2026-11-25T10:00:00Z"))
                .is_err()
        );
    }

    #[test]
    fn tampering_forging_and_expiry_are_refused() {
        let now = ts("2026-11-24T10:00:00Z");
        let ring = keyring("k1");
        let token = ring.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let swapped_body = format!(
            "{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode("14~1795600800~0~1795600800~dev@example.com"),
            parts[3]
        );
        let wrong_key = Keyring::from_keys(vec![("k1".into(), vec![9; 32])], "k1")
            .expect("keys")
            .sign(&claims());
        let cases = [
            (swapped_body.as_str(), ARN, "bad mac"),
            (wrong_key.as_str(), ARN, "bad mac"),
            // The same token for another resource (the id is bound by the MAC).
            (
                token.as_str(),
                "arn:aws:ec2:us-east-1:123456789012:instance/i-2",
                "bad mac",
            ),
            ("v2.k1.e30.AAAA", ARN, "bad mac"),
            ("v1.k1.e30.AAAA", ARN, "bad mac"),
            ("garbage", ARN, "malformed"),
            ("v3.k1.a.b", ARN, "unknown version"),
        ];
        for (t, id, why) in cases {
            assert_eq!(
                ring.verify(t, id, now).map_err(|e| e.detail),
                Err(why),
                "{t}"
            );
        }
        assert_eq!(
            ring.verify(&token, ARN, ts("2026-11-25T10:00:00Z"))
                .map_err(|e| e.detail),
            Err("expired")
        );
        // Every refusal reads the same to the caller.
        assert_eq!(
            ring.verify("garbage", ARN, now)
                .expect_err("refused")
                .to_string(),
            ring.verify(&token, ARN, ts("2027-01-01T00:00:00Z"))
                .expect_err("refused")
                .to_string()
        );
    }

    #[test]
    fn weak_or_missing_keys_are_refused() {
        assert!(
            Keyring::from_keys(vec![("k1".into(), vec![1; 16])], "k1")
                .expect_err("short")
                .contains("at least 32")
        );
        assert!(
            Keyring::from_keys(vec![("k1".into(), vec![1; 32])], "k9")
                .expect_err("missing")
                .contains("\"k9\"")
        );
        assert!(Keyring::from_keys(vec![("a/b".into(), vec![1; 32])], "a/b").is_err());
    }

    #[test]
    fn links_encode_the_resource_as_one_path_segment_and_nothing_more() {
        assert_eq!(
            extend_link(
                "https://snooze.example.com/",
                "k8s:deployment/preview-1/web_a.b",
                7,
                "v2.k1.x-y.z_w"
            ),
            "https://snooze.example.com/v1/resources/k8s:deployment%2Fpreview-1%2Fweb_a.b/extend?days=7&token=v2.k1.x-y.z_w"
        );
        assert_eq!(
            link("https://s.example", ARN, LinkAction::Release, "v2.k1.a.b"),
            "https://s.example/v1/resources/arn:aws:ec2:us-east-1:123456789012:instance%2Fi-1/release?token=v2.k1.a.b"
        );
        // Anything that could end the segment or the query is encoded.
        assert!(
            link("https://s", "a?b#c d%", LinkAction::Release, "t").contains("a%3Fb%23c%20d%25")
        );
    }
}
