//! A fault-injecting HTTP reverse proxy for the test bed: put it in front of moto, the fake
//! Kubernetes API, the Pushgateway, OpenBao or the snooze service, point the job at it, and it
//! forwards every request except the ones its rules pick, which get a fault instead.
//!
//! - **Throttling shaped like the real service**, chosen from the request: EC2
//!   `RequestLimitExceeded` (503, EC2's XML), the query APIs (RDS, STS, IAM, Auto Scaling, ELB)
//!   `Throttling` (400, `ErrorResponse` XML), S3 `SlowDown` (503), REST-JSON services (Lambda,
//!   EKS) 429 with `x-amzn-ErrorType`, and anything that is not AWS (the Kubernetes API) 429
//!   with `Retry-After` and a `Status` object. The AWS service is read from the SigV4
//!   `Authorization` header's credential scope.
//! - Added **latency**, a plain **status** (500, 503), a **connection reset mid-body** (the
//!   upstream's status and headers, half the body, then the connection is dropped) and a
//!   **blackhole** (the request is held until the client gives up).
//!
//! **Deterministic for a seed**: whether rule *r* fires for a request depends only on the seed,
//! *r*, the request (method, path and query, body) and how many times that same request was
//! seen before — not on the order concurrent requests arrive in. A retry is a new occurrence,
//! so a throttled call is retried into a fresh draw, as against the real service.
//!
//! A **trip** ([`FaultProxy::trip`]) holds the n-th request a matcher accepts, before it reaches
//! the upstream or after the upstream answered, and notifies the test: the point to kill the
//! client at an exact step of its run.
//!
//! [`FaultProxy::stats`] counts requests and injected faults per service, which is how a test
//! prints the retries a run needed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;

/// Which requests a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Every request.
    Any,
    /// Requests signed for this AWS service (`ec2`, `rds`, `s3`, `sts`, …).
    Aws(String),
    /// Requests not signed for AWS (the Kubernetes API, the Pushgateway, …).
    NotAws,
    /// Requests whose path starts with this.
    PathPrefix(String),
}

/// What a rule does to a request it picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The service's own throttling answer (see the module docs for the shapes).
    Throttle,
    /// Forward after this delay.
    Latency(Duration),
    /// Answer this status with a short text body, without forwarding.
    Status(u16),
    /// Forward, then send the upstream's status, headers and half its body, and drop the
    /// connection.
    ResetMidBody,
    /// Never answer (until the client closes the connection).
    Blackhole,
}

/// One rule: `fault` for a share `probability` (0 to 1) of the requests on `route`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Which requests.
    pub route: Route,
    /// What happens to the picked ones.
    pub fault: Fault,
    /// The share picked, 0.0 to 1.0.
    pub probability: f64,
}

impl Rule {
    /// `fault` on `probability` of the requests on `route`.
    pub fn new(route: Route, fault: Fault, probability: f64) -> Rule {
        Rule {
            route,
            fault,
            probability,
        }
    }
}

/// Requests and injected faults, per service (`ec2`, …, or `http` for unsigned requests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received, per service.
    pub requests: BTreeMap<String, u64>,
    /// Faults injected, per (service, fault name: `throttle`, `latency`, `status`, `reset`,
    /// `blackhole`).
    pub faults: BTreeMap<(String, String), u64>,
}

