//! Vault's KV v2 engine over its HTTP API: the source of truth of every managed secret, and the
//! home of its rotation journal (`custom_metadata`) and pending values.
//!
//! Every write is check-and-set: data with `options.cas` (the version read; `0` = create only),
//! metadata with `metadata_cas` where the server has it (OpenBao reports
//! `current_metadata_version`; HashiCorp Vault has no metadata check-and-set, and there the
//! journal write is last-writer-wins, which the run lock makes safe between our own runs).
//! Errors carry the path and Vault's own messages, never a value or the token.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::config::VaultPath;
use crate::value::{Data, data_from_json, data_to_json};

/// A failed Vault call.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No answer (connection, timeout, TLS).
    #[error("vault {what}: {source}")]
    Http {
        /// The call, e.g. `GET secret/metadata/apps/x`.
        what: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A check-and-set did not match: someone else wrote the path since it was read.
    #[error("vault {what}: check-and-set did not match (written by someone else)")]
    CasMismatch {
        /// The call.
        what: String,
    },
    /// Any other refusal.
    #[error("vault {what}: {status}: {errors}")]
    Status {
        /// The call.
        what: String,
        /// HTTP status.
        status: u16,
        /// Vault's `errors`, joined.
        errors: String,
    },
    /// Vault answered, but cannot serve requests (`sys/seal-status`: sealed or not initialised).
    #[error("vault {address} is {state}")]
    Unavailable {
        /// Vault's address.
        address: String,
        /// `sealed` or `not initialised`.
        state: &'static str,
    },
    /// An answer that is not what the API documents.
    #[error("vault {what}: unexpected answer: {message}")]
    Decode {
        /// The call.
        what: String,
        /// What was wrong with it.
        message: String,
    },
}

/// One version's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// When it was written.
    pub created_time: Option<Timestamp>,
    /// Soft-deleted or destroyed (its data cannot be read).
    pub gone: bool,
}

/// A secret's KV metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The latest version.
    pub current_version: u64,
    /// `custom_metadata` (the journal lives here).
    pub custom: BTreeMap<String, String>,
    /// OpenBao's metadata version, for `metadata_cas`; `None` on servers without it.
    pub metadata_version: Option<u64>,
    /// Every version still known.
    pub versions: BTreeMap<u64, VersionInfo>,
}

impl Metadata {
    /// When the current version was written.
    pub fn current_created(&self) -> Option<Timestamp> {
        self.versions
            .get(&self.current_version)
            .and_then(|v| v.created_time)
    }
}

/// A KV v2 client.
pub struct Vault {
    http: reqwest::Client,
    address: String,
    token: SecretString,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A client for `address` with `token`; `ca_pem` adds roots for Vault's HTTPS.
    pub fn new(
        address: &str,
        token: SecretString,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Vault, String> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Vault {
            http: builder.build().map_err(|e| e.to_string())?,
            address: address.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends one call; `Ok(None)` for 404.
    async fn call(
        &self,
        method: Method,
        api_path: &str,
        body: Option<Value>,
    ) -> Result<Option<Value>, VaultError> {
        let what = format!("{method} {api_path}");
        let mut request = self
            .http
            .request(method, format!("{}/v1/{api_path}", self.address))
            .header("X-Vault-Token", self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|source| VaultError::Http {
            what: what.clone(),
            source: source.without_url(),
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|source| VaultError::Http {
            what: what.clone(),
            source: source.without_url(),
        })?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let errors = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["errors"].as_array().map(|a| errors_text(a)))
                .unwrap_or_default();
            if status == reqwest::StatusCode::BAD_REQUEST && errors.contains("check-and-set") {
                return Err(VaultError::CasMismatch { what });
            }
            return Err(VaultError::Status {
                what,
                status: status.as_u16(),
                errors,
            });
        }
        if text.trim().is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| VaultError::Decode {
                what,
                message: format!("not JSON: {e}"),
            })
    }

    /// `Ok` when Vault can serve requests: `GET sys/seal-status` (no token needed) says it is
    /// initialised and unsealed. Asked once before a run reads anything, so a sealed or
    /// unreachable Vault refuses the run instead of turning every secret into a problem.
    pub async fn check_available(&self) -> Result<(), VaultError> {
        let api = "sys/seal-status";
        let v = self
            .call(Method::GET, api, None)
            .await?
            .ok_or_else(|| VaultError::Decode {
                what: format!("GET {api}"),
                message: "404: not a Vault server?".into(),
            })?;
        let state = match (v["initialized"].as_bool(), v["sealed"].as_bool()) {
            (Some(true), Some(false)) => return Ok(()),
            (Some(false), _) => "not initialised",
            (_, Some(true)) => "sealed",
            _ => {
                return Err(VaultError::Decode {
                    what: format!("GET {api}"),
                    message: "no initialized/sealed".into(),
                });
            }
        };
        Err(VaultError::Unavailable {
            address: self.address.clone(),
            state,
        })
    }

    /// The secret's metadata; `None` when it does not exist.
    pub async fn metadata(&self, p: &VaultPath) -> Result<Option<Metadata>, VaultError> {
        let api = format!("{}/metadata/{}", p.mount, p.path);
        let Some(v) = self.call(Method::GET, &api, None).await? else {
            return Ok(None);
        };
        let d = &v["data"];
        let current_version = d["current_version"]
            .as_u64()
            .ok_or_else(|| VaultError::Decode {
                what: format!("GET {api}"),
                message: "no data.current_version".into(),
            })?;
        let custom = d["custom_metadata"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        let versions = d["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let n = k.parse::<u64>().ok()?;
                let gone = v["destroyed"].as_bool() == Some(true)
                    || v["deletion_time"].as_str().is_some_and(|t| !t.is_empty());
                Some((
                    n,
                    VersionInfo {
                        created_time: v["created_time"].as_str().and_then(|t| t.parse().ok()),
                        gone,
                    },
                ))
            })
            .collect();
        Ok(Some(Metadata {
            current_version,
            custom,
            metadata_version: d["current_metadata_version"].as_u64(),
            versions,
        }))
    }

