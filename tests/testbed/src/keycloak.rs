//! A stand-in for Keycloak, in-process, on a free loopback port: no Keycloak server can be
//! installed on our machines (its Java distribution is not reachable), so the project owns this
//! one, as it owns `fakekube`. It honours the shapes of Keycloak's Admin REST API and token
//! endpoint that a secret rotation uses, no more:
//!
//! - `POST /realms/{realm}/protocol/openid-connect/token` with `grant_type=client_credentials`
//!   and the client's id and secret (form fields or HTTP Basic) → `{access_token, expires_in,
//!   token_type: "Bearer", …}`; a wrong secret → 401 `{"error": "invalid_client",
//!   "error_description": "Invalid client or Invalid client credentials"}`. The client's
//!   current secret is accepted; its *rotated* (previous) secret only until
//!   `client.secret.rotated.expiration.time`.
//! - Admin API under `/admin/realms/{realm}`, with a bearer token of a client of the admin realm
//!   ([`Keycloak::ADMIN_REALM`]) that has the admin role ([`Keycloak::admin_credentials`]);
//!   without one, 401:
//!   - `GET /clients?clientId=X` → the `ClientRepresentation`s whose `clientId` is exactly X
//!     (`[]` when none);
//!   - `GET /clients/{id}` → one `ClientRepresentation` (`id` is the internal UUID), 404
//!     `{"error": "Could not find client"}` when unknown; `PUT /clients/{id}` → 204 (a `secret`
//!     in the body replaces the current secret as is, without rotating);
//!   - `POST /clients/{id}/client-secret` → regenerates the secret and answers
//!     `{"type": "secret", "value": …}` (a `CredentialRepresentation`); `GET` the same path → the
//!     current one;
//!   - `GET /clients/{id}/client-secret/rotated` → the rotated secret, or 404 `{"error": "Client
//!     does not have a rotated secret"}`; `DELETE` → 204 whether or not there was one.
//! - The `client.secret.*` attributes as Keycloak keeps them (epoch seconds as strings):
//!   `client.secret.creation.time`, `client.secret.expiration.time`, `client.secret.rotated`,
//!   `client.secret.rotated.creation.time`, `client.secret.rotated.expiration.time`.
//! - Secret rotation is a realm's client policy in Keycloak (the `secret-rotation` executor):
//!   [`Keycloak::add_realm`] with a [`RotationPolicy`] makes a regeneration keep the old secret
//!   as the rotated one for `rotated_expiration_period`; without a policy the old secret stops
//!   working at once, as upstream.
//!
//! Its clock is the system's plus [`Keycloak::advance`], so a test can step past a window.
//! Every secret it generated is kept for [`Keycloak::issued_secrets`] (leak scans).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::process::{Error, Result};

/// A secret-rotation client policy of a realm (Keycloak's `secret-rotation` executor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a new secret is valid (`expiration-period`).
    pub expiration_period: Duration,
    /// How long the previous secret keeps working after a regeneration
    /// (`rotated-expiration-period`).
    pub rotated_expiration_period: Duration,
}

#[derive(Debug, Clone)]
struct Client {
    id: String,
    client_id: String,
    secret: String,
    admin: bool,
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Realm {
    policy: Option<RotationPolicy>,
    clients: Vec<Client>,
}

#[derive(Debug, Default)]
struct State_ {
    realms: BTreeMap<String, Realm>,
    tokens: BTreeMap<String, (String, String)>,
    offset: i64,
    issued: Vec<String>,
    requests: Vec<(String, String)>,
}

struct Shared(Mutex<State_>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State_> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const CREATION: &str = "client.secret.creation.time";
const EXPIRATION: &str = "client.secret.expiration.time";
const ROTATED: &str = "client.secret.rotated";
const ROTATED_CREATION: &str = "client.secret.rotated.creation.time";
const ROTATED_EXPIRATION: &str = "client.secret.rotated.expiration.time";

/// A running stand-in; it stops when dropped.
pub struct Keycloak {
    addr: SocketAddr,
    shared: Arc<Shared>,
    admin_secret: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for Keycloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keycloak")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn random_secret() -> String {
    // Keycloak's secrets are 32 random alphanumerics; two v4 UUIDs give 244 random bits.
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}").chars().take(32).collect()
}

impl Keycloak {
    /// The realm of the admin client (as in a Keycloak installation).
    pub const ADMIN_REALM: &'static str = "master";
    /// The admin client's `clientId`.
    pub const ADMIN_CLIENT_ID: &'static str = "governance-admin";

