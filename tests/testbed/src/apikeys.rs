//! A stand-in for an HTTP API-key issuer, in-process, on a free loopback port: the kind of
//! internal service that holds the API keys of a principal (a partner, a service) and lets at
//! most **two** be active at once, so a key can be replaced without downtime: add the new one,
//! move the consumers, revoke the old one. There is no product to install for this (every
//! platform has its own); this one fixes the shapes our rotation job speaks:
//!
//! - Admin calls carry `Authorization: Bearer <admin token>` ([`ApiKeyIssuer::admin_token`]);
//!   without it, 401 `{"error": "unauthorized"}`.
//! - `PUT /v1/principals/{principal}/keys/{key_id}` with `{"key": "<value>"}` adds a key under a
//!   caller-chosen id: 201 `{"key_id", "created_at"}`; the same id with the same value again →
//!   200 (idempotent, so a retried rotation step is harmless); the same id with another value →
//!   409 `{"error": "key id exists with another value"}`; a third active key → 409 `{"error":
//!   "principal already has 2 active keys"}`; a value shorter than [`MIN_KEY_LENGTH`] or with
//!   characters outside `[A-Za-z0-9_-]` → 422 (the issuer rejects the value).
//! - `GET /v1/principals/{principal}/keys` → `{"keys": [{"key_id", "created_at"}]}` (never the
//!   values).
//! - `DELETE /v1/principals/{principal}/keys/{key_id}` → 204, or 404 `{"error": "no such key"}`.
//! - `GET /v1/whoami` with `X-API-Key: <value>` → 200 `{"principal", "key_id"}`, or 401
//!   `{"error": "invalid api key"}`: how a consumer (and the rotation's test step) proves a key
//!   works.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::process::{Error, Result};

/// The shortest key the issuer accepts.
pub const MIN_KEY_LENGTH: usize = 24;
/// Active keys per principal.
pub const MAX_ACTIVE_KEYS: usize = 2;

#[derive(Debug, Clone)]
struct Key {
    value: String,
    created_at: String,
}

#[derive(Debug, Default)]
struct State_ {
    principals: BTreeMap<String, BTreeMap<String, Key>>,
    requests: Vec<(String, String)>,
}

struct Shared(Mutex<State_>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State_> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running issuer; it stops when dropped.
pub struct ApiKeyIssuer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    admin_token: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for ApiKeyIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyIssuer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ApiKeyIssuer {
    /// Starts an issuer with no principals.
    pub async fn start() -> Result<ApiKeyIssuer> {
        let io = |action: &'static str| {
            move |source| Error::Io {
                service: "api-key issuer".into(),
                action: action.into(),
                source,
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("bind a loopback port"))?;
        let addr = listener
            .local_addr()
            .map_err(io("read the bound address"))?;
        let shared = Arc::new(Shared(Mutex::new(State_::default())));
        let (tx, rx) = oneshot::channel::<()>();
        let admin_token = format!("adm-{}", uuid::Uuid::new_v4().simple());
        let app = Router::new()
            .fallback(handle)
            .with_state((shared.clone(), admin_token.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(ApiKeyIssuer {
            addr,
            shared,
            admin_token,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin bearer token (a test secret).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Seeds an active key (no limit checks: a test's starting state).
    pub fn add_key(&self, principal: &str, key_id: &str, value: &str) {
        self.shared
            .lock()
            .principals
            .entry(principal.to_string())
            .or_default()
            .insert(
                key_id.to_string(),
                Key {
                    value: value.to_string(),
                    created_at: jiff::Timestamp::now().to_string(),
                },
            );
    }

    /// The ids of the principal's active keys, in id order.
    pub fn active_key_ids(&self, principal: &str) -> Vec<String> {
        self.shared
            .lock()
            .principals
            .get(principal)
            .map(|keys| keys.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `value` is an active key of `principal` right now.
    pub fn accepts(&self, principal: &str, value: &str) -> bool {
        self.shared
            .lock()
            .principals
            .get(principal)
            .is_some_and(|keys| keys.values().any(|k| k.value == value))
    }

    /// `(method, path)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for ApiKeyIssuer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    State((shared, admin)): State<(Arc<Shared>, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (code, value) = respond(&shared, &admin, &method, &uri, &headers, &body);
    if code == StatusCode::NO_CONTENT {
        return code.into_response();
    }
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn respond(
    shared: &Shared,
    admin: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, Value) {
    let mut state = shared.lock();
    state
        .requests
        .push((method.to_string(), uri.path().to_string()));
    // Path segments percent-decoded, as a real server routes them.
    let decoded: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    if let (["v1", "whoami"], &Method::GET) = (segments.as_slice(), method) {
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for (principal, keys) in &state.principals {
            if let Some((id, _)) = keys
                .iter()
                .find(|(_, k)| !presented.is_empty() && k.value == presented)
            {
                return (
                    StatusCode::OK,
                    json!({"principal": principal, "key_id": id}),
                );
            }
        }
        return (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid api key"}),
        );
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(admin) {
        return (StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
    }
    match (segments.as_slice(), method.clone()) {
        (["v1", "principals", principal, "keys"], Method::GET) => {
            let keys: Vec<Value> = state
                .principals
                .get(*principal)
                .into_iter()
                .flatten()
                .map(|(id, k)| json!({"key_id": id, "created_at": k.created_at}))
                .collect();
            (StatusCode::OK, json!({ "keys": keys }))
        }
        (["v1", "principals", principal, "keys", key_id], Method::PUT) => {
            let Some(value) = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["key"].as_str().map(str::to_string))
            else {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "expected {\"key\": \"...\"}"}),
                );
            };
            if value.len() < MIN_KEY_LENGTH
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"error": format!("a key has at least {MIN_KEY_LENGTH} characters of [A-Za-z0-9_-]")}),
                );
            }
            let keys = state.principals.entry(principal.to_string()).or_default();
            if let Some(existing) = keys.get(*key_id) {
                return if existing.value == value {
                    (
                        StatusCode::OK,
                        json!({"key_id": key_id, "created_at": existing.created_at}),
                    )
                } else {
                    (
                        StatusCode::CONFLICT,
                        json!({"error": "key id exists with another value"}),
                    )
                };
            }
            if keys.len() >= MAX_ACTIVE_KEYS {
                return (
                    StatusCode::CONFLICT,
                    json!({"error": format!("principal already has {MAX_ACTIVE_KEYS} active keys")}),
                );
            }
            let created_at = jiff::Timestamp::now().to_string();
            keys.insert(
                key_id.to_string(),
                Key {
                    value,
                    created_at: created_at.clone(),
                },
            );
            (
                StatusCode::CREATED,
                json!({"key_id": key_id, "created_at": created_at}),
            )
        }
        (["v1", "principals", principal, "keys", key_id], Method::DELETE) => {
            match state
                .principals
                .get_mut(*principal)
                .and_then(|keys| keys.remove(*key_id))
            {
                Some(_) => (StatusCode::NO_CONTENT, Value::Null),
                None => (StatusCode::NOT_FOUND, json!({"error": "no such key"})),
            }
        }
        _ => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}
