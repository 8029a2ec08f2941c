//! Signed snooze tokens.
//!
//! A token is `v1.<key id>.<claims>.<mac>`: the claims are base64url JSON, the MAC is
//! HMAC-SHA256 over `v1.<key id>.<claims>` with the key named by the key id, so keys can rotate
//! (sign with the active key, verify with any key still mounted) without breaking links already
//! sent. The claims bind the resource, the requested days, the resource's **current deadline and
//! extension count**, the owner it was sent to, and the link's own expiry (= the deadline). Once a
//! snooze is applied the deadline and count change, so a used link no longer matches: it cannot be
//! replayed.
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

const VERSION: &str = "v1";

/// Shortest accepted key, in bytes (HMAC-SHA256 wants at least its output size).
pub const MIN_KEY_BYTES: usize = 32;

/// What a snooze link may do, and for which state of the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The resource id (ARN or `k8s:…`).
    #[serde(rename = "r")]
    pub resource: String,
    /// Days to extend by.
    #[serde(rename = "d")]
    pub days: u32,
    /// The resource's deadline when the link was made.
    #[serde(rename = "dl")]
    pub deadline: Timestamp,
    /// The resource's extension count when the link was made.
    #[serde(rename = "n")]
    pub extension_count: u8,
    /// Who the link was sent to (recorded as who extended).
    #[serde(rename = "o")]
    pub owner: String,
    /// The link stops working at this instant: when the resource can first be deleted (its
    /// deadline, or later after a late warning: `Decision::delete_not_before`).
    #[serde(rename = "exp")]
    pub expires: Timestamp,
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

    /// Signs `claims` with the active key.
    pub fn sign(&self, claims: &Claims) -> String {
        // Serialising a struct of strings, numbers and timestamps cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{VERSION}.{}.{}", self.active, URL_SAFE_NO_PAD.encode(json));
        let key = &self.keys[&self.active];
        let tag = Self::mac(key, &signed).finalize().into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks the MAC (in constant time) with the key the token names, then the expiry.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
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
        if version != VERSION {
            return refuse("unknown version");
        }
        let Some(key) = self.keys.get(kid) else {
            return refuse("unknown key id");
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return refuse("malformed mac");
        };
        let signed = &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        if Self::mac(key, signed).verify_slice(&tag).is_err() {
            return refuse("bad mac");
        }
        let Ok(json) = URL_SAFE_NO_PAD.decode(body) else {
            return refuse("malformed claims");
        };
        let Ok(claims) = serde_json::from_slice::<Claims>(&json) else {
            return refuse("malformed claims");
        };
        if now >= claims.expires {
            return refuse("expired");
        }
        Ok(claims)
    }
}

/// The link an owner clicks: `GET {base}/v1/resources/{id}/extend?days=N&token=…`, with the
/// resource id percent-encoded as one path segment.
pub fn extend_link(base_url: &str, resource: &str, days: u32, token: &str) -> String {
    let id = percent_encoding::utf8_percent_encode(resource, percent_encoding::NON_ALPHANUMERIC);
    let token = percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC);
    format!(
        "{}/v1/resources/{id}/extend?days={days}&token={token}",
        base_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
            resource: "arn:aws:ec2:us-east-1:123456789012:instance/i-1".into(),
            days: 7,
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
        assert_eq!(keyring("k1").verify(&token, now), Ok(claims()));
        // Rotated: k2 signs now, k1 still verifies the links already sent.
        assert_eq!(keyring("k2").verify(&token, now), Ok(claims()));
        // k1 removed: its links stop working.
        let only_k2 = Keyring::from_keys(vec![("k2".into(), vec![2; 32])], "k2").expect("keys");
        assert_eq!(
            only_k2.verify(&token, now).map_err(|e| e.detail),
            Err("unknown key id")
        );
    }

    #[test]
    fn tampering_forging_and_expiry_are_refused() {
        let now = ts("2026-11-24T10:00:00Z");
        let ring = keyring("k1");
        let token = ring.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let mut other = claims();
        other.days = 14;
        let swapped_body = format!(
            "{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("json")),
            parts[3]
        );
        let wrong_key = Keyring::from_keys(vec![("k1".into(), vec![9; 32])], "k1")
            .expect("keys")
            .sign(&claims());
        let cases = [
            (swapped_body.as_str(), "bad mac"),
            (wrong_key.as_str(), "bad mac"),
            ("v1.k1.e30.AAAA", "bad mac"),
            ("garbage", "malformed"),
            ("v2.k1.a.b", "unknown version"),
        ];
        for (t, why) in cases {
            assert_eq!(ring.verify(t, now).map_err(|e| e.detail), Err(why), "{t}");
        }
        assert_eq!(
            ring.verify(&token, ts("2026-11-25T10:00:00Z"))
                .map_err(|e| e.detail),
            Err("expired")
        );
        // Every refusal reads the same to the caller.
        assert_eq!(
            ring.verify("garbage", now)
                .expect_err("refused")
                .to_string(),
            ring.verify(&token, ts("2027-01-01T00:00:00Z"))
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
    fn links_encode_the_resource_as_one_path_segment() {
        let link = extend_link(
            "https://snooze.example.com/",
            "k8s:deployment/preview-1/web",
            7,
            "v1.k1.x.y",
        );
        assert_eq!(
            link,
            "https://snooze.example.com/v1/resources/k8s%3Adeployment%2Fpreview%2D1%2Fweb/extend?days=7&token=v1%2Ek1%2Ex%2Ey"
        );
    }
}