    /// Starts the stand-in with the admin realm and its admin client.
    pub async fn start() -> Result<Keycloak> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| Error::Io {
                service: "keycloak".into(),
                action: "bind a loopback port".into(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Io {
            service: "keycloak".into(),
            action: "read the bound address".into(),
            source,
        })?;
        let shared = Arc::new(Shared(Mutex::new(State_::default())));
        let admin_secret = random_secret();
        {
            let mut state = shared.lock();
            let mut admin = new_client(Self::ADMIN_CLIENT_ID, &admin_secret, 0);
            admin.admin = true;
            state.realms.insert(
                Self::ADMIN_REALM.to_string(),
                Realm {
                    policy: None,
                    clients: vec![admin],
                },
            );
        }
        let (tx, rx) = oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Keycloak {
            addr,
            shared,
            admin_secret,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`, the server's base URL (no `/auth` prefix, as Keycloak ≥ 17).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The admin client's `clientId` and secret (a test secret), for `client_credentials` in
    /// [`Keycloak::ADMIN_REALM`].
    pub fn admin_credentials(&self) -> (&'static str, &str) {
        (Self::ADMIN_CLIENT_ID, &self.admin_secret)
    }

    /// Adds a realm, with or without a secret-rotation client policy.
    pub fn add_realm(&self, realm: &str, policy: Option<RotationPolicy>) {
        self.shared.lock().realms.insert(
            realm.to_string(),
            Realm {
                policy,
                clients: Vec::new(),
            },
        );
    }

    /// Adds a confidential client with `secret` to `realm` and returns its internal id.
    ///
    /// # Panics
    /// If the realm does not exist.
    pub fn add_client(&self, realm: &str, client_id: &str, secret: &str) -> String {
        let mut state = self.shared.lock();
        let now = now(state.offset);
        let realm = state.realms.get_mut(realm).expect("add the realm first");
        let client = new_client(client_id, secret, now);
        let id = client.id.clone();
        realm.clients.push(client);
        id
    }

    /// The client's current secret.
    pub fn current_secret(&self, realm: &str, client_id: &str) -> Option<String> {
        let state = self.shared.lock();
        let realm = state.realms.get(realm)?;
        realm
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
            .map(|c| c.secret.clone())
    }

    /// The client's attributes (the `client.secret.*` ones included).
    pub fn attributes(&self, realm: &str, client_id: &str) -> BTreeMap<String, String> {
        let state = self.shared.lock();
        state
            .realms
            .get(realm)
            .and_then(|r| r.clients.iter().find(|c| c.client_id == client_id))
            .map(|c| c.attributes.clone())
            .unwrap_or_default()
    }

    /// Moves the stand-in's clock forward (past a rotated secret's window, say).
    pub fn advance(&self, by: Duration) {
        self.shared.lock().offset += i64::try_from(by.as_secs()).unwrap_or(i64::MAX / 2);
    }

    /// Every secret the stand-in generated, in order.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// `(method, path)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn now(offset: i64) -> i64 {
    jiff::Timestamp::now().as_second() + offset
}

fn new_client(client_id: &str, secret: &str, now: i64) -> Client {
    let mut attributes = BTreeMap::new();
    attributes.insert(CREATION.to_string(), now.to_string());
    Client {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client_id.to_string(),
        secret: secret.to_string(),
        admin: false,
        attributes,
    }
}

fn representation(c: &Client) -> Value {
    json!({
        "id": c.id,
        "clientId": c.client_id,
        "enabled": true,
        "protocol": "openid-connect",
        "publicClient": false,
        "serviceAccountsEnabled": true,
        "clientAuthenticatorType": "client-secret",
        "secret": c.secret,
        "attributes": c.attributes,
    })
}

fn credential(value: &str) -> Value {
    json!({"type": "secret", "value": value})
}

fn error(code: StatusCode, body: Value) -> (StatusCode, Value) {
    (code, body)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let (code, value) = respond(&shared, &method, &uri, &headers, &query, &body);
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
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
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
    match segments.as_slice() {
        ["realms", realm, "protocol", "openid-connect", "token"] if method == Method::POST => {
            token(&mut state, realm, headers, body)
        }
        ["admin", "realms", realm, rest @ ..] => {
            if !is_admin(&state, headers) {
                return error(
                    StatusCode::UNAUTHORIZED,
                    json!({"error": "HTTP 401 Unauthorized"}),
                );
            }
            admin(&mut state, realm, rest, method, query, body)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"error": "Unable to find matching target resource method"}),
        ),
    }
}

fn token(state: &mut State_, realm: &str, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Value) {
    let form: BTreeMap<String, String> = serde_urlencoded_pairs(body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}),
        );
    }
    let (id, secret) = match basic_auth(headers) {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let now = now(state.offset);
    let invalid = || {
        error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}),
        )
    };
    let Some(client) = state
        .realms
        .get(realm)
        .and_then(|r| r.clients.iter().find(|c| c.client_id == id))
    else {
        return invalid();
    };
    let current = !secret.is_empty() && client.secret == secret;
    let rotated = client.attributes.get(ROTATED).is_some_and(|r| *r == secret)
        && client
            .attributes
            .get(ROTATED_EXPIRATION)
            .and_then(|e| e.parse::<i64>().ok())
            .is_some_and(|e| now < e);
    if !(current || rotated) {
        return invalid();
    }
    let access = format!("kc-{}", uuid::Uuid::new_v4().simple());
    state
        .tokens
        .insert(access.clone(), (realm.to_string(), id.clone()));
    (
        StatusCode::OK,
        json!({"access_token": access, "expires_in": 300, "refresh_expires_in": 0,
               "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"}),
    )
}

