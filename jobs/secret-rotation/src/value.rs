//! New secret values: drawn from the operating system's random number generator, within the
//! rules of the target that will hold them. Values are [`SecretString`]s from the moment they
//! exist, so they have no `Display` and a redacted `Debug`: nothing prints them by accident.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

/// Characters safe everywhere a credential travels: URLs (`postgres://user:pass@host`), shell
/// variables, YAML and JSON without quoting, every target's rules.
const SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// What a target accepts as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Shortest accepted value.
    pub min_len: usize,
    /// Longest accepted value.
    pub max_len: usize,
    /// The characters a value is drawn from.
    pub alphabet: &'static [u8],
    /// Characters the target refuses (checked even though the alphabet avoids them).
    pub forbidden: &'static [u8],
}

impl Rules {
    /// PostgreSQL: no documented limit for a password, but clients cap what they send (libpq's
    /// `PQencryptPasswordConn` callers, poolers); 99 keeps every client working.
    pub const POSTGRES: Rules = Rules {
        min_len: 16,
        max_len: 99,
        alphabet: SAFE,
        forbidden: b"",
    };
    /// RDS master passwords: printable ASCII except `/`, `"`, `@` and space; at most 41
    /// characters (the MySQL engines' limit, the lowest of all engines).
    pub const RDS: Rules = Rules {
        min_len: 8,
        max_len: 41,
        alphabet: SAFE,
        forbidden: b"/\"@ ",
    };
    /// API keys of the issuer: at least 24 of `[A-Za-z0-9_-]`.
    pub const API_KEY: Rules = Rules {
        min_len: 24,
        max_len: 128,
        alphabet: SAFE,
        forbidden: b"",
    };

    /// The length used when a secret does not set one: 32, within the rules.
    pub fn default_len(&self) -> usize {
        32usize.clamp(self.min_len, self.max_len)
    }

    /// Whether `value` follows the rules.
    pub fn accepts(&self, value: &str) -> bool {
        (self.min_len..=self.max_len).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !self.forbidden.contains(&b))
    }
}

/// Why no value could be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

/// A value of `len` characters from `rules.alphabet`, every character uniform (rejection
/// sampling: no modulo bias), from the OS RNG.
pub fn generate(rules: &Rules, len: usize) -> Result<SecretString, RngError> {
    let n = rules.alphabet.len();
    debug_assert!(n > 0 && n <= 256);
    // The largest multiple of n that fits in a byte: bytes at or above it are redrawn.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| RngError(e.to_string()))?;
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(rules.alphabet[b as usize % n] as char);
            }
        }
    }
    let value = SecretString::from(out);
    debug_assert!(rules.accepts(value.expose_secret()));
    Ok(value)
}

/// The data of one KV v2 version: field name → value. Every field is kept secret (a username
/// is not, but treating the whole map alike means no field is ever printed by mistake).
pub type Data = BTreeMap<String, SecretString>;

/// Converts a KV v2 `data` object; non-string values are kept as their JSON text.
pub fn data_from_json(v: &serde_json::Value) -> Data {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), SecretString::from(s))
        })
        .collect()
}

/// The KV v2 `data` object for `data` (the only place values are exposed for Vault).
pub fn data_to_json(data: &Data) -> serde_json::Value {
    serde_json::Value::Object(
        data.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::Value::String(v.expose_secret().to_string()),
                )
            })
            .collect(),
    )
}

/// Whether two data maps hold the same fields and values (compared in memory, never printed).
pub fn same(a: &Data, b: &Data) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && va.expose_secret() == vb.expose_secret())
}

/// A field's value as text (exposed: for the target call or a comparison only).
pub fn field<'a>(data: &'a Data, name: &str) -> Option<&'a str> {
    data.get(name).map(|v| v.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_each_targets_rules() {
        for rules in [Rules::POSTGRES, Rules::RDS, Rules::API_KEY] {
            for len in [rules.min_len, rules.default_len(), rules.max_len] {
                let v = generate(&rules, len).expect("rng");
                assert_eq!(v.expose_secret().len(), len);
                assert!(rules.accepts(v.expose_secret()));
            }
        }
        assert!(!Rules::RDS.accepts("has/slash-and-more"));
        assert!(!Rules::RDS.accepts("has\"quote-and-more"));
        assert!(!Rules::RDS.accepts("has@at-and-more-xx"));
        assert!(!Rules::RDS.accepts(&"x".repeat(42)));
        assert_eq!(Rules::RDS.default_len(), 32);
    }

    #[test]
    fn values_differ_and_use_the_whole_alphabet() {
        let a = generate(&Rules::POSTGRES, 64).expect("rng");
        let b = generate(&Rules::POSTGRES, 64).expect("rng");
        assert_ne!(a.expose_secret(), b.expose_secret());
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.extend(
                generate(&Rules::POSTGRES, 64)
                    .expect("rng")
                    .expose_secret()
                    .bytes(),
            );
        }
        assert_eq!(
            seen.len(),
            SAFE.len(),
            "every character of the alphabet is drawn"
        );
    }

    #[test]
    fn data_is_never_printed() {
        let data: Data = [(
            "password".to_string(),
            SecretString::from("hunter2-hunter2"),
        )]
        .into();
        assert!(!format!("{data:?}").contains("hunter2"));
        let json = data_to_json(&data);
        assert!(same(&data_from_json(&json), &data));
    }
}