    /// The data of `version` (the latest with `None`) and its version number; `None` when the
    /// path or the version does not exist or was deleted.
    pub async fn read(
        &self,
        p: &VaultPath,
        version: Option<u64>,
    ) -> Result<Option<(Data, u64)>, VaultError> {
        let mut api = format!("{}/data/{}", p.mount, p.path);
        if let Some(v) = version {
            api.push_str(&format!("?version={v}"));
        }
        let Some(v) = self.call(Method::GET, &api, None).await? else {
            return Ok(None);
        };
        let d = &v["data"];
        if d["data"].is_null() {
            return Ok(None);
        }
        let number = d["metadata"]["version"]
            .as_u64()
            .ok_or_else(|| VaultError::Decode {
                what: format!("GET {api}"),
                message: "no data.metadata.version".into(),
            })?;
        Ok(Some((data_from_json(&d["data"]), number)))
    }

    /// Writes a new version if the current one is `cas` (`0`: only if the path does not exist);
    /// returns the version written.
    pub async fn write(&self, p: &VaultPath, data: &Data, cas: u64) -> Result<u64, VaultError> {
        let api = format!("{}/data/{}", p.mount, p.path);
        let body = json!({"options": {"cas": cas}, "data": data_to_json(data)});
        let v = self
            .call(Method::POST, &api, Some(body))
            .await?
            .ok_or_else(|| VaultError::Status {
                what: format!("POST {api}"),
                status: 404,
                errors: "no such mount".into(),
            })?;
        v["data"]["version"]
            .as_u64()
            .ok_or_else(|| VaultError::Decode {
                what: format!("POST {api}"),
                message: "no data.version".into(),
            })
    }

    /// Replaces `custom_metadata`; with `cas` (OpenBao), only if the metadata is still at that
    /// version.
    pub async fn write_metadata(
        &self,
        p: &VaultPath,
        custom: &BTreeMap<String, String>,
        cas: Option<u64>,
    ) -> Result<(), VaultError> {
        let api = format!("{}/metadata/{}", p.mount, p.path);
        let mut body = json!({ "custom_metadata": custom });
        if let Some(c) = cas {
            body["metadata_cas"] = json!(c);
        }
        self.call(Method::POST, &api, Some(body)).await.map(drop)
    }

    /// Deletes every version and the metadata of `p` (a pending value once promoted).
    pub async fn delete_all(&self, p: &VaultPath) -> Result<(), VaultError> {
        let api = format!("{}/metadata/{}", p.mount, p.path);
        self.call(Method::DELETE, &api, None).await.map(drop)
    }

    /// The keys directly under `prefix` (folders end with `/`); empty when there are none.
    pub async fn list(&self, mount: &str, prefix: &str) -> Result<Vec<String>, VaultError> {
        let api = format!("{mount}/metadata/{}", prefix.trim_matches('/'));
        let list = Method::from_bytes(b"LIST").expect("LIST is a valid method token");
        let Some(v) = self.call(list, &api, None).await? else {
            return Ok(Vec::new());
        };
        Ok(v["data"]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect())
    }

    /// Every secret path under `prefix`, recursively, skipping `skip` (the pending prefix).
    pub async fn list_recursive(
        &self,
        mount: &str,
        prefix: &str,
        skip: &str,
    ) -> Result<Vec<String>, VaultError> {
        let mut out = Vec::new();
        let mut folders = vec![prefix.trim_matches('/').to_string()];
        while let Some(folder) = folders.pop() {
            for key in self.list(mount, &folder).await? {
                let full = if folder.is_empty() {
                    key.clone()
                } else {
                    format!("{folder}/{key}")
                };
                if full.trim_end_matches('/') == skip || full.starts_with(&format!("{skip}/")) {
                    continue;
                }
                match full.strip_suffix('/') {
                    Some(sub) => folders.push(sub.to_string()),
                    None => out.push(full),
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Vault's `errors` as one line: Go's multierror text (`1 error occurred:\n\t* permission
/// denied\n\n`, what OpenBao and Vault answer to a token without the capability) reduced to its
/// items, joined with `; `.
fn errors_text(errors: &[Value]) -> String {
    let mut items = Vec::new();
    for e in errors.iter().filter_map(Value::as_str) {
        let bullets: Vec<&str> = e
            .lines()
            .filter_map(|l| l.trim().strip_prefix("* "))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if bullets.is_empty() {
            let one = e.split_whitespace().collect::<Vec<_>>().join(" ");
            if !one.is_empty() {
                items.push(one);
            }
        } else {
            items.extend(bullets.into_iter().map(String::from));
        }
    }
    items.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_errors_are_one_line() {
        let permission = json!(["1 error occurred:\n\t* permission denied\n\n"]);
        assert_eq!(
            errors_text(permission.as_array().expect("array")),
            "permission denied"
        );
        let two = json!([
            "2 errors occurred:\n\t* first\n\t* second\n\n",
            "Vault is sealed"
        ]);
        assert_eq!(
            errors_text(two.as_array().expect("array")),
            "first; second; Vault is sealed"
        );
        assert_eq!(errors_text(&[]), "");
    }
}