impl Stats {
    /// All requests received.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// All faults of `name` injected, over every service.
    pub fn total(&self, name: &str) -> u64 {
        self.faults
            .iter()
            .filter(|((_, f), _)| f == name)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Which requests a [`FaultProxy::trip`] counts: method, path and query, body.
pub type Matcher = Arc<dyn Fn(&Method, &str, &[u8]) -> bool + Send + Sync>;

/// Where a trip stops the `nth` matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripPoint {
    /// Held before it reaches the upstream: the call never happens.
    Before,
    /// Forwarded, and the upstream's answer held: the call happened, the client never learns.
    After,
}

struct Trip {
    matcher: Matcher,
    nth: u64,
    point: TripPoint,
    seen: u64,
    fired: Arc<tokio::sync::Notify>,
}

struct State {
    upstream: String,
    seed: u64,
    rules: Mutex<Vec<Rule>>,
    trip: Mutex<Option<Trip>>,
    release: tokio::sync::Notify,
    seen: Mutex<HashMap<u64, u64>>,
    stats: Mutex<Stats>,
    http: reqwest::Client,
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`http://host:port`),
    /// with no rules yet.
    pub async fn start(upstream: &str, seed: u64) -> anyhow::Result<FaultProxy> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| anyhow::anyhow!("fault proxy: http client: {e}"))?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            seed,
            rules: Mutex::new(Vec::new()),
            trip: Mutex::new(None),
            release: tokio::sync::Notify::new(),
            seen: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            http,
        });
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(&state, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| anyhow::anyhow!("fault proxy: bind: {e}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FaultProxy { addr, state, task })
    }

    /// `http://127.0.0.1:<port>`: give this to the client instead of the upstream.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rules (requests already in flight keep the decision they got).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *lock(&self.state.rules) = rules;
    }

    /// Arms a trip: the `nth` request (from 1) that `matcher` accepts is held at `point` until
    /// [`FaultProxy::release_trip`] (if ever), and the returned notification fires — the moment
    /// for a test to kill its client, or break something else, at a precise step (before or
    /// after its n-th removal call, say). Replaces an earlier trip.
    pub fn trip(&self, matcher: Matcher, nth: u64, point: TripPoint) -> Arc<tokio::sync::Notify> {
        let fired = Arc::new(tokio::sync::Notify::new());
        *lock(&self.state.trip) = Some(Trip {
            matcher,
            nth,
            point,
            seen: 0,
            fired: fired.clone(),
        });
        fired
    }

    /// Lets the request held by the trip go on (forwarded, or its answer sent).
    pub fn release_trip(&self) {
        self.state.release.notify_one();
    }

    /// How many requests the armed trip's matcher accepted so far (0 without a trip).
    pub fn tripped_count(&self) -> u64 {
        lock(&self.state.trip).as_ref().map_or(0, |t| t.seen)
    }

    /// Requests and faults so far.
    pub fn stats(&self) -> Stats {
        lock(&self.state.stats).clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The AWS service a request is signed for: the fourth field of the SigV4 credential scope
/// (`Credential=AKID/20261202/us-east-1/ec2/aws4_request`).
pub fn aws_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_string)
}

fn matches(route: &Route, service: Option<&str>, uri: &Uri) -> bool {
    match route {
        Route::Any => true,
        Route::Aws(s) => service == Some(s.as_str()),
        Route::NotAws => service.is_none(),
        Route::PathPrefix(p) => uri.path().starts_with(p.as_str()),
    }
}

/// FNV-1a over the parts, then SplitMix64's finaliser: a stable, well-mixed 64-bit hash.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A draw in [0, 1) for rule `rule` on occurrence `n` of request `key`.
fn draw(seed: u64, key: u64, n: u64, rule: usize) -> f64 {
    let x = mix(seed ^ mix(key ^ mix(n.wrapping_mul(0x100) ^ rule as u64)));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

async fn handle(
    state: &State,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let service = aws_service(&headers);
    let label = service.clone().unwrap_or_else(|| "http".into());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let key = hash(&[method.as_str().as_bytes(), path.as_bytes(), &body]);
    let n = {
        let mut seen = lock(&state.seen);
        let c = seen.entry(key).or_insert(0);
        *c += 1;
        *c
    };
    let held = lock(&state.trip).as_mut().and_then(|t| {
        if !(t.matcher)(&method, &path, &body) {
            return None;
        }
        t.seen += 1;
        (t.seen == t.nth).then(|| (t.point, t.fired.clone()))
    });
    match held {
        Some((TripPoint::Before, fired)) => {
            fired.notify_one();
            state.release.notified().await;
        }
        Some((TripPoint::After, fired)) => {
            let answer = forward(state, method, &path, headers, body, false).await;
            fired.notify_one();
            state.release.notified().await;
            return answer;
        }
        None => {}
    }
    let picked: Vec<Fault> = lock(&state.rules)
        .iter()
        .enumerate()
        .filter(|(_, r)| matches(&r.route, service.as_deref(), &uri))
        .filter(|(i, r)| draw(state.seed, key, n, *i) < r.probability)
        .map(|(_, r)| r.fault.clone())
        .collect();
    {
        let mut stats = lock(&state.stats);
        *stats.requests.entry(label.clone()).or_insert(0) += 1;
        for f in &picked {
            *stats
                .faults
                .entry((label.clone(), fault_name(f).to_string()))
                .or_insert(0) += 1;
        }
    }
    let mut reset = false;
    for f in &picked {
        match f {
            Fault::Latency(d) => tokio::time::sleep(*d).await,
            Fault::Throttle => return throttle(service.as_deref(), n),
            Fault::Status(code) => {
                let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY);
                return text_response(status, "fault proxy: injected failure");
            }
            Fault::Blackhole => std::future::pending::<()>().await,
            Fault::ResetMidBody => reset = true,
        }
    }
    forward(state, method, &path, headers, body, reset).await
}

