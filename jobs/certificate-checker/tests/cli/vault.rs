//! A small HTTP server answering the documented response shapes of Vault's PKI API (no Vault
//! server can be installed here): `LIST /v1/<mount>/certs` → `{"data":{"keys":[…]}}` and
//! `GET /v1/<mount>/cert/<serial>` → `{"data":{"certificate":"<PEM>"}}`, behind `X-Vault-Token`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
