//! `ttl-snooze`, the snooze-link HTTP service: owners extend a resource's deadline by 7 or 14
//! days, or release it for deletion at the next run (**Delete now**). A Deployment (two replicas behind a Service), not a CronJob: it is its own crate, and
//! it applies the TTL job's rules from the `ttl-teardown` library rather than its own.
//!
//! Routes:
//! - `GET /v1/resources/{id}/extend?days=N&token=…` — the link in the warning email. **Never
//!   changes anything** (mail scanners and link previewers follow links): it shows a confirmation
//!   page whose form POSTs to the same path.
//! - `POST /v1/resources/{id}/extend` (form fields `days`, `token`, `reason`) — applies.
//! - `GET /v1/resources/{id}/release?token=…` — the **Delete now** link: a confirmation page,
//!   never a change; `POST` (form fields `token`, `reason`) applies: the resource's deadline
//!   becomes now (tag `ttl-released-at` = now, `ttl-released-by` = the link's owner,
//!   `ttl-release-reason`), and `resource-release-requested` is published and acknowledged
//!   before the success page. The TTL job then deletes it at its next run, without a further
//!   notice period: the owner's release is the consent (`ttl_teardown::policy::evaluate`).
//! - `PATCH /v1/resources/{id}/ttl` (JSON `{"extend_days": 7, "reason": "…"}`,
//!   `Authorization: Bearer <token>`) — applies, for tools; JSON answers.
//! - `/healthz` (always 200), `/readyz` (200 once keys and a durable publisher are in place),
//!   `/metrics` (Prometheus text).
//!
//! Every request to `/v1/` goes through the same check ([`AppState`] internals, `check`):
//! 1. `days` ∈ {7, 14} (400 otherwise: says nothing about any resource);
//! 2. the token's MAC (which binds the resource id of the path) and expiry ([`Keyring::verify`],
//!    constant time), then its claims against the request (snooze of N days, or release). **Before** the resource is looked up, so a bad token gets
//!    the same 403 (status and body) whether or not the resource exists;
//! 3. the resource's *current* state, read from its provider (one describe, never a listing):
//!    it must exist, not be being deleted, and be eligible by **exactly the TTL job's rule**
//!    (`ttl_teardown::plan::decide`: the whitelist, the account allowlist, valid tags,
//!    non-prod, opted in, not restricted, not a part of another resource). Any failure is the
//!    same opaque 403 again — a good token for a missing or since-whitelisted resource reads
//!    like a bad token;
//! 4. the claims' deadline and extension count must equal the current ones: once a snooze or a
//!    release is applied the deadline changes, so a used link — and its siblings from the same
//!    email — is refused (replay protection) with the same 403; a released resource refuses
//!    every link;
//! 5. for snoozes only, the policy limits: at most `max_extensions` (2) extensions and `ttl + extended days +
//!    requested days ≤ max_lifetime` (60d). These refusals (403) say which limit, since only the
//!    holder of a valid, current link can reach them.
//!
//! Applying writes tags/annotations (extension count + 1, extended days + N, `ttl-extended-by`,
//! `ttl-extension-reason`) through the inventory, then publishes `resource-ttl-extended` on
//! Kafka and waits for the acknowledgement **before** answering success. If the publish fails,
//! every tag it wrote is put back as it was (a tag that was absent is removed; best effort,
//! logged) and the answer is 503, so the same link can be tried again.
//!
//! Applies are serialised **across replicas**: check-write-publish for one resource runs under a
//! short per-resource Lease (`ttl-snooze-<hash of the id>` in `job.lock.namespace`, held by the
//! request id), so N replicas × M concurrent clicks of one link give exactly one extension and
//! one event; the others wait for the Lease, then find the link stale (403). Writes are absolute
//! values (count = N + 1, not "increment").
//!
//! Abuse resistance: a per-client-IP token bucket on `/v1/` (429 beyond it), a request body
//! limit (413), security headers on every answer (CSP, nosniff, DENY framing, no referrer, no
//! store), everything interpolated into HTML escaped, no redirects anywhere. Tokens and keys are
//! never logged: logs carry the resource id and the refusal's `detail`.
//!
//! The client of the rate limit is the TCP peer, unless that peer is one of the configured
//! `trusted_proxies` (the ingress controller): then it is the rightmost `X-Forwarded-For`
//! address that is not itself a trusted proxy ([`client_ip`]). Addresses further left were
//! written by the client and are never used, so no client can pick its own bucket; without
//! `trusted_proxies` the header is not read at all.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub mod iam;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FormRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Form, Json, Router};
use common::clock::Clock;
use common::config::JobConfig;
use common::event::{Envelope, SCHEMA_VERSION};
use common::kafka::Publisher;
use common::lock::{LockError, RunLock};
use inventory::{Providers, Resource};
use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::json;

use ttl_teardown::config::{Caps, DEFAULT_RATE_PER_MINUTE, SnoozeConfig, TtlConfig};
use ttl_teardown::plan::{self, Rules};

pub mod pages;

use ttl_teardown::snooze::token::{Claims, Keyring, LinkAction};
use ttl_teardown::tags::{self, TagPolicy};

/// The job name on events this service publishes.
pub const JOB_NAME: &str = "ttl-snooze";

