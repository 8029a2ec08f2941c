//! The Kubernetes provider: namespaces and TTL-annotated objects as [`Resource`]s.
//!
//! Label values cannot hold timestamps or emails, so the TTL metadata lives in **annotations
//! under a configurable prefix** (default `ttl.governance.io/`): the annotation
//! `ttl.governance.io/owner: a@b.io` is the tag `owner`. An object's `creationTimestamp` is the
//! default `created_at` ([`Resource::created_fallback`]).
//!
//! What is listed:
//! - every namespace matching [`KubeSource::namespace_selector`], as `k8s:<namespace>`, whether
//!   annotated or not (an unannotated namespace becomes a tag violation unless the whitelist
//!   protects it — the whitelist is how `kube-system` and friends are spared in the plan);
//! - in those namespaces, objects of the configured kinds matching
//!   [`KubeSource::object_selector`] that carry **at least one annotation under the prefix**, as
//!   `k8s:<deployment|service|configmap>/<namespace>/<name>`. Objects without one are not
//!   TTL-managed: they go with their namespace. A namespace's `wait_for` lists its managed objects
//!   so that they are deleted (and audited) before it.
//!
//! Safety, in [`KubeProvider::remove`], whatever the caller decided:
//! - `default`, `kube-system`, `kube-public` and `kube-node-lease` are never deleted
//!   ([`PROTECTED_NAMESPACES`]); objects inside the `kube-*` system namespaces are never deleted
//!   either. This duplicates the whitelist on purpose: a whitelist file with a typo must not be
//!   able to take the cluster's own namespaces down.
//! - The object is re-read just before the delete, and the delete is refused (not retryable)
//!   unless its *current* annotations still make it eligible (see [`KubeProvider::with_policy`]):
//!   an owner who re-annotates `environment: prod` between plan and delete wins. The delete then
//!   carries the re-read `uid` and `resourceVersion` as preconditions, so a change after the
//!   re-read makes the API answer 409 (retryable: the next attempt re-reads and re-checks).
//! - Deleting a namespace deletes everything in it, so before deleting one the provider also
//!   re-reads the objects of the configured kinds in it (all of them, whatever the object
//!   selector says) and refuses if any of them carries annotations under the prefix that do not
//!   make it eligible: a `auto-teardown: "false"` deployment inside an expired namespace keeps the
//!   namespace. Kinds that are not configured are not checked.
//!
//! Deletes use **background propagation**: the object goes at once and the garbage collector
//! removes what it owns (a deployment's replica sets and pods) afterwards. Foreground propagation
//! would keep the deployment until every pod has terminated, so one pod stuck on a finalizer would
//! hold the namespace (and the run) back for nothing: the namespace delete removes leftovers
//! anyway. A namespace delete is asynchronous upstream: the API answers with the namespace in
//! phase `Terminating`, which [`KubeProvider::remove`] reports as [`Removal::Pending`].

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
};
use kube::core::ObjectMeta;
use serde::Deserialize;
use serde_json::json;

use crate::inventory::{CostBasis, Resource, Scope};
use crate::provider::{ProviderError, Removal, State};
use crate::tags::{TagKeys, TagPolicy};

/// Namespaces [`KubeProvider::remove`] refuses to delete whatever the caller says: the ones every
/// cluster is built on. The whitelist protects them too; this is the second lock on that door.
pub const PROTECTED_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Page size of every list call: big clusters are read in pages, never in one answer.
const PAGE_SIZE: u32 = 500;

/// Which part of a Kubernetes cluster the job reads, as `job.sources.kubernetes` in the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSource {
    /// Annotations whose key starts with this prefix are the TTL tags, with the prefix removed
    /// (default `ttl.governance.io/`). Must end with `/`.
    pub annotation_prefix: String,
    /// Label selector choosing the namespaces to consider (default empty: all namespaces).
    pub namespace_selector: String,
    /// Registry kind names of the namespaced objects to consider, among `k8s-deployment`,
    /// `k8s-service` and `k8s-configmap` (default all three).
    pub kinds: Vec<String>,
    /// Label selector for namespaced objects (default empty: all objects).
    pub object_selector: String,
}

impl Default for KubeSource {
    fn default() -> Self {
        KubeSource {
            annotation_prefix: "ttl.governance.io/".to_string(),
            namespace_selector: String::new(),
            kinds: ObjectKind::ALL
                .iter()
                .map(|k| k.registry_name().to_string())
                .collect(),
            object_selector: String::new(),
        }
    }
}

