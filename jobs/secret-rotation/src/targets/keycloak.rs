//! Keycloak client secrets through the Admin REST API. Keycloak makes the value itself:
//! `POST …/clients/{id}/client-secret` regenerates it and answers the new one. Where the realm
//! has a secret-rotation client policy, the old secret stays valid as the *rotated* secret for
//! the policy's window (both work together); without one it dies at once. The test is a
//! `client_credentials` grant with the new secret. Retiring deletes the rotated secret
//! (`DELETE …/client-secret/rotated`); undoing puts the old secret back (`PUT …/clients/{id}`
//! with `secret`) and drops the rotated one.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{TargetError, form, http_error, segment};

/// One client of a realm.
pub struct Keycloak {
    /// The server's name in config.
    pub server: String,
    /// Base URL.
    pub url: String,
    /// The realm of the client.
    pub realm: String,
    /// The realm of the admin client.
    pub admin_realm: String,
    /// The admin client's id.
    pub admin_client_id: String,
    /// Its secret.
    pub admin_secret: SecretString,
    /// The rotated client's `clientId`.
    pub client_id: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

impl Keycloak {
    /// A client for `url` with `timeout` per request.
    pub fn http(timeout: Duration) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())
    }

    /// `keycloak sso/orders`.
    pub fn describe(&self) -> String {
        format!("keycloak {}/{}", self.server, self.client_id)
    }

    /// The rotated client's `clientId`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn err(&self, message: impl Into<String>) -> TargetError {
        TargetError::new(&self.describe(), message)
    }

    /// `client_credentials` at `realm` with `id` and `secret`: the token endpoint's status.
    async fn grant(
        &self,
        realm: &str,
        id: &str,
        secret: &str,
    ) -> Result<(u16, Value), TargetError> {
        let url = format!(
            "{}/realms/{}/protocol/openid-connect/token",
            self.url,
            segment(realm)
        );
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ]))
            .send()
            .await
            .map_err(|e| http_error(&self.describe(), "token endpoint", e))?;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn admin_token(&self) -> Result<String, TargetError> {
        let (status, body) = self
            .grant(
                &self.admin_realm,
                &self.admin_client_id,
                self.admin_secret.expose_secret(),
            )
            .await?;
        match body["access_token"].as_str() {
            Some(t) if status == 200 => Ok(t.to_string()),
            _ => Err(self.err(format!(
                "admin login as {} in realm {}: {status} {}",
                self.admin_client_id,
                self.admin_realm,
                body["error"].as_str().unwrap_or("")
            ))),
        }
    }

    /// One admin call; the answer's status and JSON body (never logged: a credential
    /// representation carries a secret).
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), TargetError> {
        let token = self.admin_token().await?;
        let what = format!("{method} {path}");
        let mut request = self
            .http
            .request(
                method,
                format!("{}/admin/realms/{}{path}", self.url, segment(&self.realm)),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request
            .send()
            .await
            .map_err(|e| http_error(&self.describe(), &what, e))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// The client's internal id, looked up by `clientId`.
    async fn uuid(&self) -> Result<String, TargetError> {
        let (status, body) = self
            .admin(
                reqwest::Method::GET,
                &format!("/clients?clientId={}", segment(&self.client_id)),
                None,
            )
            .await?;
        if status != 200 {
            return Err(self.err(format!("client lookup: {status}")));
        }
        let found: Vec<&Value> = body
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["clientId"] == self.client_id.as_str())
            .collect();
        match found.as_slice() {
            [one] => one["id"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| self.err("client lookup: no id")),
            [] => Err(self.err(format!(
                "no client {:?} in realm {}",
                self.client_id, self.realm
            ))),
            _ => Err(self.err("client lookup: more than one match")),
        }
    }

    fn credential(
        &self,
        what: &str,
        status: u16,
        body: &Value,
    ) -> Result<SecretString, TargetError> {
        match body["value"].as_str() {
            Some(v) if status == 200 => Ok(SecretString::from(v.to_string())),
            _ => Err(self.err(format!(
                "{what}: {status} {}",
                body["error"].as_str().unwrap_or("")
            ))),
        }
    }

    /// Regenerates the secret; the answer is the new one.
    pub async fn regenerate(&self) -> Result<SecretString, TargetError> {
        let id = self.uuid().await?;
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/clients/{}/client-secret", segment(&id)),
                None,
            )
            .await?;
        self.credential("regenerate the client secret", status, &body)
    }

    /// The current secret.
    pub async fn current(&self) -> Result<SecretString, TargetError> {
        let id = self.uuid().await?;
        let (status, body) = self
            .admin(
                reqwest::Method::GET,
                &format!("/clients/{}/client-secret", segment(&id)),
                None,
            )
            .await?;
        self.credential("read the client secret", status, &body)
    }

    /// Whether the client has a rotated secret (the realm keeps the old one for a window).
    pub async fn has_rotated(&self) -> Result<bool, TargetError> {
        let id = self.uuid().await?;
        let (status, _) = self
            .admin(
                reqwest::Method::GET,
                &format!("/clients/{}/client-secret/rotated", segment(&id)),
                None,
            )
            .await?;
        match status {
            200 => Ok(true),
            404 => Ok(false),
            other => Err(self.err(format!("read the rotated secret: {other}"))),
        }
    }

    /// A `client_credentials` grant with `secret`.
    pub async fn test(&self, secret: &str) -> Result<(), TargetError> {
        let (status, body) = self.grant(&self.realm, &self.client_id, secret).await?;
        if status == 200 && body["access_token"].is_string() {
            Ok(())
        } else {
            Err(self.err(format!(
                "client_credentials grant with the new secret: {status} {}",
                body["error"].as_str().unwrap_or("")
            )))
        }
    }

    /// Deletes the rotated secret (204 whether or not there was one).
    pub async fn delete_rotated(&self) -> Result<(), TargetError> {
        let id = self.uuid().await?;
        let (status, _) = self
            .admin(
                reqwest::Method::DELETE,
                &format!("/clients/{}/client-secret/rotated", segment(&id)),
                None,
            )
            .await?;
        match status {
            204 | 200 | 404 => Ok(()),
            other => Err(self.err(format!("delete the rotated secret: {other}"))),
        }
    }

    /// Puts `old` back as the current secret and drops the rotated one.
    pub async fn restore(&self, old: &str) -> Result<(), TargetError> {
        let id = self.uuid().await?;
        let (status, _) = self
            .admin(
                reqwest::Method::PUT,
                &format!("/clients/{}", segment(&id)),
                Some(json!({"id": id, "clientId": self.client_id, "secret": old})),
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(self.err(format!("put the old secret back: {status}")));
        }
        self.delete_rotated().await
    }
}