/// The event type (and default topic) of an applied snooze.
pub const EVENT_TYPE: &str = "resource-ttl-extended";

/// The event type (and default topic) of a release ("Delete now").
pub const RELEASE_EVENT_TYPE: &str = "resource-release-requested";

/// Tag (annotation) recording who released the resource for deletion (the link's owner); the
/// instant goes to the TTL job's `keys.released_at` tag (`ttl-released-at`).
pub const RELEASED_BY_TAG: &str = "ttl-released-by";

/// Tag (annotation) recording the reason given for a release.
pub const RELEASE_REASON_TAG: &str = "ttl-release-reason";

/// Tag (annotation) recording who applied the last extension (the link's owner).
pub const EXTENDED_BY_TAG: &str = "ttl-extended-by";

/// Tag (annotation) recording the reason given for the last extension.
pub const EXTENSION_REASON_TAG: &str = "ttl-extension-reason";

/// Longest reason kept, in characters (AWS tag values hold 256).
pub const MAX_REASON_CHARS: usize = 256;

/// The only extensions a link may ask for, in days.
pub const ALLOWED_DAYS: [u32; 2] = [7, 14];

/// Default request body limit, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// How long one apply may hold its resource's Lease (a crashed replica frees it after this).
const APPLY_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a request waits for another replica's apply of the same resource.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Rate-limit buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 10_000;

/// The answer to every token or resource refusal, whatever the reason: the same bytes whether the
/// token is forged, expired, used, for another resource, or the resource does not exist.
const FORBIDDEN_TEXT: &str = "This link is invalid, expired or already used.";

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/// Tunables of the service (tests shrink them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per minute per client IP on `/v1/`; also the burst.
    pub rate_per_minute: u32,
    /// Largest request body, in bytes (413 beyond).
    pub body_bytes: usize,
    /// Proxies whose `X-Forwarded-For` names the client (see [`client_ip`]).
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            body_bytes: DEFAULT_BODY_LIMIT,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Limits {
    /// The limits `job.snooze` configures; the defaults for what it leaves out.
    pub fn from_config(snooze: Option<&SnoozeConfig>) -> Limits {
        let mut limits = Limits::default();
        if let Some(s) = snooze {
            limits.rate_per_minute = s.rate_per_minute;
            limits.trusted_proxies = s.trusted_proxies.clone();
        }
        limits
    }
}

/// The client a request is rate-limited as. `peer` is the TCP peer; when it is a trusted proxy,
/// the `X-Forwarded-For` values (all such headers, in order, as one comma-separated list) are
/// read from the right, skipping trusted proxies, and the first other address is the client. A
/// value that is not an IP address stops the walk at the last trusted hop, so clients behind a
/// proxy that writes garbage share that hop's bucket rather than choosing their own.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let values: Vec<&str> = forwarded_for.filter_map(|v| v.to_str().ok()).collect();
    for hop in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

/// Counters exposed on `/metrics`.
struct ServiceMetrics {
    registry: Registry,
    requests: Family<Vec<(String, String)>, Counter>,
    extensions: Counter<u64, AtomicU64>,
    releases: Counter<u64, AtomicU64>,
}

impl ServiceMetrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Vec<(String, String)>, Counter>::default();
        let extensions = Counter::<u64, AtomicU64>::default();
        let releases = Counter::<u64, AtomicU64>::default();
        registry.register(
            "ttl_snooze_requests",
            "Snooze requests by route and outcome",
            requests.clone(),
        );
        registry.register(
            "ttl_snooze_extensions_applied",
            "Extensions applied (tags written and event acknowledged)",
            extensions.clone(),
        );
        registry.register(
            "ttl_snooze_releases_applied",
            "Releases for deletion applied (tags written and event acknowledged)",
            releases.clone(),
        );
        ServiceMetrics {
            registry,
            requests,
            extensions,
            releases,
        }
    }

    fn count(&self, route: &str, outcome: &str) {
        self.requests
            .get_or_create(&vec![
                ("route".to_string(), route.to_string()),
                ("outcome".to_string(), outcome.to_string()),
            ])
            .inc();
    }
}

/// A per-IP token bucket.
struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    trusted_proxies: Vec<IpNet>,
}

impl RateLimiter {
    fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            // Forget buckets that have refilled completely: they hold no information.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < capacity
            });
        }
        let (tokens, at) = buckets.entry(ip).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the service talks to, built by the binary (or a test) before the state.
pub struct Backends {
    /// The resources (AWS scopes, the Kubernetes scope).
    pub providers: Providers,
    /// The Kafka publisher (must be durable to be ready).
    pub publisher: Publisher,
    /// The keys that sign and verify links.
    pub keyring: Keyring,
    /// The TTL job's whitelist (the same file the job loads).
    pub whitelist: whitelist::Whitelist,
    /// A Kubernetes client for the per-resource apply Leases.
    pub lease_client: kube::Client,
}

