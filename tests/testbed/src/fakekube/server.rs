//! The HTTP face of the fake: parses a request into a target (discovery, collection, object),
//! checks the test's switches (unavailable, injected faults), and hands the work to the store.
//!
//! One fallback handler serves every path, because the routes are data (the resource table), not
//! code: a new kind needs no new route.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::{self, RESOURCES, Resource};
use super::rollout::Rollouts;
use super::store::{ApiError, ListQuery, PatchType, Preconditions, Store};
use super::{Fault, RecordedRequest};

/// State shared by the server task and the [`super::FakeKube`] handle.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// The address the server listens on (for discovery's `serverAddressByClientCIDRs`).
    pub addr: SocketAddr,
}

/// Everything behind the one lock: objects, switches and the request log.
pub(crate) struct Inner {
    pub store: Store,
    pub rollouts: Rollouts,
    pub faults: Vec<Fault>,
    pub requests: Vec<RecordedRequest>,
    pub unavailable: bool,
}

impl Shared {
    pub fn new(addr: SocketAddr) -> Self {
        let inner = Inner {
            store: Store::new(),
            rollouts: Rollouts::default(),
            faults: Vec::new(),
            requests: Vec::new(),
            unavailable: false,
        };
        Self {
            inner: Mutex::new(inner),
            addr,
        }
    }

    /// Locks the state; a test that panicked while holding the lock leaves usable data behind, so
    /// poisoning is ignored rather than spread to every later request.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The router: every request goes to the one handler.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a request path names.
#[derive(Debug)]
enum Target {
    /// A fixed document: `/`, `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{g}/{v}`.
    Document(Value),
    /// A collection, in one namespace or (for namespaced kinds without one) across all of them.
    Collection {
        res: &'static Resource,
        namespace: Option<String>,
    },
    /// One object, or its `status` subresource.
    Object {
        res: &'static Resource,
        namespace: Option<String>,
        name: String,
        status: bool,
    },
}

impl Target {
    fn describe(&self) -> (Option<&'static Resource>, Option<&str>, Option<&str>) {
        match self {
            Target::Document(_) => (None, None, None),
            Target::Collection { res, namespace } => (Some(res), namespace.as_deref(), None),
            Target::Object {
                res,
                namespace,
                name,
                ..
            } => (Some(res), namespace.as_deref(), Some(name)),
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (code, value) = match respond(&shared, &method, &uri, &headers, &body) {
        Ok((code, value)) => (code, value),
        Err(e) => (e.code(), e.status_body()),
    };
    tracing::debug!(%method, %uri, code, "fakekube request");
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
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
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let mut inner = shared.lock();
    inner.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
    });
    if inner.unavailable {
        return Err(ApiError::new(
            503,
            "fakekube: the API server is unavailable (set_unavailable)",
        ));
    }
    let target = route(uri.path(), shared.addr)?;
    let (res, namespace, name) = target.describe();
    if let Some(i) = inner
        .faults
        .iter()
        .position(|f| f.matches(method.as_str(), res.map(|r| r.plural), namespace, name))
    {
        let fault = &mut inner.faults[i];
        let error = fault.error();
        if fault.consume() {
            inner.faults.remove(i);
        }
        return Err(error);
    }
    let query: HashMap<String, String> = Query::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::new(400, format!("invalid query string: {e}")))?;
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    if matches!(*method, Method::POST | Method::PUT) {
        check_json_content(headers)?;
    }
    let Inner {
        store, rollouts, ..
    } = &mut *inner;
    match (target, method.clone()) {
        (Target::Document(doc), Method::GET) => Ok((200, doc)),
        (Target::Collection { res, namespace }, Method::GET) => {
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return Err(ApiError::new(405, "fakekube does not serve watches"));
            }
            let names: Vec<(String, String)> = store
                .iter(res, namespace.as_deref())
                .map(|o| {
                    let meta = |f: &str| o["metadata"][f].as_str().unwrap_or_default().to_string();
                    (meta("namespace"), meta("name"))
                })
                .collect();
            for (ns, name) in names {
                observe_rollout(store, rollouts, res, Some(&ns), &name);
            }
            Ok((
                200,
                store.list(res, namespace.as_deref(), &list_query(&query))?,
            ))
        }
        (Target::Collection { res, namespace }, Method::POST)
            if namespace.is_some() || !res.namespaced =>
        {
            let created = store.create(
                res,
                namespace.as_deref(),
                json_body(body)?,
                super::store::Origin::Api,
                dry_run,
            )?;
            Ok((201, created))
        }
        (Target::Collection { res, namespace }, Method::DELETE)
            if namespace.is_some() || !res.namespaced =>
        {
            let dry_run = dry_run || delete_options(body)?.1;
            Ok((
                200,
                store.delete_collection(res, namespace.as_deref(), &list_query(&query), dry_run)?,
            ))
        }
        (
            Target::Object {
                res,
                namespace,
                name,
                ..
            },
            Method::GET,
        ) => {
            observe_rollout(store, rollouts, res, namespace.as_deref(), &name);
            store
                .get(res, namespace.as_deref(), &name)
                .map(|obj| (200, obj.clone()))
                .ok_or_else(|| ApiError::not_found(res, &name))
        }
        (
            Target::Object {
                res,
                namespace,
                name,
                status,
            },
            Method::PUT,
        ) => {
            let before = store.get(res, namespace.as_deref(), &name).cloned();
            let obj = store.replace(
                res,
                namespace.as_deref(),
                &name,
                json_body(body)?,
                status,
                dry_run,
            )?;
            if !dry_run {
                rollouts.written(res, before.as_ref(), &obj);
            }
            Ok((if before.is_some() { 200 } else { 201 }, obj))
        }
        (
            Target::Object {
                res,
                namespace,
                name,
                status,
            },
            Method::PATCH,
        ) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let patch_type = PatchType::from_content_type(content_type).ok_or_else(|| {
                ApiError::new(
                    415,
                    format!("the body of the request was in an unknown format: {content_type:?}"),
                )
            })?;
            let patch = if patch_type == PatchType::Apply {
                apply_body(body)?
            } else {
                json_body(body)?
            };
            let before = store.get(res, namespace.as_deref(), &name).cloned();
            let obj = store.patch(
                res,
                namespace.as_deref(),
                &name,
                patch_type,
                &patch,
                status,
                dry_run,
            )?;
            if !dry_run {
                rollouts.written(res, before.as_ref(), &obj);
            }
            Ok((if before.is_some() { 200 } else { 201 }, obj))
        }
        (
            Target::Object {
                res,
                namespace,
                name,
                status: false,
            },
            Method::DELETE,
        ) => {
            let (preconditions, body_dry_run) = delete_options(body)?;
            Ok((
                200,
                store.delete(
                    res,
                    namespace.as_deref(),
                    &name,
                    &preconditions,
                    dry_run || body_dry_run,
                )?,
            ))
        }
        (_, method) => Err(ApiError::new(
            405,
            format!(
                "the server does not allow method {method} on {}",
                uri.path()
            ),
        )),
    }
}

