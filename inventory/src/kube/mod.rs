//! One Kubernetes cluster: namespaces and TTL-annotated objects as [`Resource`]s, through the
//! dynamic API, for every Kubernetes kind of the registry.
//!
//! Label values cannot hold timestamps or emails, so the TTL metadata lives in **annotations
//! under a configurable prefix** (default `ttl.governance.io/`): the annotation
//! `ttl.governance.io/owner: a@b.io` is the tag `owner`. An object's `creationTimestamp` is the
//! default `created_at` ([`Resource::created_fallback`]).
//!
//! What is listed:
//! - every namespace matching [`KubeSource::namespace_selector`], as `k8s:<namespace>`, whether
//!   annotated or not;
//! - in those namespaces, objects of the configured kinds matching
//!   [`KubeSource::object_selector`] that carry **at least one annotation under the prefix**, as
//!   `k8s:<segment>/<namespace>/<name>`. Objects without one are not TTL-managed: they go with
//!   their namespace, which waits for its managed objects (so they are deleted, and audited,
//!   first).
//!
//! [`KubeScope::get`] reads one resource by id with two calls (its namespace, selected by both
//! the label selector and `metadata.name`, and the object the same way), never a listing.
//!
//! Safety, in [`KubeScope::remove`], whatever the caller decided:
//! - `default`, `kube-system`, `kube-public` and `kube-node-lease` are never deleted
//!   ([`PROTECTED_NAMESPACES`]), nor anything inside the `kube-*` ones. This duplicates the
//!   whitelist on purpose: a whitelist file with a typo must not be able to take the cluster's
//!   own namespaces down;
//! - the object is re-read just before the delete and the caller's [`Guard`] decides on its
//!   current annotations; the delete then carries the re-read `uid` and `resourceVersion` as
//!   preconditions, so a change after the re-read makes the API answer 409 (retryable);
//! - deleting a namespace deletes everything in it, so the objects of the configured kinds in it
//!   are re-read too (all of them, whatever the object selector says) and any whose annotations
//!   the guard refuses keeps the namespace.
//!
//! Deletes use **background propagation**: the object goes at once and the garbage collector
//! removes what it owns afterwards; a namespace delete answers with the namespace `Terminating`
//! ([`Removal::Pending`]).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
};
use kube::core::ObjectMeta;
use serde::Deserialize;
use serde_json::json;

use crate::error::ProviderError;
use crate::kind::{Current, Guard, Kind, KubeKind, Removal, State};
use crate::resource::{Ref, Relation, Resource, Scope};

/// Namespaces [`KubeScope::remove`] refuses to delete whatever the caller says: the ones every
/// cluster is built on. The whitelist protects them too; this is the second lock on that door.
pub const PROTECTED_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Page size of every list call: big clusters are read in pages, never in one answer.
const PAGE_SIZE: u32 = 500;

/// Which part of a Kubernetes cluster is read (`job.sources.kubernetes` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSource {
    /// Annotations whose key starts with this prefix are the TTL tags, with the prefix removed
    /// (default `ttl.governance.io/`). Must end with `/`.
    pub annotation_prefix: String,
    /// Label selector choosing the namespaces to consider (default empty: all namespaces).
    pub namespace_selector: String,
    /// Registry names of the namespaced kinds to consider (default: every namespaced
    /// Kubernetes kind of the registry).
    pub kinds: Vec<String>,
    /// Label selector for namespaced objects (default empty: all objects).
    pub object_selector: String,
}

impl Default for KubeSource {
    fn default() -> Self {
        KubeSource {
            annotation_prefix: "ttl.governance.io/".to_string(),
            namespace_selector: String::new(),
            kinds: object_kinds().map(|(k, _)| k.name().to_string()).collect(),
            object_selector: String::new(),
        }
    }
}