struct Inner {
    policy: TagPolicy,
    allowed_accounts: Vec<String>,
    caps: Caps,
    pricing: inventory::Pricing,
    whitelist: whitelist::Whitelist,
    providers: Providers,
    lease_client: kube::Client,
    lease_namespace: String,
    publisher: Publisher,
    keyring: Keyring,
    clock: Arc<dyn Clock>,
    metrics: ServiceMetrics,
    limiter: RateLimiter,
    body_bytes: usize,
    help: pages::Help,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("keyring", &self.0.keyring)
            .field("publisher", &self.0.publisher)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The service's state: the TTL rules of `config.job` (tag policy, account allowlist), the
    /// backends, and the clock ("now" for token expiry and the rules), with the [`Limits`] of
    /// `config.job.snooze`.
    pub fn new(
        config: &JobConfig<TtlConfig>,
        backends: Backends,
        clock: Arc<dyn Clock>,
    ) -> AppState {
        let limits = Limits::from_config(config.job.snooze.as_ref());
        Self::with_limits(config, backends, clock, limits)
    }

    /// [`AppState::new`] with other [`Limits`].
    pub fn with_limits(
        config: &JobConfig<TtlConfig>,
        backends: Backends,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> AppState {
        let job = &config.job;
        AppState(Arc::new(Inner {
            policy: job.policy.clone(),
            allowed_accounts: job.allowed_accounts.clone(),
            caps: job.caps.clone(),
            pricing: job.pricing.clone(),
            whitelist: backends.whitelist,
            providers: backends.providers,
            lease_client: backends.lease_client,
            lease_namespace: job.lock.namespace.clone(),
            publisher: backends.publisher,
            keyring: backends.keyring,
            clock,
            metrics: ServiceMetrics::new(),
            limiter: RateLimiter {
                per_minute: limits.rate_per_minute.max(1),
                buckets: Mutex::new(HashMap::new()),
                trusted_proxies: limits.trusted_proxies,
            },
            body_bytes: limits.body_bytes,
            help: help(config),
        }))
    }
}

/// What the pages say about whom to ask and how to opt out, from `job.snooze` and the tag keys.
fn help(config: &JobConfig<TtlConfig>) -> pages::Help {
    let keys = &config.job.policy.keys;
    let (sender, contact) = match &config.job.snooze {
        Some(s) => (s.sender.clone(), s.contact()),
        None => (
            "the platform team".to_string(),
            "the platform team".to_string(),
        ),
    };
    pages::Help {
        sender,
        contact,
        opt_out: format!("{}=false", keys.auto_teardown),
        deadline_tags: format!("{}, {}, {}", keys.created_at, keys.ttl, keys.extended_days),
        released_tag: keys.released_at.clone(),
        max_reason: MAX_REASON_CHARS,
    }
}

/// The service's routes with every layer (body limit, rate limit, security headers).
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route(
            "/v1/resources/{id}/extend",
            get(extend_page).post(extend_form),
        )
        .route(
            "/v1/resources/{id}/release",
            get(release_page).post(release_form),
        )
        .route("/v1/resources/{id}/ttl", patch(extend_json))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(v1)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(state.0.body_bytes))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves on `listener` until the process receives SIGTERM or ctrl-c.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    serve_until(listener, state, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes (then finishes the requests in flight).
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    response
}

async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Without connection info (a router driven without `serve`), everyone shares one bucket.
    let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let ip = client_ip(
        peer,
        request.headers().get_all("x-forwarded-for").iter(),
        &state.0.limiter.trusted_proxies,
    );
    if !state.0.limiter.allow(ip, Instant::now()) {
        state.0.metrics.count("v1", "rate-limited");
        tracing::warn!(client = %ip, "rate limited");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            "too many requests\n",
        )
            .into_response();
    }
    next.run(request).await
}