/// One read of a workload whose rollout the test drives: the stand-in controller writes the
/// status it would report now (through the store, like any status write).
fn observe_rollout(
    store: &mut Store,
    rollouts: &mut Rollouts,
    res: &'static Resource,
    namespace: Option<&str>,
    name: &str,
) {
    let Some(obj) = store.get(res, namespace, name) else {
        return;
    };
    if let Some(status) = rollouts.read(res, obj) {
        let mut updated = obj.clone();
        updated["status"] = status;
        if let Some(meta) = updated["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        if let Err(e) = store.replace(res, namespace, name, updated, true, false) {
            tracing::error!(error = %e, "fakekube: the rollout stand-in could not write a status");
        }
    }
}

fn list_query(query: &HashMap<String, String>) -> ListQuery {
    ListQuery {
        label_selector: query.get("labelSelector").cloned(),
        field_selector: query.get("fieldSelector").cloned(),
        limit: query.get("limit").and_then(|l| l.parse().ok()),
        continue_token: query.get("continue").cloned(),
    }
}

/// Refuses bodies in the binary encodings kubectl's typed commands prefer (protobuf, CBOR): the
/// fake speaks JSON only, and says so with the 415 the real server uses for unknown encodings.
fn check_json_content(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::new(
            415,
            format!("fakekube accepts JSON bodies only, not {content_type:?}"),
        ));
    }
    Ok(())
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, format!("the request body is not valid JSON: {e}")))
}

/// Server-side apply bodies: kube-rs sends JSON (which is YAML); kubectl may send YAML.
fn apply_body(body: &[u8]) -> Result<Value, ApiError> {
    json_body(body).or_else(|_| {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::new(400, "the apply body is not UTF-8"))?;
        serde_saphyr::from_str(text).map_err(|e| {
            ApiError::new(400, format!("the apply body is neither JSON nor YAML: {e}"))
        })
    })
}

/// The parts of a `DeleteOptions` body the fake honours: preconditions and `dryRun`.
/// `propagationPolicy` and `gracePeriodSeconds` are accepted and ignored (deletes are immediate).
fn delete_options(body: &[u8]) -> Result<(Preconditions, bool), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((Preconditions::default(), false));
    }
    let options = json_body(body)?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let preconditions = Preconditions {
        uid: options["preconditions"].get("uid").and_then(text),
        resource_version: options["preconditions"]
            .get("resourceVersion")
            .and_then(text),
    };
    let dry_run = options["dryRun"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok((preconditions, dry_run))
}

