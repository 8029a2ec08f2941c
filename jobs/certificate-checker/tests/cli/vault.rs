//! Vault PKI for the checker's tests. [`openbao_pki`] is the real thing: OpenBao (the
//! open-source Vault fork, same HTTP API) with its PKI engine, a generated root and a leaf issued
//! with an explicit `not_after`. [`start`] is a small HTTP server answering the documented
//! response shapes of the same two calls (`LIST /v1/<mount>/certs` → `{"data":{"keys":[…]}}`,
//! `GET /v1/<mount>/cert/<serial>` → `{"data":{"certificate":"<PEM>"}}`, behind
//! `X-Vault-Token`), kept only for what OpenBao cannot produce: a certificate whose validity
//! ended (OpenBao issues none in the past, and imported issuers are not listed under `certs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use serde_json::Value;
use testbed::openbao::OpenBao;

/// An OpenBao dev server with PKI at `pki/`: a root (`CN=Vault Root`, ten years) and one leaf for
/// `common_name` valid until `not_after`; returns the server and the leaf's serial as `LIST
/// pki/certs` names it.
pub async fn openbao_pki(common_name: &str, not_after: jiff::Timestamp) -> (OpenBao, String) {
    let bao = OpenBao::start().await.expect("openbao");
    bao.mount("pki", "pki", None).await.expect("mount pki");
    let post = |path: &'static str, body: Value| {
        let bao = &bao;
        async move {
            bao.request(reqwest::Method::POST, path, Some(body))
                .await
                .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        }
    };
    // The mount's default maximum lease is 32 days: allow the ten-year root first.
    post("sys/mounts/pki/tune", json!({"max_lease_ttl": "87600h"})).await;
    let root_until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 3650))
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    post(
        "pki/root/generate/internal",
        json!({"common_name": "Vault Root", "not_after": root_until}),
    )
    .await;
    post(
        "pki/roles/any",
        json!({"allow_any_name": true, "enforce_hostnames": false, "max_ttl": "87600h"}),
    )
    .await;
    let issued = post(
        "pki/issue/any",
        json!({"common_name": common_name, "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}),
    )
    .await;
    let serial = issued["data"]["serial_number"]
        .as_str()
        .expect("serial_number")
        .to_string();
    (bao, serial)
}

type Mounts = Arc<(String, BTreeMap<String, BTreeMap<String, String>>)>;

async fn handle(
    State(state): State<Mounts>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    let (token, mounts) = &*state;
    if headers.get("x-vault-token").and_then(|v| v.to_str().ok()) != Some(token.as_str()) {
        return (
            StatusCode::FORBIDDEN,
            "{\"errors\":[\"permission denied\"]}",
        )
            .into_response();
    }
    for (mount, certs) in mounts {
        if method.as_str() == "LIST" && path == format!("{mount}/certs") {
            let keys: Vec<&String> = certs.keys().collect();
            return axum::Json(json!({"data": {"keys": keys}})).into_response();
        }
        if method == Method::GET
            && let Some(serial) = path.strip_prefix(&format!("{mount}/cert/"))
            && let Some(pem) = certs.get(serial)
        {
            return axum::Json(json!({"data": {"certificate": pem, "revocation_time": 0}}))
                .into_response();
        }
    }
    (StatusCode::NOT_FOUND, "{\"errors\":[]}").into_response()
}

/// Starts the server with `token` and `mounts` (mount → serial → PEM); returns its base URL.
pub async fn start(token: &str, mounts: BTreeMap<String, BTreeMap<String, String>>) -> String {
    let app = axum::Router::new()
        .route("/v1/{*path}", axum::routing::any(handle))
        .with_state(Arc::new((token.to_string(), mounts)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