async fn readyz(State(state): State<AppState>) -> Response {
    // The keyring and the publisher are built before the state exists; a non-durable publisher
    // (no brokers) would let snoozes through without an audit event, so it is not ready.
    if state.0.publisher.is_durable() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no durable kafka publisher\n",
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if encode(&mut text, &state.0.metrics.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// The check shared by every route.

/// Why a request is refused.
#[derive(Debug)]
enum Refusal {
    /// Malformed request (bad `days`, unparseable body): 400 with this message.
    BadRequest(String),
    /// Token or resource refused: the opaque 403. `detail` is for the log only.
    Forbidden { detail: String },
    /// A policy limit (max extensions, max lifetime), for the holder of a valid current link.
    Limit(String),
    /// A provider or Kafka could not be reached: 503. `detail` is for the log only.
    Unavailable { detail: String },
}

impl Refusal {
    fn forbidden(detail: impl Into<String>) -> Refusal {
        Refusal::Forbidden {
            detail: detail.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Forbidden { .. } | Refusal::Limit(_) => StatusCode::FORBIDDEN,
            Refusal::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            Refusal::BadRequest(_) => "bad-request",
            Refusal::Forbidden { .. } => "forbidden",
            Refusal::Limit(_) => "limit",
            Refusal::Unavailable { .. } => "unavailable",
        }
    }

    /// What the caller may read: never the detail of a 403 or a 503.
    fn public_message(&self) -> String {
        match self {
            Refusal::BadRequest(m) | Refusal::Limit(m) => m.clone(),
            Refusal::Forbidden { .. } => FORBIDDEN_TEXT.to_string(),
            Refusal::Unavailable { .. } => {
                "The service cannot reach its backends right now; nothing was changed. Try again later."
                    .to_string()
            }
        }
    }

    fn log(&self, route: &str, id: &str) {
        match self {
            Refusal::Forbidden { detail } => {
                tracing::info!(route, resource = %id, detail = %detail, "snooze refused");
            }
            Refusal::Unavailable { detail } => {
                tracing::error!(route, resource = %id, detail = %detail, "snooze unavailable");
            }
            Refusal::BadRequest(m) | Refusal::Limit(m) => {
                tracing::info!(route, resource = %id, detail = %m, "snooze refused");
            }
        }
    }
}

/// A request that passed every check: what applying it would do.
struct Checked {
    resource: Resource,
    /// Its tags as the TTL job reads them.
    tags: tags::ResourceTags,
    claims: Claims,
    action: LinkAction,
    old_deadline: Timestamp,
    /// When it would be deleted if nothing is done (the deadline, or later after a late
    /// warning).
    delete_at: Timestamp,
    /// The deadline after applying: old + days for a snooze, now for a release.
    new_deadline: Timestamp,
}

/// Resource states meaning "already being deleted or gone".
fn removing(state: &str) -> bool {
    ttl_teardown::execute::DELETING_STATES.contains(&state)
        || ["terminated", "deleted"].contains(&state)
}

fn parse_days(days: Option<&str>) -> Result<u32, Refusal> {
    days.and_then(|d| d.parse::<u32>().ok())
        .filter(|d| ALLOWED_DAYS.contains(d))
        .ok_or_else(|| Refusal::BadRequest("days must be 7 or 14".to_string()))
}

impl AppState {
    async fn check(
        &self,
        id: &str,
        action: LinkAction,
        token: Option<&str>,
    ) -> Result<Checked, Refusal> {
        let s = &self.0;
        let now = s.clock.now();
        // 1. The token, before anything about the resource is looked at. The MAC binds the
        //    resource id of the path, so a token for another resource fails here.
        let token = token.unwrap_or_default();
        let claims = s
            .keyring
            .verify(token, id, now)
            .map_err(|e| Refusal::forbidden(format!("token: {}", e.detail)))?;
        if claims.action != action {
            return Err(Refusal::forbidden("token is for another action"));
        }
        // 2. The resource as it is now.
        let resource = s
            .providers
            .get(id)
            .await
            .map_err(|e| Refusal::Unavailable {
                detail: e.to_string(),
            })?;
        let Some(resource) = resource else {
            return Err(Refusal::forbidden("resource not found"));
        };
        if let Some(state) = resource.state.as_deref()
            && removing(state)
        {
            return Err(Refusal::forbidden(format!(
                "resource is being deleted ({state})"
            )));
        }
        // Exactly the TTL job's eligibility: whitelist, account allowlist, tags, policy. A
        // production, restricted, opted-out or whitelisted resource can never be snoozed or
        // released.
        let verdict = |r: &Resource| ttl_teardown::job::whitelist_verdict(&s.whitelist, r, now);
        let no_listing_failure = |_: &Resource| None;
        let rules = Rules {
            policy: &s.policy,
            allowed_accounts: &s.allowed_accounts,
            caps: &s.caps,
            pricing: &s.pricing,
            whitelist: &verdict,
            listing_failure: &no_listing_failure,
            now,
        };
        let outcome = plan::decide(&resource, &rules);
        let Some((parsed, decision)) = outcome
            .tags_and_decision()
            .filter(|_| outcome.is_eligible())
        else {
            return Err(Refusal::forbidden(format!(
                "not eligible: {}",
                outcome.reason()
            )));
        };
        let parsed = parsed.clone();
        // 3. The link must be for the current state: a used link (or its sibling from the same
        //    email) no longer matches.
        let old_deadline = decision.deadline;
        if claims.deadline != old_deadline || claims.extension_count != parsed.extension_count {
            return Err(Refusal::forbidden(format!(
                "stale link: made for deadline {} / {} extensions, now {} / {}",
                claims.deadline, claims.extension_count, old_deadline, parsed.extension_count
            )));
        }
        if parsed.released_at.is_some() {
            return Err(Refusal::forbidden("already released for deletion"));
        }
        let delete_at = decision.delete_not_before;
        let new_deadline = match action {
            LinkAction::Release => now,
            LinkAction::Extend(days) => {
                // 4. The policy limits.
                if parsed.extension_count >= s.policy.max_extensions {
                    return Err(Refusal::Limit(format!(
                        "This resource already had the maximum of {} extensions.",
                        s.policy.max_extensions
                    )));
                }
                if !self.extension_fits(&parsed, days) {
                    return Err(Refusal::Limit(format!(
                        "Snoozing by {days} days would pass the maximum lifetime of {} (ttl {} + {} days already granted).",
                        tags::format_duration(s.policy.max_lifetime),
                        tags::format_duration(parsed.ttl),
                        parsed.extended_days
                    )));
                }
                old_deadline
                    .checked_add(SignedDuration::from_hours(i64::from(days) * 24))
                    .map_err(|_| Refusal::forbidden("deadline out of range"))?
            }
        };
        Ok(Checked {
            resource,
            tags: parsed,
            claims,
            action,
            old_deadline,
            delete_at,
            new_deadline,
        })
    }

    /// Whether a snooze of `days` stays within the limits (count and lifetime).
    fn extension_fits(&self, parsed: &tags::ResourceTags, days: u32) -> bool {
        let s = &self.0;
        let requested = SignedDuration::from_hours(i64::from(days) * 24);
        let lifetime = parsed
            .ttl
            .checked_add(parsed.extension())
            .and_then(|l| l.checked_add(requested));
        parsed.extension_count < s.policy.max_extensions
            && lifetime.is_some_and(|l| l <= s.policy.max_lifetime)
    }

    /// The sibling links a confirmation page offers instead ("+14 instead"): signed here with
    /// the same claims and expiry as the link being shown, for actions the limits allow. The
    /// holder of one link of an email holds its siblings anyway, so this grants nothing new.
    fn alternatives(&self, c: &Checked) -> Vec<(LinkAction, String)> {
        let mut out = Vec::new();
        for days in ALLOWED_DAYS {
            let action = LinkAction::Extend(days);
            if action == c.action || !self.extension_fits(&c.tags, days) {
                continue;
            }
            let claims = Claims {
                action,
                ..c.claims.clone()
            };
            let token = self.0.keyring.sign(&claims);
            // Relative to the page (`/v1/resources/{id}/extend` or `/release`): no base URL
            // needed, and the id stays encoded exactly as the browser sent it.
            out.push((action, format!("extend?days={days}&token={token}")));
        }
        out
    }

    /// Writes the tags and publishes the event; the caller holds the resource's apply Lease.
    async fn apply(&self, c: &Checked, reason: &str) -> Result<Applied, Refusal> {
        let s = &self.0;
        let keys = &s.policy.keys;
        let reason = sanitise(reason);
        let by = sanitise(&c.claims.owner);
        let now = s.clock.now();
        let request_id = uuid::Uuid::now_v7().to_string();
        let (count, extended) = match c.action {
            LinkAction::Extend(days) => (c.tags.extension_count + 1, c.tags.extended_days + days),
            LinkAction::Release => (c.tags.extension_count, c.tags.extended_days),
        };
        let reason_tag = if reason.is_empty() {
            "none given".to_string()
        } else {
            reason.clone()
        };
        let tags = match c.action {
            LinkAction::Extend(_) => vec![
                (keys.extension_count.clone(), count.to_string()),
                (keys.extended_days.clone(), extended.to_string()),
                (EXTENDED_BY_TAG.to_string(), by.clone()),
                (EXTENSION_REASON_TAG.to_string(), reason_tag),
            ],
            LinkAction::Release => vec![
                (keys.released_at.clone(), c.new_deadline.to_string()),
                (RELEASED_BY_TAG.to_string(), by.clone()),
                (RELEASE_REASON_TAG.to_string(), reason_tag),
            ],
        };
        // What the tags were, to put every one back if the event cannot be published.
        let before: Vec<(String, Option<String>)> = tags
            .iter()
            .map(|(k, _)| (k.clone(), c.resource.tags.get(k).cloned()))
            .collect();
        s.providers
            .write_tags(&c.resource, &tags, &[])
            .await
            .map_err(|e| Refusal::Unavailable {
                detail: format!("writing tags: {e}"),
            })?;
        let (event_type, published) = match c.action {
            LinkAction::Extend(_) => {
                let envelope = self.envelope(
                    EVENT_TYPE,
                    &request_id,
                    ExtendedEvent {
                        resource_id: c.resource.id.clone(),
                        old_deadline: c.old_deadline,
                        new_deadline: c.new_deadline,
                        extended_by: by.clone(),
                        reason: reason.clone(),
                        extension_count: count,
                        request_id: request_id.clone(),
                    },
                );
                (
                    EVENT_TYPE,
                    s.publisher
                        .publish(EVENT_TYPE, &c.resource.id, &envelope)
                        .await
                        .map(|_| ()),
                )
            }
            LinkAction::Release => {
                let envelope = self.envelope(
                    RELEASE_EVENT_TYPE,
                    &request_id,
                    ReleasedEvent {
                        resource_id: c.resource.id.clone(),
                        old_deadline: c.old_deadline,
                        new_deadline: c.new_deadline,
                        released_by: by.clone(),
                        released_at: now,
                        reason: reason.clone(),
                        request_id: request_id.clone(),
                    },
                );
                (
                    RELEASE_EVENT_TYPE,
                    s.publisher
                        .publish(RELEASE_EVENT_TYPE, &c.resource.id, &envelope)
                        .await
                        .map(|_| ()),
                )
            }
        };
        if let Err(e) = published {
            // No audit event, no change: every tag written goes back as it was (absent ones
            // are removed), so the link works again and no trace of the failed attempt remains.
            let restore: Vec<(String, String)> = before
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect();
            let remove: Vec<String> = before
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            if let Err(undo) = s.providers.write_tags(&c.resource, &restore, &remove).await {
                tracing::error!(resource = %c.resource.id, error = %undo,
                    "event not published and the tags could not be put back: the change stands without an event");
            }
            return Err(Refusal::Unavailable {
                detail: format!("publishing {event_type}: {e}"),
            });
        }
        match c.action {
            LinkAction::Extend(_) => s.metrics.extensions.inc(),
            LinkAction::Release => s.metrics.releases.inc(),
        };
        tracing::info!(resource = %c.resource.id, action = event_type, old_deadline = %c.old_deadline,
            new_deadline = %c.new_deadline, extension_count = count, by = %by,
            request_id = %request_id, "link applied");
        Ok(Applied {
            resource_id: c.resource.id.clone(),
            old_deadline: c.old_deadline,
            new_deadline: c.new_deadline,
            extension_count: count,
            extended_days: extended,
            request_id,
            reason,
        })
    }

    fn envelope<T>(&self, event_type: &str, request_id: &str, data: T) -> Envelope<T> {
        Envelope {
            event_type: event_type.to_string(),
            schema_version: SCHEMA_VERSION.to_string(),
            job_name: JOB_NAME.to_string(),
            run_id: request_id.to_string(),
            dry_run: false,
            emitted_at: self.0.clock.now(),
            shard: None,
            data,
        }
    }

    async fn check_and_apply(
        &self,
        id: &str,
        action: LinkAction,
        token: Option<&str>,
        reason: &str,
    ) -> Result<(Checked, Applied), Refusal> {
        // The token first, as for a GET: a bad link never waits for (or touches) the Lease.
        let now = self.0.clock.now();
        self.0
            .keyring
            .verify(token.unwrap_or_default(), id, now)
            .map_err(|e| Refusal::forbidden(format!("token: {}", e.detail)))?;
        let lease = self.apply_lease(id).await?;
        let result = match self.check(id, action, token).await {
            Ok(checked) => self.apply(&checked, reason).await.map(|a| (checked, a)),
            Err(r) => Err(r),
        };
        if let Err(e) = lease.release().await {
            tracing::warn!(resource = %id, error = %e, "apply lease not released (it expires by itself)");
        }
        result
    }

    /// Takes the resource's apply Lease, waiting (bounded) for another replica's apply of the
    /// same resource to finish.
    async fn apply_lease(&self, id: &str) -> Result<RunLock, Refusal> {
        let s = &self.0;
        let name = lease_name(id);
        let holder = uuid::Uuid::now_v7().to_string();
        let started = std::time::Instant::now();
        loop {
            match RunLock::acquire(
                s.lease_client.clone(),
                &s.lease_namespace,
                &name,
                &holder,
                APPLY_LEASE,
                Timestamp::now(),
            )
            .await
            {
                Ok(lock) => return Ok(lock),
                Err(LockError::Held { .. }) if started.elapsed() < APPLY_WAIT => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(Refusal::Unavailable {
                        detail: format!("apply lease {}/{name}: {e}", s.lease_namespace),
                    });
                }
            }
        }
    }
}

/// The apply Lease of a resource: `ttl-snooze-` and 16 hex digits of the id's SHA-256 (ids are
/// ARNs, not Kubernetes names).
pub fn lease_name(id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("ttl-snooze-{hex}")
}

/// The data of a `resource-ttl-extended` event (inside a [`common::event::Envelope`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtendedEvent {
    /// The resource (ARN or `k8s:…`).
    pub resource_id: String,
    /// The deadline before the extension.
    pub old_deadline: Timestamp,
    /// The deadline after it.
    pub new_deadline: Timestamp,
    /// Who extended (the owner the link was sent to).
    pub extended_by: String,
    /// The reason given (sanitised; may be empty).
    pub reason: String,
    /// Extensions granted so far, this one included.
    pub extension_count: u8,
    /// Unique per request (UUID v7), also the envelope's `run_id`.
    pub request_id: String,
}

