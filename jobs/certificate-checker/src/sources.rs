//! Where certificates come from: Kubernetes Secrets and Vault PKI. (HTTPS endpoints are in
//! [`crate::tls`].) Each source returns [`Sighting`]s and per-item errors; a source that cannot be
//! read at all is an error of the run, never a panic.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::{KubeSource, VaultSource};

/// Where a certificate was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A Kubernetes Secret.
    Kubernetes,
    /// An HTTPS endpoint's presented chain.
    Endpoint,
    /// A Vault PKI mount.
    Vault,
}

impl Source {
    /// The `source` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kubernetes => "kubernetes",
            Source::Endpoint => "endpoint",
            Source::Vault => "vault",
        }
    }
}

/// One certificate at one place.
#[derive(Debug, Clone)]
pub struct Sighting {
    /// The kind of place.
    pub source: Source,
    /// `k8s:secret/<ns>/<name>`, `https://host:port` or `vault:<mount>/<serial>`.
    pub resource: String,
    /// DER bytes; `Err` holds why the data was not a certificate.
    pub der: Result<Vec<u8>, String>,
}

/// Sightings plus item-level errors of one source.
#[derive(Debug, Default)]
pub struct Collected {
    /// Certificates found.
    pub sightings: Vec<Sighting>,
    /// Items that could not be read, one line each.
    pub errors: Vec<String>,
}

fn pem_sightings(source: Source, resource: &str, pem: &[u8], what: &str) -> Vec<Sighting> {
    match crate::cert::pem_certificates(pem) {
        Ok(ders) => ders
            .into_iter()
            .map(|der| Sighting {
                source,
                resource: resource.to_string(),
                der: Ok(der),
            })
            .collect(),
        Err(e) => vec![Sighting {
            source,
            resource: resource.to_string(),
            der: Err(format!("{what}: {e}")),
        }],
    }
}

