//! A stand-in for the Kafka Connect REST API: no Connect worker can be installed on our machines
//! (it is a Java distribution outside the package registries we reach), so tests talk to this
//! small server of ours, which answers the documented response shapes of Apache Kafka's
//! `ConnectorsResource` for the read-only calls a report needs.
//!
//! Routes (all JSON):
//! - `GET /` → `{"version", "commit", "kafka_cluster_id"}`;
//! - `GET /connectors` → `["name", …]`; with `?expand=status` and/or `?expand=info` (repeatable)
//!   → `{"name": {"status": {…}, "info": {…}}, …}` holding only the expansions asked for;
//! - `GET /connectors/{name}` → info: `{"name", "config", "tasks": [{"connector", "task"}],
//!   "type"}`;
//! - `GET /connectors/{name}/status` → `{"name", "connector": {"state", "worker_id"[, "trace"]},
//!   "tasks": [{"id", "state", "worker_id"[, "trace"]}], "type"}`;
//! - an unknown connector → 404 `{"error_code": 404, "message": "Connector x not found"}`.
//!
//! [`ConnectStandIn::fail_with`] makes every request answer an error status instead, for tests of
//! a Connect cluster that is down.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One connector to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSpec {
    /// Name, e.g. `sales.orders-sink`.
    pub name: String,
    /// `source` or `sink`.
    pub kind: String,
    /// The connector's state: `RUNNING`, `PAUSED`, `FAILED`, `UNASSIGNED`, `STOPPED`.
    pub state: String,
    /// Each task's state, by task id 0, 1, …; a `FAILED` task gets a trace.
    pub tasks: Vec<String>,
}

impl ConnectorSpec {
    /// A connector of `kind` with the given connector state and task states.
    pub fn new(name: &str, kind: &str, state: &str, tasks: &[&str]) -> ConnectorSpec {
        ConnectorSpec {
            name: name.to_string(),
            kind: kind.to_string(),
            state: state.to_string(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn info(&self) -> Value {
        let class = if self.kind == "source" {
            "org.apache.kafka.connect.file.FileStreamSourceConnector"
        } else {
            "org.apache.kafka.connect.file.FileStreamSinkConnector"
        };
        json!({
            "name": self.name,
            "config": {"connector.class": class, "tasks.max": self.tasks.len().max(1).to_string(),
                       "name": self.name, "topics": "events"},
            "tasks": self.tasks.iter().enumerate()
                .map(|(i, _)| json!({"connector": self.name, "task": i})).collect::<Vec<_>>(),
            "type": self.kind,
        })
    }

    fn status(&self) -> Value {
        let worker = "10.0.0.7:8083";
        let trace = |state: &str| {
            (state == "FAILED").then(|| {
                "org.apache.kafka.connect.errors.ConnectException: stand-in failure\n\tat org.apache.kafka.connect.runtime.WorkerTask.doRun(WorkerTask.java:210)".to_string()
            })
        };
        let mut connector = json!({"state": self.state, "worker_id": worker});
        if let Some(t) = trace(&self.state) {
            connector["trace"] = json!(t);
        }
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let mut t = json!({"id": i, "state": state, "worker_id": worker});
                if let Some(tr) = trace(state) {
                    t["trace"] = json!(tr);
                }
                t
            })
            .collect();
        json!({"name": self.name, "connector": connector, "tasks": tasks, "type": self.kind})
    }
}

#[derive(Default)]
struct Inner {
    connectors: BTreeMap<String, ConnectorSpec>,
    failure: Option<u16>,
    requests: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running stand-in; it stops when dropped.
pub struct ConnectStandIn {
    shared: Shared,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ConnectStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectStandIn")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error_code": 404, "message": format!("Connector {name} not found")})),
    )
        .into_response()
}

fn failure(inner: &Inner) -> Option<Response> {
    let code = inner.failure?;
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some(
        (
            status,
            Json(json!({"error_code": code, "message": "stand-in failure"})),
        )
            .into_response(),
    )
}

async fn root() -> Json<Value> {
    Json(json!({"version": "3.7.0-standin", "commit": "standin", "kafka_cluster_id": "standin"}))
}

async fn list(State(s): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let mut inner = lock(&s);
    inner
        .requests
        .push(format!("/connectors?{}", query.clone().unwrap_or_default()));
    if let Some(r) = failure(&inner) {
        return r;
    }
    let expand: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("expand="))
        .map(str::to_string)
        .collect();
    if expand.is_empty() {
        return Json(json!(inner.connectors.keys().collect::<Vec<_>>())).into_response();
    }
    let out: serde_json::Map<String, Value> = inner
        .connectors
        .values()
        .map(|c| {
            let mut e = serde_json::Map::new();
            for x in &expand {
                match x.as_str() {
                    "status" => {
                        e.insert("status".into(), c.status());
                    }
                    "info" => {
                        e.insert("info".into(), c.info());
                    }
                    // Apache Kafka logs and ignores unknown expansions.
                    _ => {}
                }
            }
            (c.name.clone(), Value::Object(e))
        })
        .collect();
    Json(Value::Object(out)).into_response()
}

async fn info(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    let inner = lock(&s);
    if let Some(r) = failure(&inner) {
        return r;
    }
    match inner.connectors.get(&name) {
        Some(c) => Json(c.info()).into_response(),
        None => not_found(&name),
    }
}

async fn status(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    let inner = lock(&s);
    if let Some(r) = failure(&inner) {
        return r;
    }
    match inner.connectors.get(&name) {
        Some(c) => Json(c.status()).into_response(),
        None => not_found(&name),
    }
}

impl ConnectStandIn {
    /// Starts the stand-in on a free loopback port serving `connectors`.
    pub async fn start(connectors: Vec<ConnectorSpec>) -> anyhow::Result<ConnectStandIn> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared: Shared = Arc::new(Mutex::new(Inner {
            connectors: connectors
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect(),
            ..Inner::default()
        }));
        let app = axum::Router::new()
            .route("/", get(root))
            .route("/connectors", get(list))
            .route("/connectors/{name}", get(info))
            .route("/connectors/{name}/status", get(status))
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "kafka connect stand-in stopped with an error");
            }
        });
        Ok(ConnectStandIn {
            shared,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds or replaces a connector.
    pub fn put(&self, c: ConnectorSpec) {
        lock(&self.shared).connectors.insert(c.name.clone(), c);
    }

    /// From now on every request answers `status` (`None`: normal service again).
    pub fn fail_with(&self, status: Option<u16>) {
        lock(&self.shared).failure = status;
    }

    /// The `/connectors` requests seen so far (path and query).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared).requests.clone()
    }
}

impl Drop for ConnectStandIn {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