/// The JSON answer of a successful `PATCH`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The resource.
    pub resource_id: String,
    /// The deadline before.
    pub old_deadline: Timestamp,
    /// The deadline now.
    pub new_deadline: Timestamp,
    /// Extensions granted so far.
    pub extension_count: u8,
    /// Days granted so far.
    pub extended_days: u32,
    /// The request id (also on the event).
    pub request_id: String,
    /// The reason recorded (sanitised), for the success page.
    #[serde(skip)]
    pub reason: String,
}

/// The data of a `resource-release-requested` event: the owner asked, from the **Delete now**
/// link, for deletion at the next run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleasedEvent {
    /// The resource (ARN or `k8s:…`).
    pub resource_id: String,
    /// The deadline before the release.
    pub old_deadline: Timestamp,
    /// The deadline now: the instant of the release.
    pub new_deadline: Timestamp,
    /// Who released it (the owner the link was sent to).
    pub released_by: String,
    /// When.
    pub released_at: Timestamp,
    /// The reason given (sanitised; may be empty).
    pub reason: String,
    /// Unique per request (UUID v7), also the envelope's `run_id`.
    pub request_id: String,
}

/// Keeps only AWS-tag-safe characters (`[A-Za-z0-9 _.:/=+\-@]`; anything else becomes a space,
/// runs of spaces collapse), trims, and cuts at [`MAX_REASON_CHARS`].
pub fn sanitise(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let safe = c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c);
        let c = if safe { c } else { ' ' };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
        if out.len() >= MAX_REASON_CHARS {
            break;
        }
    }
    out.trim_end().to_string()
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// The query of the link.
#[derive(Debug, Deserialize)]
struct LinkQuery {
    days: Option<String>,
    token: Option<String>,
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
struct ExtendForm {
    days: Option<String>,
    token: Option<String>,
    #[serde(default)]
    reason: String,
}

/// The `PATCH` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendJson {
    extend_days: u32,
    #[serde(default)]
    reason: String,
}