fn path_not_found() -> ApiError {
    ApiError::new(404, "the server could not find the requested resource")
}

/// Maps a URL path to its target.
fn route(path: &str, addr: SocketAddr) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segments.as_slice() {
        [] => return Ok(Target::Document(root_paths())),
        ["version"] => return Ok(Target::Document(version_info())),
        ["api"] => return Ok(Target::Document(api_versions(addr))),
        ["apis"] => return Ok(Target::Document(api_groups())),
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(path_not_found()),
    };
    if rest.is_empty() {
        return resource_list(group, version)
            .map(Target::Document)
            .ok_or_else(path_not_found);
    }
    // `namespaces/{ns}/{plural}...` when `{plural}` is a namespaced kind of this group/version;
    // otherwise the first segment is the plural (which covers `namespaces/{name}[/status]`).
    let scoped = match rest {
        ["namespaces", ns, plural, tail @ ..] => resources::by_path(group, version, plural)
            .filter(|r| r.namespaced)
            .map(|r| (r, Some(ns.to_string()), tail)),
        _ => None,
    };
    let (res, namespace, tail) = match scoped {
        Some(found) => found,
        None => {
            let res = resources::by_path(group, version, rest[0]).ok_or_else(path_not_found)?;
            (res, None, &rest[1..])
        }
    };
    let needs_namespace = res.namespaced && namespace.is_none();
    match tail {
        [] => Ok(Target::Collection { res, namespace }),
        [name] if !needs_namespace => Ok(Target::Object {
            res,
            namespace,
            name: name.to_string(),
            status: false,
        }),
        [name, "status"] if !needs_namespace && res.status_subresource => Ok(Target::Object {
            res,
            namespace,
            name: name.to_string(),
            status: true,
        }),
        _ => Err(path_not_found()),
    }
}

fn root_paths() -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
        "/version".to_string(),
    ];
    for (group, version) in group_versions() {
        paths.push(format!("/apis/{group}/{version}"));
    }
    json!({ "paths": paths })
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-fakekube",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}],
    })
}

/// Named groups and their versions, in table order, without repeats.
fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

fn api_groups() -> Value {
    let groups: Vec<Value> = group_versions()
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.kind.to_lowercase(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update"],
            "shortNames": r.short_names,
            "categories": if r.in_all { vec!["all"] } else { vec![] },
        }));
        if r.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    (!resources.is_empty()).then(|| {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Result<Target, ApiError> {
        route(path, "127.0.0.1:1".parse().unwrap())
    }

    #[test]
    fn routes_cover_namespaced_cluster_and_all_namespace_forms() {
        let ok = |path: &str| format!("{:?}", target(path).unwrap());
        assert!(
            ok("/api/v1/namespaces").contains("Collection")
                && ok("/api/v1/namespaces").contains("namespaces")
        );
        assert!(ok("/api/v1/namespaces/a").contains("Object"));
        assert!(ok("/api/v1/namespaces/a/status").contains("status: true"));
        assert!(
            ok("/api/v1/namespaces/a/secrets").contains("\"secrets\"")
                && ok("/api/v1/namespaces/a/secrets").contains("Some(\"a\")")
        );
        assert!(ok("/api/v1/namespaces/a/secrets/s").contains("name: \"s\""));
        assert!(ok("/api/v1/secrets").contains("namespace: None"));
        assert!(ok("/apis/apps/v1/namespaces/a/deployments/d/status").contains("status: true"));
        assert!(ok("/apis/coordination.k8s.io/v1/leases").contains("Lease"));
        assert!(ok("/apis").contains("APIGroupList"));
        assert!(ok("/apis/apps/v1").contains("APIResourceList"));
        for missing in [
            "/api/v1/secrets/s",
            "/api/v1/namespaces/a/widgets",
            "/apis/apps/v2/deployments",
            "/api/v1/namespaces/a/configmaps/c/status",
            "/api/v2",
            "/healthz",
        ] {
            assert_eq!(target(missing).unwrap_err().code(), 404, "{missing}");
        }
    }

    #[test]
    fn discovery_lists_every_kind_once() {
        let groups = api_groups();
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "batch",
                "networking.k8s.io",
                "coordination.k8s.io",
                "external-secrets.io"
            ]
        );
        let mut listed = 0;
        for (group, version) in std::iter::once(("", "v1")).chain(group_versions()) {
            let list = resource_list(group, version).unwrap();
            listed += list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| !r["name"].as_str().unwrap().contains('/'))
                .count();
        }
        assert_eq!(listed, RESOURCES.len());
    }
}