impl KubeSource {
    /// Checks what the types cannot: a usable prefix and known kinds. Every problem comes back as
    /// `field: message` (relative to this section; the caller prefixes `job.sources.kubernetes.`).
    /// Label selectors are checked by the API server on the first list, before any write.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let prefix = &self.annotation_prefix;
        if prefix.len() < 2 || !prefix.ends_with('/') || prefix[..prefix.len() - 1].contains('/') {
            problems.push(format!(
                "annotation_prefix: expected a DNS subdomain followed by `/` such as \"ttl.governance.io/\", got {prefix:?}"
            ));
        }
        for (i, k) in self.kinds.iter().enumerate() {
            if ObjectKind::from_registry(k).is_none() {
                problems.push(format!(
                    "kinds[{i}]: unknown kind {k:?}; expected one of {}",
                    ObjectKind::ALL.map(|k| k.registry_name()).join(", ")
                ));
            }
        }
        problems
    }
}

/// The namespaced kinds the provider reads and deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ObjectKind {
    Deployment,
    Service,
    ConfigMap,
}

impl ObjectKind {
    const ALL: [ObjectKind; 3] = [
        ObjectKind::Deployment,
        ObjectKind::Service,
        ObjectKind::ConfigMap,
    ];

    fn registry_name(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "k8s-deployment",
            ObjectKind::Service => "k8s-service",
            ObjectKind::ConfigMap => "k8s-configmap",
        }
    }

    /// The segment in ids: `k8s:<segment>/<namespace>/<name>`.
    fn id_segment(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "deployment",
            ObjectKind::Service => "service",
            ObjectKind::ConfigMap => "configmap",
        }
    }

    fn from_registry(name: &str) -> Option<ObjectKind> {
        ObjectKind::ALL
            .into_iter()
            .find(|k| k.registry_name() == name)
    }

    fn api_resource(self) -> ApiResource {
        match self {
            ObjectKind::Deployment => ApiResource::erase::<Deployment>(&()),
            ObjectKind::Service => ApiResource::erase::<Service>(&()),
            ObjectKind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
        }
    }
}

/// What a [`Resource`] of this provider points at.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Namespace(&'a str),
    Object {
        kind: ObjectKind,
        namespace: &'a str,
        name: &'a str,
    },
}

/// What makes an object still eligible at delete time, taken from the tag policy.
#[derive(Debug, Clone)]
struct Guard {
    keys: TagKeys,
    allowed_environments: Vec<String>,
    prod_environments: Vec<String>,
    allowed_data_classes: Vec<String>,
    restricted_data_classes: Vec<String>,
}

impl Guard {
    fn new(policy: &TagPolicy) -> Guard {
        Guard {
            keys: policy.keys.clone(),
            allowed_environments: policy.allowed_environments.clone(),
            prod_environments: policy.prod_environments.clone(),
            allowed_data_classes: policy.allowed_data_classes.clone(),
            restricted_data_classes: policy.restricted_data_classes.clone(),
        }
    }

    /// Why these tags (annotations with the prefix removed) forbid deletion now; `None` when
    /// they still say non-production, not restricted, auto-teardown exactly `true`. Anything
    /// missing or unexpected forbids: the planner only deletes resources with valid tags, so a
    /// change since the plan is a reason to stop, not to guess.
    fn refusal(&self, tags: &BTreeMap<String, String>, prefix: &str) -> Option<String> {
        let k = &self.keys;
        let env = tags.get(&k.environment);
        match env {
            None => {
                return Some(format!(
                    "annotation {prefix}{} is now missing",
                    k.environment
                ));
            }
            Some(e) if self.prod_environments.contains(e) => {
                return Some(format!(
                    "annotation {prefix}{} is now {e:?} (production)",
                    k.environment
                ));
            }
            Some(e) if !self.allowed_environments.contains(e) => {
                return Some(format!(
                    "annotation {prefix}{} is now {e:?} (not an accepted value)",
                    k.environment
                ));
            }
            Some(_) => {}
        }
        match tags.get(&k.data_class) {
            None => {
                return Some(format!(
                    "annotation {prefix}{} is now missing",
                    k.data_class
                ));
            }
            Some(c) if self.restricted_data_classes.contains(c) => {
                return Some(format!(
                    "annotation {prefix}{} is now {c:?} (never torn down)",
                    k.data_class
                ));
            }
            Some(c) if !self.allowed_data_classes.contains(c) => {
                return Some(format!(
                    "annotation {prefix}{} is now {c:?} (not an accepted value)",
                    k.data_class
                ));
            }
            Some(_) => {}
        }
        match tags.get(&k.auto_teardown).map(String::as_str) {
            Some("true") => None,
            Some(v) => Some(format!(
                "annotation {prefix}{} is now {v:?}, not \"true\"",
                k.auto_teardown
            )),
            None => Some(format!(
                "annotation {prefix}{} is now missing",
                k.auto_teardown
            )),
        }
    }
}