/// The release confirmation form.
#[derive(Debug, Deserialize)]
struct ReleaseForm {
    token: Option<String>,
    #[serde(default)]
    reason: String,
}

/// The query of a release link.
#[derive(Debug, Deserialize)]
struct ReleaseQuery {
    token: Option<String>,
}

fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

impl AppState {
    fn facts(&self, c: &Checked) -> pages::Facts {
        let s = &self.0;
        pages::Facts::new(
            &c.resource,
            &c.tags,
            &s.pricing.estimate(&c.resource),
            c.old_deadline,
            c.delete_at,
            s.policy.max_extensions,
        )
    }

    fn refusal_page(&self, route: &str, id: &str, r: &Refusal) -> Response {
        r.log(route, id);
        self.0.metrics.count(route, r.outcome());
        let help = &self.0.help;
        // The 403 page interpolates nothing from the request: the same bytes for every refusal.
        let body = match r {
            Refusal::Forbidden { .. } => pages::refused(&r.public_message(), help),
            Refusal::Limit(m) => pages::limit(m, help),
            Refusal::BadRequest(m) => pages::plain("Bad request", m, help),
            Refusal::Unavailable { .. } => {
                pages::plain("Try again later", &r.public_message(), help)
            }
        };
        html(r.status(), body)
    }
}