fn fault_name(f: &Fault) -> &'static str {
    match f {
        Fault::Throttle => "throttle",
        Fault::Latency(_) => "latency",
        Fault::Status(_) => "status",
        Fault::ResetMidBody => "reset",
        Fault::Blackhole => "blackhole",
    }
}

fn text_response(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    r
}

/// The throttling answer of `service` (None: not AWS, answered as the Kubernetes API does).
fn throttle(service: Option<&str>, n: u64) -> Response {
    let request_id = format!("fault-{n:08x}");
    let (status, content_type, body, error_type) = match service {
        Some("ec2") => (
            503,
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
            None,
        ),
        Some("s3") => (
            503,
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>{request_id}</RequestId></Error>"
            ),
            None,
        ),
        Some("lambda") => (
            429,
            "application/json",
            "{\"Type\":\"User\",\"message\":\"Rate exceeded\",\"Reason\":\"CallerRateLimitExceeded\"}"
                .to_string(),
            Some("TooManyRequestsException"),
        ),
        Some("eks") => (
            429,
            "application/json",
            "{\"message\":\"Rate exceeded\"}".to_string(),
            Some("ThrottlingException"),
        ),
        Some(_) => (
            400,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
            None,
        ),
        None => (
            429,
            "application/json",
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Too many requests, please try again later.\",\"reason\":\"TooManyRequests\",\"details\":{\"retryAfterSeconds\":1},\"code\":429}".to_string(),
            None,
        ),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    if let Some(t) = error_type {
        h.insert("x-amzn-errortype", HeaderValue::from_static(t));
    }
    if service.is_none() {
        h.insert("retry-after", HeaderValue::from_static("1"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

/// Hop-by-hop and framing headers, which the proxy sets itself.
const SKIP: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
];

async fn forward(
    state: &State,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
    reset: bool,
) -> Response {
    let mut req = state
        .http
        .request(method, format!("{}{path}", state.upstream))
        .body(body.to_vec());
    for (k, v) in &headers {
        if !SKIP.contains(&k.as_str()) {
            req = req.header(k, v);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return text_response(
                StatusCode::BAD_GATEWAY,
                &format!("fault proxy: upstream unreachable: {e}"),
            );
        }
    };
    let status = resp.status();
    let upstream_headers = resp.headers().clone();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return text_response(
                StatusCode::BAD_GATEWAY,
                &format!("fault proxy: upstream body: {e}"),
            );
        }
    };
    let body = if reset {
        let half = bytes.slice(..bytes.len() / 2);
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault proxy: connection reset mid-body",
            )),
        ];
        // The error only after a pause, so the status, headers and first half are on the wire
        // (hyper would otherwise drop the connection before writing anything).
        let stream = futures::StreamExt::then(futures::stream::iter(chunks), |c| async move {
            if c.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            c
        });
        Body::from_stream(stream)
    } else {
        Body::from(bytes.clone())
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (k, v) in &upstream_headers {
        if !SKIP.contains(&k.as_str()) {
            r.headers_mut().append(k, v.clone());
        }
    }
    if let Ok(v) = HeaderValue::from_str(&bytes.len().to_string()) {
        // Announce the whole length, so a reset body is seen as cut short.
        r.headers_mut().insert("content-length", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_comes_from_the_sigv4_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=ab",
            ),
        );
        assert_eq!(aws_service(&h).as_deref(), Some("ec2"));
        assert_eq!(aws_service(&HeaderMap::new()), None);
    }

    #[test]
    fn draws_are_stable_per_seed_and_occurrence_and_spread() {
        let key = hash(&[b"POST", b"/", b"Action=DescribeInstances"]);
        assert_eq!(draw(7, key, 1, 0), draw(7, key, 1, 0));
        assert_ne!(draw(7, key, 1, 0), draw(8, key, 1, 0));
        assert_ne!(draw(7, key, 1, 0), draw(7, key, 2, 0));
        let hits = (1..=10_000).filter(|n| draw(42, key, *n, 0) < 0.3).count();
        assert!((2_700..3_300).contains(&hits), "{hits} of 10000 at 30 %");
    }
}
