//! The systems that own credentials: where a new value is set (step 4) and tested (step 5),
//! where a failed rotation is undone, and where the old credential is retired (step 9).
//!
//! One file per kind ([`postgres`], [`rds`], [`keycloak`], [`api_key`]); [`Target`] dispatches.
//! Each operation is idempotent, because a resumed rotation may repeat the one it was cut in.
//! Errors say what failed and never carry a value; [`TargetError::rejected`] marks a refusal of
//! the value itself (it breaks a rule of the target), after which the next rotation generates a
//! fresh one instead of resuming with it.

pub mod api_key;
pub mod keycloak;
pub mod postgres;
pub mod rds;

use secrecy::SecretString;

use crate::value::{Data, field};

/// A target call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{target}: {message}")]
pub struct TargetError {
    /// `postgres orders/app`, `keycloak sso/orders`, …
    pub target: String,
    /// What failed (never a value).
    pub message: String,
    /// The target refused the value itself (a rule it enforces), not a transient failure.
    pub rejected: bool,
}

impl TargetError {
    fn new(target: &str, message: impl Into<String>) -> Self {
        TargetError {
            target: target.to_string(),
            message: message.into(),
            rejected: false,
        }
    }

    fn rejected(target: &str, message: impl Into<String>) -> Self {
        TargetError {
            target: target.to_string(),
            message: message.into(),
            rejected: true,
        }
    }
}

/// A reqwest error without its URL (ours carry none that are secret, but the message says what
/// was called already).
fn http_error(target: &str, what: &str, e: reqwest::Error) -> TargetError {
    TargetError::new(target, format!("{what}: {}", e.without_url()))
}

/// One secret's target, ready to call.
pub enum Target {
    /// A PostgreSQL role (or two alternating roles).
    Postgres(postgres::Postgres),
    /// An RDS instance's master password.
    Rds(rds::Rds),
    /// A Keycloak client secret.
    Keycloak(keycloak::Keycloak),
    /// An API-key issuer principal.
    ApiKey(api_key::ApiKeyIssuer),
}

impl Target {
    /// `postgres orders/app` and the like, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Postgres(t) => t.describe(),
            Target::Rds(t) => t.describe(),
            Target::Keycloak(t) => t.describe(),
            Target::ApiKey(t) => t.describe(),
        }
    }

    /// Whether the target makes the value itself (Keycloak regenerates a client secret); the
    /// job then keeps what it answered as the pending value.
    pub fn generates_value(&self) -> bool {
        matches!(self, Target::Keycloak(_))
    }

    /// The new version's data: the old data with the new value in `value_field`, and what the
    /// target needs beside it (the idle user of an alternating pair, the new key's id).
    pub fn new_data(
        &self,
        old: &Data,
        value_field: &str,
        value: SecretString,
        rotation_id: &str,
    ) -> Data {
        let mut data = old.clone();
        data.insert(value_field.to_string(), value);
        match self {
            Target::Postgres(t) => {
                data.insert(
                    "username".into(),
                    SecretString::from(t.next_user(field(old, "username"))),
                );
            }
            Target::Rds(_) => {}
            Target::Keycloak(t) => {
                data.insert(
                    "client_id".into(),
                    SecretString::from(t.client_id().to_string()),
                );
            }
            Target::ApiKey(_) => {
                data.insert("key_id".into(), SecretString::from(rotation_id.to_string()));
            }
        }
        data
    }

    /// Step 4: makes the target accept `new` (the old value stays valid where the target
    /// allows: the other user, the rotated secret, the second key).
    pub async fn set(&self, new: &Data, value_field: &str) -> Result<(), TargetError> {
        let value = value_of(self, new, value_field)?;
        match self {
            Target::Postgres(t) => t.set(new, value).await,
            Target::Rds(t) => t.set(value).await,
            // Keycloak's value is its own regeneration (see `regenerate`): set already.
            Target::Keycloak(_) => Ok(()),
            Target::ApiKey(t) => t.add(field(new, "key_id").unwrap_or_default(), value).await,
        }
    }

    /// Step 5: proves `new` works against the real target (a login, a token, a call).
    pub async fn test(&self, new: &Data, value_field: &str) -> Result<(), TargetError> {
        let value = value_of(self, new, value_field)?;
        match self {
            Target::Postgres(t) => t.test(new, value).await,
            Target::Rds(t) => t.test().await,
            Target::Keycloak(t) => t.test(value).await,
            Target::ApiKey(t) => t.test(value).await,
        }
    }

    /// Undoes step 4 where the old value stopped working or the new one must not stay: the old
    /// password back on a single user or RDS, the old client secret back, the new key revoked.
    pub async fn restore(
        &self,
        old: &Data,
        new: &Data,
        value_field: &str,
    ) -> Result<(), TargetError> {
        match self {
            Target::Postgres(t) => match field(old, value_field) {
                Some(old_value) => t.restore(old_value).await,
                None => Err(TargetError::new(&t.describe(), "no old value to restore")),
            },
            Target::Rds(t) => match field(old, value_field) {
                Some(old_value) => t.set(old_value).await,
                None => Err(TargetError::new(&t.describe(), "no old value to restore")),
            },
            Target::Keycloak(t) => match field(old, value_field) {
                Some(old_value) => t.restore(old_value).await,
                None => Err(TargetError::new(&t.describe(), "no old value to restore")),
            },
            Target::ApiKey(t) => t.revoke(field(new, "key_id").unwrap_or_default()).await,
        }
    }

    /// What step 9 retires later, if anything: the old key's id, or `rotated` for Keycloak's
    /// rotated secret. `None`: nothing to retire (a single user, RDS, or an alternating user,
    /// which keeps the previous value until the next cycle).
    pub fn retire_ref(&self, old: &Data) -> Option<String> {
        match self {
            Target::Postgres(_) | Target::Rds(_) => None,
            Target::Keycloak(_) => Some("rotated".into()),
            Target::ApiKey(_) => field(old, "key_id").map(String::from),
        }
    }

    /// Step 9: retires the old credential named by [`Target::retire_ref`].
    pub async fn retire(&self, retire_ref: &str) -> Result<(), TargetError> {
        match self {
            Target::Postgres(_) | Target::Rds(_) => Ok(()),
            Target::Keycloak(t) => t.delete_rotated().await,
            Target::ApiKey(t) => t.revoke(retire_ref).await,
        }
    }

    /// Keycloak: the secret it holds now (a resumed rotation finds out whether its
    /// regeneration happened); other targets: `None`.
    pub async fn current_value(&self) -> Result<Option<SecretString>, TargetError> {
        match self {
            Target::Keycloak(t) => t.current().await.map(Some),
            _ => Ok(None),
        }
    }

    /// Keycloak: regenerates the client secret and answers it.
    pub async fn regenerate(&self) -> Result<SecretString, TargetError> {
        match self {
            Target::Keycloak(t) => t.regenerate().await,
            other => Err(TargetError::new(
                &other.describe(),
                "does not generate its own values",
            )),
        }
    }
}

fn value_of<'a>(t: &Target, data: &'a Data, value_field: &str) -> Result<&'a str, TargetError> {
    field(data, value_field).ok_or_else(|| {
        TargetError::new(
            &t.describe(),
            format!("the new data has no field {value_field:?}"),
        )
    })
}

/// An `application/x-www-form-urlencoded` body (reqwest's `form` feature stays off).
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, ESCAPED).to_string();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What a URL path segment or form value must escape: everything but RFC 3986's unreserved
/// characters.
const ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment, percent-encoded.
pub(crate) fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, ESCAPED).to_string()
}