/// Reads and tears down namespaces and TTL-annotated objects of one cluster.
#[derive(Clone)]
pub struct KubeProvider {
    client: kube::Client,
    cluster: String,
    prefix: String,
    namespace_selector: String,
    object_selector: String,
    kinds: Vec<ObjectKind>,
    guard: Guard,
}

impl std::fmt::Debug for KubeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeProvider")
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("namespace_selector", &self.namespace_selector)
            .field("object_selector", &self.object_selector)
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl KubeProvider {
    /// A provider for the cluster the client talks to, named `cluster` in scopes and caps.
    /// Unknown kind names in `source.kinds` are ignored here: [`KubeSource::validate`] reports
    /// them when the config is loaded. The delete-time guard uses the default tag policy until
    /// [`Self::with_policy`] gives the configured one.
    pub fn new(client: kube::Client, cluster: &str, source: &KubeSource) -> Self {
        let mut kinds: Vec<ObjectKind> = Vec::new();
        for k in source
            .kinds
            .iter()
            .filter_map(|k| ObjectKind::from_registry(k))
        {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        KubeProvider {
            client,
            cluster: cluster.to_string(),
            prefix: source.annotation_prefix.clone(),
            namespace_selector: source.namespace_selector.clone(),
            object_selector: source.object_selector.clone(),
            kinds,
            guard: Guard::new(&TagPolicy::default()),
        }
    }

    /// Uses the configured tag policy for the delete-time re-check: its tag names, production
    /// environments and restricted data classes. An object is deleted only if its current
    /// annotations name an accepted non-production environment, an accepted non-restricted data
    /// class and `auto-teardown: "true"`.
    pub fn with_policy(mut self, policy: &TagPolicy) -> Self {
        self.guard = Guard::new(policy);
        self
    }

    /// Every selected namespace, and every TTL-annotated object of the configured kinds in them,
    /// read in pages of 500. Namespaces in phase `Terminating` are listed with that state
    /// (deleting them again is harmless).
    pub async fn list(&self) -> Result<Vec<Resource>, ProviderError> {
        let scope_name = format!("k8s:{}", self.cluster);
        let ns_api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ApiResource::erase::<Namespace>(&()));
        let namespaces = list_all(&ns_api, &self.namespace_selector)
            .await
            .map_err(|e| api_error("list namespaces", &scope_name, e))?;

        // One cluster-wide paged list per kind rather than one per namespace and kind: three
        // calls whatever the number of namespaces. Objects outside the selected namespaces are
        // dropped here.
        let mut by_namespace: HashMap<String, Vec<Resource>> = HashMap::new();
        let ns_labels: HashMap<String, BTreeMap<String, String>> = namespaces
            .iter()
            .filter_map(|ns| {
                Some((
                    ns.metadata.name.clone()?,
                    ns.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect();
        for &kind in &self.kinds {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.api_resource());
            let objects = list_all(&api, &self.object_selector).await.map_err(|e| {
                api_error(
                    &format!("list {}", kind.api_resource().plural),
                    &scope_name,
                    e,
                )
            })?;
            for obj in objects {
                let (Some(namespace), Some(name)) =
                    (obj.metadata.namespace.clone(), obj.metadata.name.clone())
                else {
                    continue;
                };
                let Some(labels_of_ns) = ns_labels.get(&namespace) else {
                    continue;
                };
                let tags = prefixed(&obj.metadata, &self.prefix);
                if tags.is_empty() {
                    continue; // not TTL-managed: it goes with its namespace
                }
                let resource = Resource {
                    id: object_id(kind, &namespace, &name),
                    kind: kind.registry_name(),
                    name,
                    scope: self.scope(),
                    namespace: Some(namespace.clone()),
                    tags,
                    labels: obj.metadata.labels.clone().unwrap_or_default(),
                    namespace_labels: labels_of_ns.clone(),
                    created_fallback: obj.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    state: Some(state_name(&obj)),
                    wait_for: Vec::new(),
                    cost: CostBasis::default(),
                    tags_unreadable: None,
                };
                by_namespace.entry(namespace).or_default().push(resource);
            }
        }

        let mut out = Vec::new();
        for ns in &namespaces {
            let Some(name) = ns.metadata.name.clone() else {
                continue;
            };
            let mut objects = by_namespace.remove(&name).unwrap_or_default();
            objects.sort_by(|a, b| a.id.cmp(&b.id));
            let labels = ns.metadata.labels.clone().unwrap_or_default();
            out.push(Resource {
                id: format!("k8s:{name}"),
                kind: "k8s-namespace",
                name: name.clone(),
                scope: self.scope(),
                namespace: Some(name),
                tags: prefixed(&ns.metadata, &self.prefix),
                labels: labels.clone(),
                namespace_labels: labels,
                created_fallback: ns.metadata.creation_timestamp.as_ref().map(|t| t.0),
                state: Some(state_name(ns)),
                wait_for: objects.iter().map(|o| o.id.clone()).collect(),
                cost: CostBasis::default(),
                tags_unreadable: None,
            });
            out.extend(objects);
        }
        Ok(out)
    }

    /// The resource with this id (`k8s:<namespace>` or `k8s:<kind>/<namespace>/<name>`) as
    /// [`list`](Self::list) describes it, or `None` when it is not listed (absent, outside the
    /// selectors, or an object without TTL annotations). Used by the snooze service.
    ///
    /// A full [`list`](Self::list) then a find: O(inventory) per request, fine for the snooze
    /// service's traffic.
    pub async fn get(&self, id: &str) -> Result<Option<Resource>, ProviderError> {
        Ok(self.list().await?.into_iter().find(|r| r.id == id))
    }

    /// Writes `tags` as annotations under the prefix, with one JSON merge patch of
    /// `metadata.annotations` (other annotations are left alone). No tags, no request.
    pub async fn set_tags(
        &self,
        r: &Resource,
        tags: &[(String, String)],
    ) -> Result<(), ProviderError> {
        let target = self.target(r, "tag")?;
        if tags.is_empty() {
            return Ok(());
        }
        let annotations: serde_json::Map<String, serde_json::Value> = tags
            .iter()
            .map(|(k, v)| (format!("{}{k}", self.prefix), json!(v)))
            .collect();
        let patch = json!({"metadata": {"annotations": annotations}});
        let (api, name) = self.api_for(target);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| api_error("tag", &r.id, e))?;
        Ok(())
    }

    /// Deletes the resource, after the checks described in the module docs: protected
    /// namespaces, a re-read of the current annotations (and, for a namespace, of the objects in
    /// it), then a delete with the re-read `uid`/`resourceVersion` as preconditions and background
    /// propagation. Absent (404) → [`Removal::Done`]; a namespace the API still shows →
    /// [`Removal::Pending`] `Terminating`; an object kept by finalizers → `Pending` `deleting`.
    pub async fn remove(&self, r: &Resource) -> Result<Removal, ProviderError> {
        let target = self.target(r, "delete")?;
        let refuse = |message: String| ProviderError {
            action: "delete".to_string(),
            resource: r.id.clone(),
            message,
            retryable: false,
        };
        match target {
            Target::Namespace(ns) if PROTECTED_NAMESPACES.contains(&ns) => {
                return Err(refuse(format!(
                    "refused: namespace {ns} is a cluster namespace and is never deleted (built-in protection, independent of the whitelist)"
                )));
            }
            Target::Object { namespace, .. }
                if namespace.starts_with("kube-") && PROTECTED_NAMESPACES.contains(&namespace) =>
            {
                return Err(refuse(format!(
                    "refused: objects in the system namespace {namespace} are never deleted (built-in protection, independent of the whitelist)"
                )));
            }
            _ => {}
        }

        let (api, name) = self.api_for(target);
        let Some(current) = api
            .get_opt(name)
            .await
            .map_err(|e| api_error("re-read before delete", &r.id, e))?
        else {
            return Ok(Removal::Done);
        };
        let tags = prefixed(&current.metadata, &self.prefix);
        if let Some(why) = self.guard.refusal(&tags, &self.prefix) {
            return Err(refuse(format!(
                "refused: {why} (re-read just before the delete)"
            )));
        }
        if let Target::Namespace(ns) = target {
            self.check_contents(ns, &r.id).await?;
        }

        let params = DeleteParams::background().preconditions(Preconditions {
            uid: current.metadata.uid.clone(),
            resource_version: current.metadata.resource_version.clone(),
        });
        match api.delete(name, &params).await {
            // `Either::left()` is the object the API still shows; a `Status` means it is gone.
            Ok(answer) => Ok(match (target, answer.left()) {
                (_, None) => Removal::Done,
                (Target::Namespace(_), Some(_)) => Removal::Pending {
                    state: "Terminating".to_string(),
                },
                (Target::Object { .. }, Some(obj)) => {
                    let kept = obj.metadata.deletion_timestamp.is_some()
                        && obj
                            .metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|f| !f.is_empty());
                    if kept {
                        Removal::Pending {
                            state: "deleting".to_string(),
                        }
                    } else {
                        Removal::Done
                    }
                }
            }),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Removal::Done),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(ProviderError {
                action: "delete".to_string(),
                resource: r.id.clone(),
                message: format!(
                    "changed since it was re-read, not deleted; the next attempt re-reads and re-checks it (409 {}: {})",
                    s.reason, s.message
                ),
                retryable: true,
            }),
            Err(e) => Err(api_error("delete", &r.id, e)),
        }
    }

    /// The resource's current state: absent (404) → [`State::Gone`], else
    /// [`State::Present`] with the namespace phase, `deleting` for an object being deleted, or
    /// `present`.
    pub async fn state(&self, r: &Resource) -> Result<State, ProviderError> {
        let target = self.target(r, "read")?;
        let (api, name) = self.api_for(target);
        match api
            .get_opt(name)
            .await
            .map_err(|e| api_error("read", &r.id, e))?
        {
            None => Ok(State::Gone),
            Some(obj) => Ok(State::Present(state_name(&obj))),
        }
    }

    fn scope(&self) -> Scope {
        Scope::Kubernetes {
            cluster: self.cluster.clone(),
        }
    }

    /// Refuses to delete namespace `ns` when an object in it carries TTL annotations that do not
    /// make it eligible: deleting the namespace would delete that object too.
    async fn check_contents(&self, ns: &str, id: &str) -> Result<(), ProviderError> {
        for &kind in &self.kinds {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &kind.api_resource());
            let objects = list_all(&api, "")
                .await
                .map_err(|e| api_error("re-read contents before delete", id, e))?;
            for obj in objects {
                let tags = prefixed(&obj.metadata, &self.prefix);
                if tags.is_empty() {
                    continue;
                }
                if let Some(why) = self.guard.refusal(&tags, &self.prefix) {
                    let name = obj.metadata.name.as_deref().unwrap_or("?");
                    return Err(ProviderError {
                        action: "delete".to_string(),
                        resource: id.to_string(),
                        message: format!(
                            "refused: it contains {}, whose {why}; deleting the namespace would delete it",
                            object_id(kind, ns, name)
                        ),
                        retryable: false,
                    });
                }
            }
        }
        Ok(())
    }

    /// Parses a resource of this provider: right cluster, known kind, consistent id.
    fn target<'r>(&self, r: &'r Resource, action: &str) -> Result<Target<'r>, ProviderError> {
        let fail = |message: String| ProviderError {
            action: action.to_string(),
            resource: r.id.clone(),
            message,
            retryable: false,
        };
        match &r.scope {
            Scope::Kubernetes { cluster } if *cluster == self.cluster => {}
            other => {
                return Err(fail(format!(
                    "belongs to {}, not to this provider's cluster {}",
                    other.cap_key(),
                    self.cluster
                )));
            }
        }
        let target = if r.kind == "k8s-namespace" {
            Target::Namespace(&r.name)
        } else {
            let kind = ObjectKind::from_registry(r.kind)
                .ok_or_else(|| fail(format!("kind {} is not a Kubernetes object kind", r.kind)))?;
            let namespace = r
                .namespace
                .as_deref()
                .ok_or_else(|| fail("a namespaced object without a namespace".to_string()))?;
            Target::Object {
                kind,
                namespace,
                name: &r.name,
            }
        };
        // The id is what was planned, audited and reported: act only if it names the same object.
        let expected = match target {
            Target::Namespace(ns) => format!("k8s:{ns}"),
            Target::Object {
                kind,
                namespace,
                name,
            } => object_id(kind, namespace, name),
        };
        if r.id != expected {
            return Err(fail(format!(
                "id does not match its kind, namespace and name (expected {expected})"
            )));
        }
        Ok(target)
    }

    fn api_for<'t>(&self, target: Target<'t>) -> (Api<DynamicObject>, &'t str) {
        match target {
            Target::Namespace(ns) => (
                Api::all_with(self.client.clone(), &ApiResource::erase::<Namespace>(&())),
                ns,
            ),
            Target::Object {
                kind,
                namespace,
                name,
            } => (
                Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource()),
                name,
            ),
        }
    }
}