fn is_admin(state: &State_, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Some((realm, client_id)) = state.tokens.get(token) else {
        return false;
    };
    realm == Keycloak::ADMIN_REALM
        && state.realms.get(realm).is_some_and(|r| {
            r.clients
                .iter()
                .any(|c| &c.client_id == client_id && c.admin)
        })
}

fn admin(
    state: &mut State_,
    realm_name: &str,
    rest: &[&str],
    method: &Method,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> (StatusCode, Value) {
    let now = now(state.offset);
    let State_ { realms, issued, .. } = state;
    let Some(realm) = realms.get_mut(realm_name) else {
        return error(StatusCode::NOT_FOUND, json!({"error": "Realm not found."}));
    };
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            json!({"error": "Could not find client"}),
        )
    };
    match rest {
        ["clients"] if method == Method::GET => {
            let wanted = query.get("clientId");
            let found: Vec<Value> = realm
                .clients
                .iter()
                .filter(|c| wanted.is_none_or(|w| *w == c.client_id))
                .map(representation)
                .collect();
            (StatusCode::OK, Value::Array(found))
        }
        ["clients", id, tail @ ..] => {
            let policy = realm.policy;
            let Some(client) = realm.clients.iter_mut().find(|c| c.id == *id) else {
                return not_found();
            };
            match (tail, method.clone()) {
                ([], Method::GET) => (StatusCode::OK, representation(client)),
                ([], Method::PUT) => {
                    let Ok(rep) = serde_json::from_slice::<Value>(body) else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            json!({"error": "unable to parse the client representation"}),
                        );
                    };
                    if let Some(secret) = rep["secret"].as_str() {
                        client.secret = secret.to_string();
                    }
                    (StatusCode::NO_CONTENT, Value::Null)
                }
                (["client-secret"], Method::GET) => (StatusCode::OK, credential(&client.secret)),
                (["client-secret"], Method::POST) => {
                    let fresh = random_secret();
                    issued.push(fresh.clone());
                    let old = std::mem::replace(&mut client.secret, fresh.clone());
                    let attrs = &mut client.attributes;
                    match policy {
                        Some(p) => {
                            attrs.insert(ROTATED.into(), old);
                            attrs.insert(ROTATED_CREATION.into(), now.to_string());
                            attrs.insert(
                                ROTATED_EXPIRATION.into(),
                                (now + p.rotated_expiration_period.as_secs() as i64).to_string(),
                            );
                            attrs.insert(
                                EXPIRATION.into(),
                                (now + p.expiration_period.as_secs() as i64).to_string(),
                            );
                        }
                        None => {
                            attrs.remove(EXPIRATION);
                        }
                    }
                    attrs.insert(CREATION.into(), now.to_string());
                    (StatusCode::OK, credential(&fresh))
                }
                (["client-secret", "rotated"], Method::GET) => {
                    let has = client
                        .attributes
                        .get(ROTATED)
                        .filter(|s| !s.is_empty())
                        .is_some()
                        && client.attributes.contains_key(ROTATED_CREATION);
                    match client.attributes.get(ROTATED) {
                        Some(secret) if has => (StatusCode::OK, credential(secret)),
                        _ => error(
                            StatusCode::NOT_FOUND,
                            json!({"error": "Client does not have a rotated secret"}),
                        ),
                    }
                }
                (["client-secret", "rotated"], Method::DELETE) => {
                    for k in [ROTATED, ROTATED_CREATION, ROTATED_EXPIRATION] {
                        client.attributes.remove(k);
                    }
                    (StatusCode::NO_CONTENT, Value::Null)
                }
                _ => error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"error": "HTTP 405 Method Not Allowed"}),
                ),
            }
        }
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"error": "Unable to find matching target resource method"}),
        ),
    }
}

/// `application/x-www-form-urlencoded` pairs (percent-decoding, `+` as space).
fn serde_urlencoded_pairs(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// `Authorization: Basic base64(id:secret)`, as OAuth clients may send their credentials
/// (each part form-encoded first, RFC 6749 2.3.1).
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((decode(id), decode(secret)))
}
