//! A stateful fake Kubernetes API server, in-process, on a free loopback port.
//!
//! No real kube-apiserver can be installed on our machines, and the fakes on PyPI get namespaces,
//! selectors or conflicts wrong, so the project owns this one (see TESTBED.md, "Kubernetes API").
//! It speaks plain-HTTP JSON to kube-rs clients, to our binaries through a kubeconfig
//! ([`FakeKube::kubeconfig_yaml`]) and to kubectl (`--validate=false`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let kube = testbed::fakekube::FakeKube::start().await?;
//! let client = kube.client()?; // or point a binary at it with KUBECONFIG
//! kube.insert(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Namespace",
//!     "metadata": {"name": "team-a", "creationTimestamp": "2020-01-01T00:00:00Z"},
//! }))?;
//! # drop(client); Ok(()) }
//! ```
//!
//! # What it honours
//! - The kinds of one table (`resources.rs`: namespaces, configmaps, secrets, services, service
//!   accounts, pods, PVCs, deployments, statefulsets, daemonsets, jobs, cronjobs, ingresses,
//!   leases, and External Secrets' `externalsecrets.external-secrets.io/v1beta1` as if its CRD
//!   were installed), at
//!   their namespaced paths, their all-namespaces list paths (`/api/v1/secrets`, ...), and
//!   `/status` subresources. As upstream, for kinds with one, writes to the object keep the stored
//!   status, writes to `/status` change only the status, and a created object's status is
//!   dropped (seed a status with [`FakeKube::insert`]). Minimal discovery (`/api`, `/apis`,
//!   `/api/v1`, `/apis/{g}/{v}`, `/version`) for kubectl and `client.apiserver_version()`.
//! - Lists: `{apiVersion, kind: <Kind>List, metadata: {resourceVersion, continue,
//!   remainingItemCount}, items}` in namespace/name order, every item with `apiVersion`/`kind`;
//!   `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`), `fieldSelector` on
//!   `metadata.name`/`metadata.namespace` (and a few per-kind paths), `limit`/`continue` paging.
//! - Writes: POST (409 AlreadyExists, 404 when the namespace is missing, 422 without a name,
//!   `generateName`), PUT (409 Conflict on a stale `metadata.resourceVersion`; none means
//!   unconditional; creates leases and services as upstream does), PATCH as merge (RFC 7386),
//!   JSON (RFC 6902; a failed `test` is 422), strategic merge and server-side apply (both served
//!   as merge; apply creates a missing object), DELETE returning the object (with `preconditions`),
//!   delete-collection, and `dryRun=All` on every write.
//! - Server-filled metadata: `uid` (UUID v4), one global resourceVersion bumped once per object
//!   written or removed, `creationTimestamp` (RFC 3339 UTC, seconds, never changed by updates),
//!   `generation` on the kinds controllers act on (deployments, statefulsets, jobs, cronjobs,
//!   ingresses; bumped when anything outside metadata and status changes), the namespace from
//!   the URL (a different one in the body is 400). Namespaces get `status.phase: Active` and the
//!   `kubernetes.io/metadata.name` label; secrets fold `stringData` into `data`.
//! - Namespaces: `default`, `kube-node-lease`, `kube-public` and `kube-system` exist from the
//!   start; the first three refuse deletion (403), as upstream. Deleting a namespace deletes what
//!   is in it at once (upstream does it asynchronously; the DELETE answer still says
//!   `Terminating`).
//! - Errors are `Status` bodies (`reason`, `code`, `details`), which kube-rs turns into
//!   `kube::Error::Api(status)` with `status.code` set.
//!
//! - Rollouts the test drives ([`FakeKube::set_rollout`], `rollout.rs`): for a Deployment,
//!   StatefulSet or DaemonSet given a [`Rollout`], a spec change (a patched pod-template
//!   annotation) starts a rollout whose `status` the fake then writes read by read, as the
//!   controller would: one that completes, one that exceeds its progress deadline, one that
//!   stalls; a paused Deployment only observes its generation. [`FakeKube::complete_rollout`]
//!   seeds a settled status.
//!
//! # What it deliberately does not do
//! - No watch (405), no admission, no RBAC or authentication, no field managers (apply is a merge
//!   patch; `fieldManager` and `force` are ignored), no strategic-merge list semantics (lists are
//!   replaced whole), no controllers beyond the rollout stand-in (no pods, no ReplicaSets, services
//!   get no cluster IP, no External Secrets operator),
//!   no finalizers or graceful deletion, no TLS. JSON only: protobuf or CBOR bodies get 415 (so
//!   `kubectl create ns x` fails while `kubectl create -f ns.yaml` works), and `Table` output is
//!   never sent (kubectl falls back to its own printing).
//! - List pages are not a snapshot: an object written between two pages shows up if it sorts
//!   after the last key served.
//!
//! # Test switches
//! [`FakeKube::set_unavailable`] makes every request fail with 503, and [`FakeKube::inject`] makes
//! chosen requests fail with any code. Note that kube-rs clients retry 429/503/504 by default with
//! exponential backoff (15 tries, minutes in total): to test a fast failure path, inject a 500.
//! [`FakeKube::requests`] records every request, so a test can assert that a dry run wrote nothing.

