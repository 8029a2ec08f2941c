//! An HTTP API-key issuer that lets a principal hold two active keys: the new key is added
//! under the rotation's id (`PUT …/keys/{rotation_id}`, idempotent), tested with a call that
//! presents it, and the old key is revoked after the grace period (`DELETE …/keys/{old id}`).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{TargetError, http_error, segment};

/// One principal at an issuer.
pub struct ApiKeyIssuer {
    /// The issuer's name in config.
    pub server: String,
    /// Base URL.
    pub url: String,
    /// The admin bearer token.
    pub admin_token: SecretString,
    /// Whose keys.
    pub principal: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl ApiKeyIssuer {
    /// `api-key-issuer partners/payments`.
    pub fn describe(&self) -> String {
        format!("api-key-issuer {}/{}", self.server, self.principal)
    }

    fn keys_url(&self) -> String {
        format!(
            "{}/v1/principals/{}/keys",
            self.url,
            segment(&self.principal)
        )
    }

    fn error_of(body: &str) -> String {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Adds `value` as key `key_id` (an existing identical key is success).
    pub async fn add(&self, key_id: &str, value: &str) -> Result<(), TargetError> {
        let what = format!("add key {key_id}");
        let response = self
            .http
            .put(format!("{}/{}", self.keys_url(), segment(key_id)))
            .bearer_auth(self.admin_token.expose_secret())
            .json(&json!({ "key": value }))
            .send()
            .await
            .map_err(|e| http_error(&self.describe(), &what, e))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        match status {
            200 | 201 => Ok(()),
            422 => Err(TargetError::rejected(
                &self.describe(),
                format!("{what}: 422 {}", Self::error_of(&body)),
            )),
            other => Err(TargetError::new(
                &self.describe(),
                format!("{what}: {other} {}", Self::error_of(&body)),
            )),
        }
    }

    /// A call presenting `value`: the issuer must know it as this principal's.
    pub async fn test(&self, value: &str) -> Result<(), TargetError> {
        let response = self
            .http
            .get(format!("{}/v1/whoami", self.url))
            .header("x-api-key", value)
            .send()
            .await
            .map_err(|e| http_error(&self.describe(), "test call", e))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && body["principal"] == self.principal.as_str() {
            Ok(())
        } else {
            Err(TargetError::new(
                &self.describe(),
                format!("test call with the new key: {status}"),
            ))
        }
    }

    /// Revokes key `key_id` (already gone is success).
    pub async fn revoke(&self, key_id: &str) -> Result<(), TargetError> {
        if key_id.is_empty() {
            return Ok(());
        }
        let what = format!("revoke key {key_id}");
        let response = self
            .http
            .delete(format!("{}/{}", self.keys_url(), segment(key_id)))
            .bearer_auth(self.admin_token.expose_secret())
            .send()
            .await
            .map_err(|e| http_error(&self.describe(), &what, e))?;
        match response.status().as_u16() {
            200 | 204 | 404 => Ok(()),
            other => Err(TargetError::new(
                &self.describe(),
                format!("{what}: {other}"),
            )),
        }
    }
}