fn refusal_json(route: &str, id: &str, r: &Refusal, metrics: &ServiceMetrics) -> Response {
    r.log(route, id);
    metrics.count(route, r.outcome());
    (r.status(), Json(json!({ "error": r.public_message() }))).into_response()
}

fn too_large(state: &AppState, route: &str) -> Response {
    state.0.metrics.count(route, "too-large");
    html(
        StatusCode::PAYLOAD_TOO_LARGE,
        pages::plain(
            "Request too large",
            "The request body is too large.",
            &state.0.help,
        ),
    )
}

async fn extend_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    const ROUTE: &str = "get-extend";
    let Ok(Query(q)) = query else {
        return state.refusal_page(ROUTE, &id, &Refusal::BadRequest("malformed query".into()));
    };
    let days = match parse_days(q.days.as_deref()) {
        Ok(d) => d,
        Err(r) => return state.refusal_page(ROUTE, &id, &r),
    };
    // GET never changes anything: it only checks and shows the form.
    let c = match state
        .check(&id, LinkAction::Extend(days), q.token.as_deref())
        .await
    {
        Ok(c) => c,
        Err(r) => return state.refusal_page(ROUTE, &id, &r),
    };
    state.0.metrics.count(ROUTE, "shown");
    let token = q.token.unwrap_or_default();
    let alternatives: Vec<(u32, String)> = state
        .alternatives(&c)
        .into_iter()
        .filter_map(|(a, href)| match a {
            LinkAction::Extend(d) => Some((d, href)),
            LinkAction::Release => None,
        })
        .collect();
    html(
        StatusCode::OK,
        pages::confirm_extend(
            &state.facts(&c),
            days,
            c.new_deadline,
            &token,
            &alternatives,
            state.0.clock.now(),
            &state.0.help,
        ),
    )
}

async fn extend_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: Result<Form<ExtendForm>, FormRejection>,
) -> Response {
    const ROUTE: &str = "post-extend";
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(&state, ROUTE),
        Err(_) => {
            return state.refusal_page(ROUTE, &id, &Refusal::BadRequest("malformed form".into()));
        }
    };
    let days = match parse_days(f.days.as_deref()) {
        Ok(d) => d,
        Err(r) => return state.refusal_page(ROUTE, &id, &r),
    };
    match state
        .check_and_apply(&id, LinkAction::Extend(days), f.token.as_deref(), &f.reason)
        .await
    {
        Ok((c, a)) => {
            state.0.metrics.count(ROUTE, "extended");
            html(
                StatusCode::OK,
                pages::extended(
                    &state.facts(&c),
                    a.new_deadline,
                    a.extension_count,
                    &a.reason,
                    state.0.clock.now(),
                    &state.0.help,
                ),
            )
        }
        Err(r) => state.refusal_page(ROUTE, &id, &r),
    }
}

async fn release_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ReleaseQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    const ROUTE: &str = "get-release";
    let Ok(Query(q)) = query else {
        return state.refusal_page(ROUTE, &id, &Refusal::BadRequest("malformed query".into()));
    };
    // GET never changes anything: it only checks and shows the form.
    let c = match state
        .check(&id, LinkAction::Release, q.token.as_deref())
        .await
    {
        Ok(c) => c,
        Err(r) => return state.refusal_page(ROUTE, &id, &r),
    };
    state.0.metrics.count(ROUTE, "shown");
    let token = q.token.unwrap_or_default();
    let alternatives: Vec<(u32, String)> = state
        .alternatives(&c)
        .into_iter()
        .filter_map(|(a, href)| match a {
            LinkAction::Extend(d) => Some((d, href)),
            LinkAction::Release => None,
        })
        .take(1)
        .collect();
    html(
        StatusCode::OK,
        pages::confirm_release(
            &state.facts(&c),
            &token,
            &alternatives,
            state.0.clock.now(),
            &state.0.help,
        ),
    )
}