mod patch;
mod resources;
mod rollout;
mod selector;
mod server;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use resources::Resource;
pub use rollout::Rollout;
use server::Shared;
pub use store::ApiError;

/// A running fake API server; it stops when dropped.
pub struct FakeKube {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeKube {
    /// Starts a server on `127.0.0.1` and a free port, with the built-in namespaces only.
    pub async fn start() -> anyhow::Result<FakeKube> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("fakekube: binding a free loopback port")?;
        let addr = listener
            .local_addr()
            .context("fakekube: reading the bound address")?;
        let shared = Arc::new(Shared::new(addr));
        let (tx, rx) = oneshot::channel::<()>();
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender is a shutdown too.
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "fakekube: server stopped with an error");
            }
        });
        tracing::debug!(%addr, "fakekube: started");
        Ok(FakeKube {
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A kubeconfig whose only context points at this server without authentication, with
    /// `default` as the namespace.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fakekube\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: fakekube\n  user: {{}}\n\
             contexts:\n\
             - name: fakekube\n  context:\n    cluster: fakekube\n    user: fakekube\n    namespace: default\n\
             current-context: fakekube\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `dir/kubeconfig` and returns that path, ready for a
    /// child process's `KUBECONFIG`.
    pub fn write_kubeconfig(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml())
            .with_context(|| format!("fakekube: writing {}", path.display()))?;
        Ok(path)
    }

    /// A kube-rs client for this server, configured as `Config::new(url)` (so with kube's
    /// default retries on 429/503/504, like our binaries).
    pub fn client(&self) -> anyhow::Result<kube::Client> {
        let config = kube::Config::new(
            self.url()
                .parse()
                .context("fakekube: parsing its own url")?,
        );
        kube::Client::try_from(config).context("fakekube: building a kube client")
    }

    /// Stores an object directly, as a test's seed: creates it, or replaces it unconditionally if
    /// it exists. Unlike the API, this keeps a given `metadata.uid` and
    /// `metadata.creationTimestamp` (so a test can make an object days old). The kind comes from
    /// `apiVersion` and `kind`; the namespace must exist. Returns the stored object.
    pub fn insert(&self, obj: Value) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let res = resources::by_kind(api_version, kind).ok_or_else(|| {
            ApiError::new(
                404,
                format!(
                    "fakekube serves no kind {kind:?} in {api_version:?} (known: {})",
                    resources::known_plurals()
                ),
            )
        })?;
        self.shared.lock().store.seed(res, obj)
    }

    /// The stored object of kind `resource` (a plural such as `"deployments"`), if any.
    /// `namespace` is ignored for cluster-scoped kinds.
    ///
    /// # Panics
    /// If `resource` is not a plural the fake serves: a typo should fail the test, not look like
    /// an absent object.
    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let res = known(resource);
        self.shared.lock().store.get(res, namespace, name).cloned()
    }

    /// Every stored object of kind `resource`, in one namespace or (with `None`) in all of them,
    /// in namespace/name order.
    ///
    /// # Panics
    /// If `resource` is not a plural the fake serves.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let res = known(resource);
        self.shared
            .lock()
            .store
            .iter(res, namespace)
            .cloned()
            .collect()
    }

    /// Removes an object directly (a namespace with its content), bypassing API checks such as
    /// the protection of `default`; returns what was removed.
    ///
    /// # Panics
    /// If `resource` is not a plural the fake serves.
    pub fn remove(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let res = known(resource);
        self.shared.lock().store.remove(res, namespace, name)
    }

    /// How the next rollouts of the workload `resource` (`deployments`, `statefulsets` or
    /// `daemonsets`) `namespace/name` go: from now on, a write that changes its spec starts a
    /// rollout whose status the fake writes as it is read (see [`Rollout`]).
    ///
    /// # Panics
    /// If `resource` is not one of those three plurals.
    pub fn set_rollout(&self, resource: &str, namespace: &str, name: &str, rollout: Rollout) {
        let res = known(resource);
        assert!(
            rollout::is_workload(res),
            "fakekube simulates rollouts of deployments, statefulsets and daemonsets, not {resource}"
        );
        self.shared
            .lock()
            .rollouts
            .set(res, namespace, name, rollout);
    }

    /// Writes the status of a finished rollout of the workload's current spec (a settled seed,
    /// `observedGeneration` = `generation`); returns the stored object, `None` if absent.
    ///
    /// # Panics
    /// If `resource` is not `deployments`, `statefulsets` or `daemonsets`.
    pub fn complete_rollout(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = known(resource);
        assert!(
            rollout::is_workload(res),
            "fakekube simulates rollouts of deployments, statefulsets and daemonsets, not {resource}"
        );
        let mut inner = self.shared.lock();
        let mut obj = inner.store.get(res, Some(namespace), name)?.clone();
        obj["status"] = rollout::complete_status(res, &obj);
        inner.store.seed(res, obj).ok()
    }

    /// The current global resourceVersion (that of the last write).
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.resource_version()
    }

    /// While `true`, every request fails with 503 ServiceUnavailable. kube-rs retries 503 by
    /// default for minutes; prefer [`Self::inject`] with 500 for a quick failure.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.shared.lock().unavailable = unavailable;
    }

    /// Makes requests that match `fault` fail (see [`Fault`]). Faults are checked in the order
    /// they were injected; the first match answers.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Every request served so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Stops accepting connections and waits (up to five seconds) for open ones to finish.
    /// Dropping the handle does the same without waiting.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
    }

    fn stop(&mut self) {
        // Graceful shutdown closes idle kept-alive connections at once, so a client's next
        // request finds the port closed rather than a 503 that kube-rs would retry for minutes.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

fn known(plural: &str) -> &'static Resource {
    resources::by_plural(plural).unwrap_or_else(|| {
        panic!(
            "fakekube serves no resource {plural:?}; known: {}",
            resources::known_plurals()
        )
    })
}