fn object_id(kind: ObjectKind, namespace: &str, name: &str) -> String {
    format!("k8s:{}/{namespace}/{name}", kind.id_segment())
}

/// Annotations under `prefix`, with the prefix removed (an annotation that is exactly the prefix
/// has no tag name and is ignored).
fn prefixed(meta: &ObjectMeta, prefix: &str) -> BTreeMap<String, String> {
    meta.annotations
        .iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix(prefix)
                .filter(|t| !t.is_empty())
                .map(|t| (t.to_string(), v.clone()))
        })
        .collect()
}

/// `status.phase` when the object has one (namespaces), `deleting` when a deletion is under way,
/// else `present`.
fn state_name(obj: &DynamicObject) -> String {
    if let Some(phase) = obj.data["status"]["phase"].as_str() {
        return phase.to_string();
    }
    if obj.metadata.deletion_timestamp.is_some() {
        return "deleting".to_string();
    }
    "present".to_string()
}

/// Every object matching `selector`, following continue tokens.
async fn list_all(
    api: &Api<DynamicObject>,
    selector: &str,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if !selector.is_empty() {
            params = params.labels(selector);
        }
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = api.list(&params).await?;
        out.extend(page.items);
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(out),
        }
    }
}

/// A kube error as a [`ProviderError`]: the API's code, reason and message; retryable for
/// conflicts (409), throttling (429), server errors (5xx) and transport failures.
fn api_error(action: &str, resource: &str, e: kube::Error) -> ProviderError {
    let (message, retryable) = match &e {
        kube::Error::Api(s) => (
            format!("{} {}: {}", s.code, s.reason, s.message),
            s.code == 409 || s.code == 429 || s.code >= 500,
        ),
        kube::Error::HyperError(_) | kube::Error::Service(_) => (format!("transport: {e}"), true),
        other => (other.to_string(), false),
    };
    ProviderError {
        action: action.to_string(),
        resource: resource.to_string(),
        message,
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_defaults_and_unknown_fields() {
        let s: KubeSource = serde_json::from_value(json!({"namespace_selector": "team=a"}))
            .expect("partial source");
        assert_eq!(s.annotation_prefix, "ttl.governance.io/");
        assert_eq!(s.namespace_selector, "team=a");
        assert_eq!(s.kinds, ["k8s-deployment", "k8s-service", "k8s-configmap"]);
        assert_eq!(s.object_selector, "");
        let e = serde_json::from_value::<KubeSource>(json!({"selector": "x"}))
            .expect_err("unknown field");
        assert!(e.to_string().contains("selector"), "{e}");
    }

    #[test]
    fn prefixed_strips_the_prefix_and_ignores_the_rest() {
        let meta = ObjectMeta {
            annotations: Some(
                [
                    ("ttl.governance.io/owner", "a@b.io"),
                    ("ttl.governance.io/", "no name"),
                    ("other.io/owner", "x"),
                    ("ttl.governance.io.evil/ttl", "1d"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            ..ObjectMeta::default()
        };
        let tags = prefixed(&meta, "ttl.governance.io/");
        assert_eq!(tags.len(), 1, "{tags:?}");
        assert_eq!(tags["owner"], "a@b.io");
    }

    #[test]
    fn guard_allows_only_eligible_annotations() {
        let guard = Guard::new(&TagPolicy::default());
        let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = [
            ("environment", "dev"),
            ("data-class", "internal"),
            ("auto-teardown", "true"),
        ];
        assert_eq!(guard.refusal(&tags(&ok), "p/"), None);
        for (key, value, says) in [
            ("environment", "prod", "production"),
            ("environment", "Dev", "not an accepted value"),
            ("data-class", "restricted", "never torn down"),
            ("auto-teardown", "TRUE", "not \"true\""),
        ] {
            let mut t = tags(&ok);
            t.insert(key.to_string(), value.to_string());
            let why = guard.refusal(&t, "p/").expect("refused");
            assert!(
                why.contains(&format!("p/{key}")) && why.contains(says),
                "{why}"
            );
        }
        for key in ["environment", "data-class", "auto-teardown"] {
            let mut t = tags(&ok);
            t.remove(key);
            let why = guard.refusal(&t, "p/").expect("refused");
            assert!(why.contains("missing"), "{why}");
        }
    }
}