impl KubeSource {
    /// Checks what the types cannot: a usable prefix and known kinds. Every problem comes back as
    /// `field: message` (relative to this section; the caller prefixes its path). Label selectors
    /// are checked by the API server on the first list, before any write.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let prefix = &self.annotation_prefix;
        if prefix.len() < 2 || !prefix.ends_with('/') || prefix[..prefix.len() - 1].contains('/') {
            problems.push(format!(
                "annotation_prefix: expected a DNS subdomain followed by `/` such as \"ttl.governance.io/\", got {prefix:?}"
            ));
        }
        for (i, k) in self.kinds.iter().enumerate() {
            if !object_kinds().any(|(kind, _)| kind.name() == k) {
                problems.push(format!(
                    "kinds[{i}]: unknown kind {k:?}; expected one of {}",
                    object_kinds()
                        .map(|(k, _)| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        problems
    }
}

/// The registry's namespaced Kubernetes kinds.
fn object_kinds() -> impl Iterator<Item = (&'static dyn Kind, &'static dyn KubeKind)> {
    crate::kinds::KINDS
        .iter()
        .copied()
        .filter_map(|k| k.kube().map(|kk| (k, kk)))
        .filter(|(_, kk)| kk.id_segment().is_some())
}

/// The registry's namespace kind.
fn namespace_kind() -> &'static dyn Kind {
    crate::kinds::KINDS
        .iter()
        .copied()
        .find(|k| k.kube().is_some_and(|kk| kk.id_segment().is_none()))
        .expect("the registry has a namespace kind (a registry test checks it)")
}

/// What a [`Resource`] of this scope points at.
#[derive(Clone, Copy)]
enum Target<'a> {
    Namespace(&'a str),
    Object {
        kind: &'static dyn KubeKind,
        namespace: &'a str,
        name: &'a str,
    },
}

/// Reads and tears down namespaces and TTL-annotated objects of one cluster.
#[derive(Clone)]
pub struct KubeScope {
    client: kube::Client,
    cluster: String,
    prefix: String,
    namespace_selector: String,
    object_selector: String,
    kinds: Vec<(&'static dyn Kind, &'static dyn KubeKind)>,
}

impl std::fmt::Debug for KubeScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeScope")
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("namespace_selector", &self.namespace_selector)
            .field("object_selector", &self.object_selector)
            .field(
                "kinds",
                &self.kinds.iter().map(|(k, _)| k.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl KubeSource {
    /// The namespaced kinds a scope of this source lists: those of `kinds` the registry knows.
    fn object_kinds(&self) -> impl Iterator<Item = (&'static dyn Kind, &'static dyn KubeKind)> {
        object_kinds().filter(|(k, _)| self.kinds.iter().any(|n| n == k.name()))
    }

    /// Registry names of every kind a scope of this source lists: namespaces, and the
    /// namespaced kinds of `kinds`.
    pub fn listed_kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(namespace_kind().name()).chain(self.object_kinds().map(|(k, _)| k.name()))
    }
}

impl KubeScope {
    /// A scope for the cluster the client talks to, named `cluster` in scopes and caps. Unknown
    /// kind names in `source.kinds` are ignored here: [`KubeSource::validate`] reports them when
    /// the config is loaded.
    pub fn new(client: kube::Client, cluster: &str, source: &KubeSource) -> Self {
        let kinds = source.object_kinds().collect();
        KubeScope {
            client,
            cluster: cluster.to_string(),
            prefix: source.annotation_prefix.clone(),
            namespace_selector: source.namespace_selector.clone(),
            object_selector: source.object_selector.clone(),
            kinds,
        }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The annotation prefix of the TTL tags.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn scope(&self) -> Scope {
        Scope::Kubernetes {
            cluster: self.cluster.clone(),
        }
    }

    /// `k8s:<cluster>`.
    pub fn scope_label(&self) -> String {
        self.scope().label()
    }

    /// Every selected namespace, then the managed objects of each configured kind in them (one
    /// cluster-wide paged list per kind, whatever the number of namespaces). A kind that cannot
    /// be listed is an error for that kind only; the namespaces cannot be listed, nothing is.
    pub async fn list(&self) -> (Vec<Resource>, Vec<(&'static str, ProviderError)>) {
        let label = self.scope_label();
        let ns_kind = namespace_kind();
        let ns_api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ApiResource::erase::<Namespace>(&()));
        let namespaces = match list_all(&ns_api, &self.namespace_selector, None).await {
            Ok(n) => n,
            Err(e) => {
                let e = api_error(&format!("list {}", ns_kind.name()), &label, e);
                let mut failures = vec![(ns_kind.name(), e.clone())];
                failures.extend(self.kinds.iter().map(|(k, _)| (k.name(), e.clone())));
                return (Vec::new(), failures);
            }
        };
        let ns_labels: HashMap<String, BTreeMap<String, String>> = namespaces
            .iter()
            .filter_map(|ns| {
                Some((
                    ns.metadata.name.clone()?,
                    ns.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect();
        let mut out: Vec<Resource> = namespaces
            .iter()
            .filter_map(|ns| self.namespace_resource(ns_kind, ns))
            .collect();
        let mut failures = Vec::new();
        for &(kind, kk) in &self.kinds {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kk.api_resource());
            let objects = match list_all(&api, &self.object_selector, None).await {
                Ok(o) => o,
                Err(e) => {
                    failures.push((
                        kind.name(),
                        api_error(&format!("list {}", kind.name()), &label, e),
                    ));
                    continue;
                }
            };
            for obj in objects {
                let Some(namespace) = obj.metadata.namespace.as_deref() else {
                    continue;
                };
                let Some(labels) = ns_labels.get(namespace) else {
                    continue;
                };
                if let Some(r) = self.object_resource(kind, kk, &obj, labels) {
                    out.push(r);
                }
            }
        }
        (out, failures)
    }

    fn namespace_resource(&self, kind: &'static dyn Kind, ns: &DynamicObject) -> Option<Resource> {
        let name = ns.metadata.name.clone()?;
        let mut r = Resource::new(
            kind.name(),
            format!("k8s:{name}"),
            name.clone(),
            self.scope(),
        );
        r.namespace = Some(name);
        r.tags = prefixed(&ns.metadata, &self.prefix);
        r.labels = ns.metadata.labels.clone().unwrap_or_default();
        r.namespace_labels = r.labels.clone();
        r.created_fallback = ns.metadata.creation_timestamp.as_ref().map(|t| t.0);
        r.attributes.created = r.created_fallback;
        r.state = Some(state_name(ns));
        Some(r)
    }

    /// The resource for a managed object (`None`: not TTL-managed, it goes with its namespace).
    fn object_resource(
        &self,
        kind: &'static dyn Kind,
        kk: &'static dyn KubeKind,
        obj: &DynamicObject,
        namespace_labels: &BTreeMap<String, String>,
    ) -> Option<Resource> {
        let namespace = obj.metadata.namespace.clone()?;
        let name = obj.metadata.name.clone()?;
        let tags = prefixed(&obj.metadata, &self.prefix);
        if tags.is_empty() {
            return None;
        }
        let mut r = Resource::new(
            kind.name(),
            object_id(kk, &namespace, &name),
            name,
            self.scope(),
        );
        r.refs.push(Ref::new(
            Relation::Blocks,
            namespace_kind().name(),
            namespace.clone(),
        ));
        r.namespace = Some(namespace);
        r.tags = tags;
        r.labels = obj.metadata.labels.clone().unwrap_or_default();
        r.namespace_labels = namespace_labels.clone();
        r.created_fallback = obj.metadata.creation_timestamp.as_ref().map(|t| t.0);
        r.attributes.created = r.created_fallback;
        r.state = Some(state_name(obj));
        Some(r)
    }

    /// The resource with this id as [`list`](Self::list) describes it (without relations), or
    /// `None` when it is not listed (absent, outside the selectors, or an object without TTL
    /// annotations). Two requests: the namespace and the object, each selected by its label
    /// selector and `metadata.name`.
    pub async fn get(&self, id: &str) -> Result<Option<Resource>, ProviderError> {
        let Some(target) = parse_id(id, &self.kinds) else {
            return Ok(None);
        };
        let namespace = match target {
            Target::Namespace(ns) | Target::Object { namespace: ns, .. } => ns,
        };
        let ns_api: Api<DynamicObject> =
            Api::all_with(self.client.clone(), &ApiResource::erase::<Namespace>(&()));
        let Some(ns) = list_all(&ns_api, &self.namespace_selector, Some(namespace))
            .await
            .map_err(|e| api_error("read", id, e))?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        match target {
            Target::Namespace(_) => Ok(self.namespace_resource(namespace_kind(), &ns)),
            Target::Object { kind, name, .. } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource());
                let object = list_all(&api, &self.object_selector, Some(name))
                    .await
                    .map_err(|e| api_error("read", id, e))?
                    .into_iter()
                    .next();
                let registry = self
                    .kinds
                    .iter()
                    .find(|(_, kk)| kk.id_segment() == kind.id_segment())
                    .map(|(k, _)| *k);
                let labels = ns.metadata.labels.clone().unwrap_or_default();
                Ok(match (object, registry) {
                    (Some(obj), Some(k)) => self.object_resource(k, kind, &obj, &labels),
                    _ => None,
                })
            }
        }
    }

    /// Sets the `set` annotations under the prefix and removes the `remove` ones, with one JSON
    /// merge patch of `metadata.annotations` (other annotations are left alone).
    pub async fn write_tags(
        &self,
        r: &Resource,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), ProviderError> {
        let target = self.target(r, "tag")?;
        if set.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let mut annotations = serde_json::Map::new();
        for k in remove {
            annotations.insert(format!("{}{k}", self.prefix), serde_json::Value::Null);
        }
        for (k, v) in set {
            annotations.insert(format!("{}{k}", self.prefix), json!(v));
        }
        let patch = json!({"metadata": {"annotations": annotations}});
        let (api, name) = self.api_for(target);
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| api_error("tag", &r.id, e))?;
        Ok(())
    }

    /// Deletes the resource after the checks described in the module docs. Absent (404) →
    /// [`Removal::Done`]; a namespace the API still shows → [`Removal::Pending`] `Terminating`;
    /// an object kept by finalizers → `Pending` `deleting`.
    pub async fn remove(&self, r: &Resource, guard: &dyn Guard) -> Result<Removal, ProviderError> {
        let target = self.target(r, "delete")?;
        let refuse = |message: String| ProviderError::refusal("delete", &r.id, message);
        match target {
            Target::Namespace(ns) if PROTECTED_NAMESPACES.contains(&ns) => {
                return Err(refuse(format!(
                    "refused: namespace {ns} is a cluster namespace and is never deleted (built-in protection, independent of the whitelist)"
                )));
            }
            Target::Object { namespace, .. } if PROTECTED_NAMESPACES.contains(&namespace) => {
                return Err(refuse(format!(
                    "refused: objects in the cluster namespace {namespace} are never deleted (built-in protection, independent of the whitelist)"
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
        let now = Current {
            attributes: None,
            state: state_name(&current),
            tags: Ok(prefixed(&current.metadata, &self.prefix)),
            never: None,
        };
        if let Some(why) = guard.refuses(r, &now) {
            return Err(refuse(format!(
                "refused: {why} (annotations under {}, re-read just before the delete)",
                self.prefix
            )));
        }
        if let Target::Namespace(ns) = target {
            self.check_contents(ns, &r.id, guard).await?;
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

    /// Refuses to delete namespace `ns` when the guard refuses an annotated object in it:
    /// deleting the namespace would delete that object too.
    async fn check_contents(
        &self,
        ns: &str,
        id: &str,
        guard: &dyn Guard,
    ) -> Result<(), ProviderError> {
        for &(_, kk) in &self.kinds {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), ns, &kk.api_resource());
            let objects = list_all(&api, "", None)
                .await
                .map_err(|e| api_error("re-read contents before delete", id, e))?;
            for obj in objects {
                let tags = prefixed(&obj.metadata, &self.prefix);
                if tags.is_empty() {
                    continue;
                }
                let name = obj.metadata.name.as_deref().unwrap_or("?");
                let contained = object_id(kk, ns, name);
                if let Some(why) = guard.refuses_contained(&contained, &tags) {
                    return Err(ProviderError::refusal(
                        "delete",
                        id,
                        format!(
                            "refused: it contains {contained}, whose {why}; deleting the namespace would delete it"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses a resource of this scope: right cluster, known kind, consistent id.
    fn target<'r>(&self, r: &'r Resource, action: &str) -> Result<Target<'r>, ProviderError> {
        let fail = |message: String| ProviderError::refusal(action, &r.id, message);
        match &r.scope {
            Scope::Kubernetes { cluster } if *cluster == self.cluster => {}
            other => {
                return Err(fail(format!(
                    "belongs to {}, not to this scope's cluster {}",
                    other.cap_key(),
                    self.cluster
                )));
            }
        }
        let target = if r.kind == namespace_kind().name() {
            Target::Namespace(&r.name)
        } else {
            let kind = self
                .kinds
                .iter()
                .find(|(k, _)| k.name() == r.kind)
                .map(|(_, kk)| *kk)
                .ok_or_else(|| {
                    fail(format!(
                        "kind {} is not a Kubernetes kind this scope reads",
                        r.kind
                    ))
                })?;
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

/// `k8s:<namespace>` or `k8s:<segment>/<namespace>/<name>` for one of `kinds`.
fn parse_id<'a>(
    id: &'a str,
    kinds: &[(&'static dyn Kind, &'static dyn KubeKind)],
) -> Option<Target<'a>> {
    let rest = id.strip_prefix("k8s:")?;
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(ns), None, None, None) if !ns.is_empty() => Some(Target::Namespace(ns)),
        (Some(segment), Some(namespace), Some(name), None)
            if !namespace.is_empty() && !name.is_empty() =>
        {
            let kind = kinds
                .iter()
                .find(|(_, kk)| kk.id_segment() == Some(segment))?
                .1;
            Some(Target::Object {
                kind,
                namespace,
                name,
            })
        }
        _ => None,
    }
}

fn object_id(kind: &dyn KubeKind, namespace: &str, name: &str) -> String {
    format!(
        "k8s:{}/{namespace}/{name}",
        kind.id_segment().unwrap_or_default()
    )
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

/// Every object matching `selector` (and named `name`, when given), following continue tokens.
async fn list_all(
    api: &Api<DynamicObject>,
    selector: &str,
    name: Option<&str>,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(PAGE_SIZE);
        if !selector.is_empty() {
            params = params.labels(selector);
        }
        if let Some(n) = name {
            params = params.fields(&format!("metadata.name={n}"));
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
        let bad = KubeSource {
            kinds: vec!["k8s-pod".into()],
            annotation_prefix: "no-slash".into(),
            ..KubeSource::default()
        };
        let problems = bad.validate();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("kinds[0]: unknown kind \"k8s-pod\""));
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
    fn ids_parse_into_namespaces_and_objects_of_known_kinds() {
        let kinds: Vec<_> = object_kinds().collect();
        assert!(matches!(
            parse_id("k8s:preview", &kinds),
            Some(Target::Namespace("preview"))
        ));
        assert!(matches!(
            parse_id("k8s:deployment/preview/web", &kinds),
            Some(Target::Object {
                namespace: "preview",
                name: "web",
                ..
            })
        ));
        for bad in [
            "k8s:",
            "k8s:pod/a/b",
            "k8s:deployment/a",
            "k8s:deployment/a/b/c",
            "arn:x",
        ] {
            assert!(parse_id(bad, &kinds).is_none(), "{bad}");
        }
    }
}