/// One request as the server saw it, for assertions such as "a dry run sent no writes".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method, upper case (`GET`, `PATCH`, ...).
    pub method: String,
    /// URL path, e.g. `/api/v1/namespaces/a/secrets/s`.
    pub path: String,
    /// Raw query string without `?`; empty when there is none.
    pub query: String,
}

impl RecordedRequest {
    /// Whether the request could change state (anything but `GET`, `HEAD` and `OPTIONS`).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

/// A rule that makes matching requests fail with a `Status` of a chosen code, built up from
/// [`Fault::new`]; unset criteria match anything.
///
/// ```
/// # use testbed::fakekube::Fault;
/// // The next delete of deployment `web` in `team-a` fails with 500; later ones succeed.
/// let fault = Fault::new(500).method("DELETE").resource("deployments").namespace("team-a").name("web").times(1);
/// # drop(fault);
/// ```
#[derive(Debug, Clone)]
pub struct Fault {
    code: u16,
    method: Option<String>,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    remaining: Option<u32>,
}

impl Fault {
    /// A fault answering with HTTP `code` (and the matching `reason`, e.g. 500 InternalError).
    pub fn new(code: u16) -> Self {
        Self {
            code,
            method: None,
            resource: None,
            namespace: None,
            name: None,
            remaining: None,
        }
    }

    /// Only requests with this HTTP method (case-insensitive).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests for this kind, by plural (`"deployments"`).
    ///
    /// # Panics
    /// If the fake serves no such plural.
    pub fn resource(mut self, plural: &str) -> Self {
        known(plural);
        self.resource = Some(plural.to_string());
        self
    }

    /// Only requests in this namespace (all-namespaces lists do not match).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Only requests for the object with this name (collection requests do not match).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Only the next `n` matching requests; without this the fault stays until cleared.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    fn matches(
        &self,
        method: &str,
        resource: Option<&str>,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        let criterion = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == got)
        };
        self.remaining != Some(0)
            && criterion(&self.method, Some(method))
            && criterion(&self.resource, resource)
            && criterion(&self.namespace, namespace)
            && criterion(&self.name, name)
    }

    fn error(&self) -> ApiError {
        ApiError::new(
            self.code,
            format!("fakekube: injected fault ({})", self.code),
        )
    }

    /// Counts one use; true when the fault is used up and should be dropped.
    fn consume(&mut self) -> bool {
        match &mut self.remaining {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        }
    }
}

/// Names of the namespaces that exist when the server starts, as in a fresh cluster.
pub const BUILTIN_NAMESPACES: &[&str] = store::BUILTIN_NAMESPACES;