async fn release_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: Result<Form<ReleaseForm>, FormRejection>,
) -> Response {
    const ROUTE: &str = "post-release";
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return too_large(&state, ROUTE),
        Err(_) => {
            return state.refusal_page(ROUTE, &id, &Refusal::BadRequest("malformed form".into()));
        }
    };
    match state
        .check_and_apply(&id, LinkAction::Release, f.token.as_deref(), &f.reason)
        .await
    {
        Ok((c, a)) => {
            state.0.metrics.count(ROUTE, "released");
            html(
                StatusCode::OK,
                pages::released(
                    &state.facts(&c),
                    &sanitise(&c.claims.owner),
                    &a.reason,
                    a.new_deadline,
                    &state.0.help,
                ),
            )
        }
        Err(r) => state.refusal_page(ROUTE, &id, &r),
    }
}

async fn extend_json(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    const ROUTE: &str = "patch-ttl";
    let m = &state.0.metrics;
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            m.count(ROUTE, "too-large");
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({"error": "request body too large"})),
            )
                .into_response();
        }
        Err(_) => {
            return refusal_json(
                ROUTE,
                &id,
                &Refusal::BadRequest("unreadable body".into()),
                m,
            );
        }
    };
    let req: ExtendJson = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => {
            return refusal_json(
                ROUTE,
                &id,
                &Refusal::BadRequest(
                    "expected JSON {\"extend_days\": 7 or 14, \"reason\": \"…\"}".into(),
                ),
                m,
            );
        }
    };
    if !ALLOWED_DAYS.contains(&req.extend_days) {
        return refusal_json(
            ROUTE,
            &id,
            &Refusal::BadRequest("extend_days must be 7 or 14".into()),
            m,
        );
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match state
        .check_and_apply(&id, LinkAction::Extend(req.extend_days), token, &req.reason)
        .await
    {
        Ok((_, a)) => {
            m.count(ROUTE, "extended");
            (StatusCode::OK, Json(a)).into_response()
        }
        Err(r) => refusal_json(ROUTE, &id, &r, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn client(peer: &str, headers: &[&str], trusted: &[&str]) -> IpAddr {
        let headers: Vec<HeaderValue> = headers
            .iter()
            .map(|h| HeaderValue::from_str(h).expect("header"))
            .collect();
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().expect("cidr")).collect();
        client_ip(ip(peer), headers.iter(), &trusted)
    }

    #[test]
    fn forwarded_for_is_read_only_from_trusted_proxies() {
        // No trusted proxies: the header is ignored, whatever it says.
        assert_eq!(
            client("198.51.100.7", &["203.0.113.9"], &[]),
            ip("198.51.100.7")
        );
        // A peer that is not a trusted proxy cannot choose its bucket either.
        assert_eq!(
            client("198.51.100.7", &["203.0.113.9"], &["10.0.0.0/8"]),
            ip("198.51.100.7")
        );
        // The ingress (trusted) names the client.
        assert_eq!(
            client("10.1.2.3", &["203.0.113.9"], &["10.0.0.0/8"]),
            ip("203.0.113.9")
        );
        // The client wrote addresses of its own to the left: the rightmost untrusted one counts.
        assert_eq!(
            client(
                "10.1.2.3",
                &["1.1.1.1, 2.2.2.2, 203.0.113.9"],
                &["10.0.0.0/8"]
            ),
            ip("203.0.113.9")
        );
        // A chain of trusted proxies is skipped, across several headers.
        assert_eq!(
            client(
                "10.1.2.3",
                &["1.1.1.1, 203.0.113.9", "10.9.9.9"],
                &["10.0.0.0/8"]
            ),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(client("10.1.2.3", &[], &["10.0.0.0/8"]), ip("10.1.2.3"));
        // Garbage stops at the last trusted hop.
        assert_eq!(
            client(
                "10.1.2.3",
                &["203.0.113.9, unknown, 10.4.4.4"],
                &["10.0.0.0/8"]
            ),
            ip("10.4.4.4")
        );
        // IPv4-mapped IPv6 peers (a dual-stack listener) match IPv4 networks.
        assert_eq!(
            client("::ffff:10.1.2.3", &["2001:db8::1"], &["10.0.0.0/8"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn reasons_keep_only_tag_safe_characters() {
        assert_eq!(sanitise("demo on friday <script>"), "demo on friday script");
        assert_eq!(sanitise("  a\nb\t\"c\"  "), "a b c");
        assert_eq!(sanitise("ok: a/b=c+d-e@f_g.h"), "ok: a/b=c+d-e@f_g.h");
        assert_eq!(sanitise(&"x".repeat(1000)).len(), MAX_REASON_CHARS);
        assert_eq!(sanitise("ünïcode"), "n code");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            ttl_teardown::snooze::escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn buckets_refill_over_time() {
        let limiter = RateLimiter {
            per_minute: 2,
            buckets: Mutex::new(HashMap::new()),
            trusted_proxies: Vec::new(),
        };
        let ip = IpAddr::from([10, 0, 0, 1]);
        let t = Instant::now();
        assert!(limiter.allow(ip, t));
        assert!(limiter.allow(ip, t));
        assert!(!limiter.allow(ip, t));
        assert!(limiter.allow(IpAddr::from([10, 0, 0, 2]), t));
        assert!(limiter.allow(ip, t + std::time::Duration::from_secs(30)));
    }
}