/// Every certificate in the selected Secrets: `tls.crt` and `ca.crt` of `kubernetes.io/tls`
/// Secrets, and `extra_keys` of any Secret, in all namespaces, paged 500 at a time.
pub async fn kubernetes(client: kube::Client, cfg: &KubeSource) -> Result<Collected, kube::Error> {
    let api: Api<Secret> = Api::all(client);
    let mut params = ListParams::default().limit(500);
    if let Some(selector) = &cfg.label_selector {
        params = params.labels(selector);
    }
    let mut out = Collected::default();
    loop {
        let page = api.list(&params).await?;
        for secret in &page.items {
            let ns = secret.metadata.namespace.as_deref().unwrap_or("default");
            let name = secret.metadata.name.as_deref().unwrap_or("");
            let resource = format!("k8s:secret/{ns}/{name}");
            let mut keys: Vec<&str> = Vec::new();
            if secret.type_.as_deref() == Some("kubernetes.io/tls") {
                keys.extend(["tls.crt", "ca.crt"]);
            }
            keys.extend(cfg.extra_keys.iter().map(String::as_str));
            let Some(data) = &secret.data else { continue };
            for key in keys {
                if let Some(bytes) = data.get(key)
                    && !bytes.0.is_empty()
                {
                    out.sightings.extend(pem_sightings(
                        Source::Kubernetes,
                        &resource,
                        &bytes.0,
                        key,
                    ));
                }
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(out)
}

/// Vault's reasons from an error answer's `{"errors": ["…"]}`, joined with "; " on one line and
/// cut to 300 characters; `None` when it has none (or is not that shape). Vault's errors name paths and
/// states, never the token.
fn vault_errors(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let reasons: Vec<&str> = value["errors"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if reasons.is_empty() {
        return None;
    }
    // Vault's multi-error text spans lines ("1 error occurred:\n\t* …"): one line, one space.
    let joined = reasons
        .join("; ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(match joined.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    })
}

/// A Vault PKI reader over the HTTP API.
#[derive(Debug)]
pub struct Vault {
    http: reqwest::Client,
    address: String,
    token: SecretString,
}

impl Vault {
    /// A client for `cfg.address` with `token`; `ca_pem` adds a root for Vault's own HTTPS.
    pub fn new(
        cfg: &VaultSource,
        token: SecretString,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Vault, String> {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("vault.ca_file: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Vault {
            http: builder.build().map_err(|e| e.to_string())?,
            address: cfg.address.as_str().to_string(),
            token,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> Result<Value, String> {
        let url = format!("{}/v1/{path}", self.address);
        let response = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", self.token.expose_secret())
            .send()
            .await
            .map_err(|e| format!("vault {method} {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            // Vault says why in `errors` ("permission denied", "Vault is sealed"): quote it, so
            // a 403 and a 503 say which problem an operator has.
            let body = response.text().await.unwrap_or_default();
            return Err(match vault_errors(&body) {
                Some(why) => format!("vault {method} {url}: {status}: {why}"),
                None => format!("vault {method} {url}: {status}"),
            });
        }
        response
            .json()
            .await
            .map_err(|e| format!("vault {method} {url}: {e}"))
    }

    /// Every certificate of every mount: `LIST /v1/<mount>/certs`, then
    /// `GET /v1/<mount>/cert/<serial>` → `data.certificate`. A mount that cannot be listed is
    /// an error line; so is a certificate that cannot be fetched.
    pub async fn collect(&self, mounts: &[String]) -> Collected {
        let list = reqwest::Method::from_bytes(b"LIST").expect("LIST is a valid method token");
        let mut out = Collected::default();
        for mount in mounts {
            let keys = match self.call(list.clone(), &format!("{mount}/certs")).await {
                Ok(v) => v["data"]["keys"].as_array().cloned().unwrap_or_default(),
                Err(e) => {
                    out.errors.push(e);
                    continue;
                }
            };
            for serial in keys.iter().filter_map(Value::as_str) {
                let resource = format!("vault:{mount}/{serial}");
                match self
                    .call(reqwest::Method::GET, &format!("{mount}/cert/{serial}"))
                    .await
                {
                    Ok(v) => match v["data"]["certificate"].as_str() {
                        Some(pem) => out.sightings.extend(pem_sightings(
                            Source::Vault,
                            &resource,
                            pem.as_bytes(),
                            "data.certificate",
                        )),
                        None => out
                            .errors
                            .push(format!("{resource}: response has no data.certificate")),
                    },
                    Err(e) => out.errors.push(e),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testcerts;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, Method, StatusCode};
    use axum::response::{IntoResponse, Response};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    type Certs = Arc<BTreeMap<String, String>>;

    /// Answers the documented shapes of Vault's PKI API: LIST certs and GET cert/<serial>.
    async fn fake_vault(certs: BTreeMap<String, String>) -> String {
        async fn handle(
            State(certs): State<Certs>,
            method: Method,
            headers: HeaderMap,
            Path(path): Path<String>,
        ) -> Response {
            if headers.get("x-vault-token").and_then(|v| v.to_str().ok()) != Some("s.test") {
                return (
                    StatusCode::FORBIDDEN,
                    "{\"errors\":[\"permission denied\"]}",
                )
                    .into_response();
            }
            if method.as_str() == "LIST" && path == "pki/certs" {
                let keys: Vec<&String> = certs.keys().collect();
                return axum::Json(serde_json::json!({"data": {"keys": keys}})).into_response();
            }
            if method == Method::GET
                && let Some(serial) = path.strip_prefix("pki/cert/")
                && let Some(pem) = certs.get(serial)
            {
                return axum::Json(
                    serde_json::json!({"data": {"certificate": pem, "revocation_time": 0}}),
                )
                .into_response();
            }
            (StatusCode::NOT_FOUND, "{\"errors\":[]}").into_response()
        }
        let app = axum::Router::new()
            .route("/v1/{*path}", axum::routing::any(handle))
            .with_state(Arc::new(certs));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn source(address: &str, mounts: &[&str]) -> VaultSource {
        VaultSource {
            address: common::config::HttpUrl::parse(address).expect("url"),
            mounts: mounts.iter().map(|m| m.to_string()).collect(),
            token_file: None,
            token_env: None,
            ca_file: None,
        }
    }

    #[tokio::test]
    async fn lists_and_fetches_every_certificate_of_a_mount() {
        let ca = testcerts::ca("Vault Root");
        let a = testcerts::leaf(&ca, "a.example", testcerts::days_from_now(3));
        let b = testcerts::leaf(&ca, "b.example", testcerts::days_from_now(90));
        let url = fake_vault(BTreeMap::from([
            ("17-aa".to_string(), a.pem()),
            ("17-bb".to_string(), b.pem()),
        ]))
        .await;
        let vault = Vault::new(
            &source(&url, &["pki"]),
            SecretString::from("s.test"),
            None,
            Duration::from_secs(5),
        )
        .expect("client");
        let got = vault
            .collect(&["pki".to_string(), "missing".to_string()])
            .await;
        let resources: Vec<&str> = got.sightings.iter().map(|s| s.resource.as_str()).collect();
        assert_eq!(resources, ["vault:pki/17-aa", "vault:pki/17-bb"]);
        assert_eq!(got.sightings[0].der.as_deref(), Ok(a.der()));
        assert_eq!(got.errors.len(), 1, "{:?}", got.errors);
        assert!(
            got.errors[0].contains("/v1/missing/certs: 404"),
            "{:?}",
            got.errors
        );
    }

    #[test]
    fn vaults_reasons_are_quoted_from_its_errors_array() {
        assert_eq!(
            vault_errors(r#"{"errors":["Vault is sealed"]}"#).as_deref(),
            Some("Vault is sealed")
        );
        assert_eq!(
            vault_errors("{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\", \"\"]}")
                .as_deref(),
            Some("1 error occurred: * permission denied")
        );
        assert_eq!(vault_errors(r#"{"errors":[]}"#), None);
        assert_eq!(vault_errors("<html>bad gateway</html>"), None);
        let long = vault_errors(&serde_json::json!({"errors": ["x".repeat(400)]}).to_string())
            .expect("reason");
        assert_eq!(long.chars().count(), 301, "cut at 300, plus the ellipsis");
    }

    #[tokio::test]
    async fn a_wrong_token_is_an_error_line_without_the_token() {
        let url = fake_vault(BTreeMap::new()).await;
        let vault = Vault::new(
            &source(&url, &["pki"]),
            SecretString::from("s.wrong"),
            None,
            Duration::from_secs(5),
        )
        .expect("client");
        let got = vault.collect(&["pki".to_string()]).await;
        assert!(got.sightings.is_empty());
        assert!(
            got.errors[0].ends_with("/v1/pki/certs: 403 Forbidden: permission denied"),
            "{:?}",
            got.errors
        );
        assert!(!got.errors[0].contains("s.wrong"));
    }
}
