//! The object store: every object as JSON, keyed by kind, namespace and name, plus the one global
//! resourceVersion counter. All API semantics live here (what a write fills in, when it conflicts,
//! what a list returns); the HTTP layer only parses requests and renders results.
//!
//! Architecture Invariant: nothing outside this file changes an object or the resourceVersion, and
//! every change bumps the resourceVersion by exactly one per object written or removed.

use std::collections::BTreeMap;
use std::ops::Bound;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::patch::{self, JsonPatchError};
use super::resources::{self, NameRule, RESOURCES, Resource};
use super::selector::{FieldSelector, LabelSelector};

/// Namespaces every cluster has; the first three may not be deleted, as upstream.
pub(crate) const BUILTIN_NAMESPACES: &[&str] =
    &["default", "kube-node-lease", "kube-public", "kube-system"];
const UNDELETABLE_NAMESPACES: &[&str] = &["default", "kube-public", "kube-system"];

/// A request the API server refused, rendered as a `Status` body with this HTTP code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
    details: Option<(String, &'static str, &'static str)>,
}

impl ApiError {
    /// The HTTP status code, as kube-rs reports it in `Status::code`.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub fn reason(&self) -> &str {
        self.reason
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn new(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Expired",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, res: &Resource, name: &str) -> Self {
        self.details = Some((name.to_string(), res.group, res.plural));
        self
    }

    pub(crate) fn not_found(res: &Resource, name: &str) -> Self {
        Self::new(404, format!("{} {name:?} not found", res.qualified())).about(res, name)
    }

    fn already_exists(res: &Resource, name: &str) -> Self {
        let mut e =
            Self::new(409, format!("{} {name:?} already exists", res.qualified())).about(res, name);
        e.reason = "AlreadyExists";
        e
    }

    fn conflict(res: &Resource, name: &str) -> Self {
        Self::new(
            409,
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
                 please apply your changes to the latest version and try again",
                res.qualified()
            ),
        )
        .about(res, name)
    }

    fn invalid(res: &Resource, name: &str, why: &str) -> Self {
        Self::new(422, format!("{} {name:?} is invalid: {why}", res.kind)).about(res, name)
    }

    /// The `Status` body the API server sends for this error.
    pub(crate) fn status_body(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((name, group, kind)) = &self.details {
            body["details"] = json!({"name": name, "group": group, "kind": kind});
        }
        body
    }
}

/// Who is writing: the HTTP API, which owns server-filled fields, or a test seeding state, which
/// may set `uid` and `creationTimestamp` (a TTL test needs objects that are days old).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Api,
    Seed,
}

/// Which patch format a `PATCH` request carries, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub(crate) fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Query parameters of a list (or delete-collection) request.
#[derive(Clone, Default)]
pub(crate) struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

/// `preconditions` of a delete request's `DeleteOptions` body.
#[derive(Default)]
pub(crate) struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

type Key = (String, String);

/// Every object, and the global resourceVersion of the last write.
pub(crate) struct Store {
    objects: BTreeMap<&'static str, BTreeMap<Key, Value>>,
    resource_version: u64,
}

fn key(res: &Resource, namespace: Option<&str>, name: &str) -> Key {
    let ns = if res.namespaced {
        namespace.unwrap_or_default()
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

fn now_seconds() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).expect("the current time is in range")
}

impl Store {
    /// A store holding the namespaces every cluster starts with.
    pub fn new() -> Self {
        let mut store = Self {
            objects: BTreeMap::new(),
            resource_version: 0,
        };
        let ns = resources::by_plural("namespaces").expect("namespaces are in the table");
        for name in BUILTIN_NAMESPACES {
            let obj = json!({"metadata": {"name": name}});
            store
                .create(ns, None, obj, Origin::Api, false)
                .expect("built-in namespaces are valid");
        }
        store
    }

    /// The resourceVersion of the last write.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    pub fn get(&self, res: &Resource, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.objects
            .get(res.plural)?
            .get(&key(res, namespace, name))
    }

    /// Objects of a kind in one namespace, or everywhere when `namespace` is `None`, in
    /// namespace/name order.
    pub fn iter<'a>(
        &'a self,
        res: &Resource,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let scoped = res.namespaced;
        self.objects
            .get(res.plural)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter(move |((ns, _), _)| !scoped || namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v)
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.objects
            .get("namespaces")
            .is_some_and(|m| m.contains_key(&(String::new(), namespace.to_string())))
    }

    fn commit(&mut self, res: &Resource, obj: Value) -> Value {
        let k = key(
            res,
            meta_str(&obj, "namespace"),
            meta_str(&obj, "name").unwrap_or_default(),
        );
        self.resource_version += 1;
        self.objects
            .entry(res.plural)
            .or_default()
            .insert(k, obj.clone());
        obj
    }

    /// `POST`: creates an object; `namespace` comes from the URL.
    pub fn create(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        body: Value,
        origin: Origin,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut obj = check_body(res, body)?;
        let namespace = reconcile_namespace(res, namespace, &mut obj)?;
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("check_body made metadata an object");
        let name = match meta
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(name) => name.to_string(),
            None => match meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                Some(prefix) => generate_name(prefix),
                None => {
                    return Err(ApiError::invalid(
                        res,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        validate_name(res, &name)?;
        if let Some(ns) = &namespace
            && !self.namespace_exists(ns)
        {
            let nsres = resources::by_plural("namespaces").expect("namespaces are in the table");
            return Err(ApiError::not_found(nsres, ns));
        }
        if self.get(res, namespace.as_deref(), &name).is_some() {
            return Err(ApiError::already_exists(res, &name));
        }
        if origin == Origin::Api
            && res.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            // As upstream: a new object's status is the server's to set, not the client's.
            m.remove("status");
        }
        let obj = self.fill(res, namespace.as_deref(), &name, obj, None, origin);
        Ok(if dry_run { obj } else { self.commit(res, obj) })
    }

    /// A test's seed: creates the object, or replaces it unconditionally, keeping a given `uid`
    /// and `creationTimestamp` (see `FakeKube::insert`).
    pub fn seed(&mut self, res: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        let mut obj = check_body(res, obj)?;
        let namespace = reconcile_namespace(res, None, &mut obj)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        match self.get(res, namespace.as_deref(), &name).cloned() {
            None => self.create(res, namespace.as_deref(), obj, Origin::Seed, false),
            Some(existing) => {
                let obj = self.fill(
                    res,
                    namespace.as_deref(),
                    &name,
                    obj,
                    Some(&existing),
                    Origin::Seed,
                );
                Ok(self.commit(res, obj))
            }
        }
    }

    /// `PUT`: replaces an object, refusing a stale `metadata.resourceVersion` with 409. With
    /// `status_only`, only `.status` is taken from the body (the `/status` subresource).
    pub fn replace(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut obj = check_body(res, body)?;
        let namespace = reconcile_namespace(res, namespace, &mut obj)?;
        check_name_matches(name, &obj)?;
        let Some(existing) = self.get(res, namespace.as_deref(), name).cloned() else {
            if res.create_on_update && !status_only {
                obj["metadata"]["name"] = json!(name);
                return self.create(res, namespace.as_deref(), obj, Origin::Api, dry_run);
            }
            return Err(ApiError::not_found(res, name));
        };
        check_resource_version(res, name, &obj, &existing)?;
        let obj = split_status(res, &existing, obj, status_only);
        let obj = self.fill(
            res,
            namespace.as_deref(),
            name,
            obj,
            Some(&existing),
            Origin::Api,
        );
        Ok(if dry_run { obj } else { self.commit(res, obj) })
    }

    /// `PATCH`: applies a patch to the stored object. Server-side apply on a missing object
    /// creates it; any patch that leaves a `metadata.resourceVersion` other than the stored one
    /// in the result is refused with 409 (optimistic concurrency through patches).
    #[allow(clippy::too_many_arguments)] // Mirrors the request: where, what, how, and two flags.
    pub fn patch(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let Some(existing) = self.get(res, namespace, name).cloned() else {
            if patch_type == PatchType::Apply && !status_only {
                let mut obj = patch.clone();
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.entry("name").or_insert_with(|| json!(name));
                }
                let obj = check_body(res, obj)?;
                check_name_matches(name, &obj)?;
                return self.create(res, namespace, obj, Origin::Api, dry_run);
            }
            return Err(ApiError::not_found(res, name));
        };
        let mut obj = existing.clone();
        match patch_type {
            PatchType::Json => patch::json_patch(&mut obj, patch).map_err(|e| match e {
                JsonPatchError::Malformed(m) => {
                    ApiError::new(400, format!("invalid JSON patch: {m}"))
                }
                JsonPatchError::Failed(m) => {
                    ApiError::invalid(res, name, &format!("JSON patch failed: {m}"))
                }
            })?,
            PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
                if !patch.is_object() {
                    return Err(ApiError::new(400, "a merge patch must be a JSON object"));
                }
                patch::merge(&mut obj, patch);
            }
        }
        let mut obj = check_body(res, obj)?;
        let namespace = reconcile_namespace(res, namespace, &mut obj)?;
        check_name_matches(name, &obj)?;
        check_resource_version(res, name, &obj, &existing)?;
        let obj = split_status(res, &existing, obj, status_only);
        let obj = self.fill(
            res,
            namespace.as_deref(),
            name,
            obj,
            Some(&existing),
            Origin::Api,
        );
        Ok(if dry_run { obj } else { self.commit(res, obj) })
    }

    /// `DELETE`: removes an object and returns it; removing a namespace removes everything in it.
    pub fn delete(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        preconditions: &Preconditions,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let Some(existing) = self.get(res, namespace, name).cloned() else {
            return Err(ApiError::not_found(res, name));
        };
        if res.plural == "namespaces" && UNDELETABLE_NAMESPACES.contains(&name) {
            return Err(ApiError::new(
                403,
                format!("namespaces {name:?} is forbidden: this namespace may not be deleted"),
            )
            .about(res, name));
        }
        let uid_differs = preconditions
            .uid
            .as_deref()
            .is_some_and(|u| Some(u) != meta_str(&existing, "uid"));
        let rv_differs = preconditions
            .resource_version
            .as_deref()
            .is_some_and(|rv| Some(rv) != meta_str(&existing, "resourceVersion"));
        if uid_differs || rv_differs {
            let mut e = ApiError::conflict(res, name);
            e.message = format!(
                "Operation cannot be fulfilled on {} {name:?}: Precondition failed: {}",
                res.qualified(),
                if uid_differs {
                    "UID in precondition does not match"
                } else {
                    "ResourceVersion in precondition does not match"
                }
            );
            return Err(e);
        }
        if !dry_run {
            self.remove(res, namespace, name);
        }
        Ok(if res.plural == "namespaces" {
            // Upstream answers with the namespace as it starts terminating; here the content is
            // gone at once, as if the namespace controller had already finished.
            let mut shown = existing;
            shown["status"]["phase"] = json!("Terminating");
            shown["metadata"]["deletionTimestamp"] = json!(now_seconds().to_string());
            shown
        } else {
            existing
        })
    }

    /// Removes an object without any API checks (and, for a namespace, what is in it).
    pub fn remove(&mut self, res: &Resource, namespace: Option<&str>, name: &str) -> Option<Value> {
        let removed = self
            .objects
            .get_mut(res.plural)?
            .remove(&key(res, namespace, name))?;
        self.resource_version += 1;
        if res.plural == "namespaces" {
            for contained in RESOURCES.iter().filter(|r| r.namespaced) {
                if let Some(objects) = self.objects.get_mut(contained.plural) {
                    let before = objects.len();
                    objects.retain(|(ns, _), _| ns != name);
                    self.resource_version += (before - objects.len()) as u64;
                }
            }
        }
        Some(removed)
    }

    /// `GET` on a collection: filtered, paged, in namespace/name order.
    pub fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<Value, ApiError> {
        let (items, next, remaining) = self.select(res, namespace, query)?;
        let mut metadata = json!({"resourceVersion": self.resource_version.to_string()});
        if let Some(next) = next {
            metadata["continue"] = json!(next);
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "apiVersion": res.api_version(),
            "kind": format!("{}List", res.kind),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// `DELETE` on a collection: removes what the selectors match and lists it.
    pub fn delete_collection(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        query: &ListQuery,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let (items, _, _) = self.select(
            res,
            namespace,
            &ListQuery {
                limit: None,
                continue_token: None,
                ..query.clone()
            },
        )?;
        let mut deleted = Vec::new();
        for item in items {
            let (ns, name) = (
                meta_str(&item, "namespace").map(str::to_string),
                meta_str(&item, "name").unwrap_or_default().to_string(),
            );
            deleted.push(self.delete(
                res,
                ns.as_deref(),
                &name,
                &Preconditions::default(),
                dry_run,
            )?);
        }
        Ok(json!({
            "apiVersion": res.api_version(),
            "kind": format!("{}List", res.kind),
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": deleted,
        }))
    }

    /// The page of matching objects, the continue token for the next page and how many remain.
    fn select(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<(Vec<Value>, Option<String>, usize), ApiError> {
        let labels = LabelSelector::parse(query.label_selector.as_deref().unwrap_or_default())
            .map_err(|e| ApiError::new(400, e))?;
        let fields = FieldSelector::parse(
            query.field_selector.as_deref().unwrap_or_default(),
            res.fields,
            res.kind,
        )
        .map_err(|e| ApiError::new(400, e))?;
        let start = match &query.continue_token {
            Some(token) if !token.is_empty() => Bound::Excluded(decode_continue(token)?),
            _ => Bound::Unbounded,
        };
        let scoped = res.namespaced;
        let empty = BTreeMap::new();
        let mut matching = self
            .objects
            .get(res.plural)
            .unwrap_or(&empty)
            .range((start, Bound::Unbounded))
            .filter(|((ns, _), _)| !scoped || namespace.is_none_or(|want| want == ns))
            .filter(|(_, obj)| {
                labels.matches(obj["metadata"]["labels"].as_object()) && fields.matches(obj)
            });
        let limit = query.limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
        let page: Vec<(&Key, &Value)> = matching.by_ref().take(limit).collect();
        let remaining = matching.count();
        let next =
            (remaining > 0).then(|| encode_continue(page.last().expect("limit is at least one").0));
        Ok((
            page.into_iter().map(|(_, v)| v.clone()).collect(),
            next,
            remaining,
        ))
    }

    /// Fills what the server owns: type fields, namespace, uid, creationTimestamp,
    /// resourceVersion, generation, and the per-kind defaults.
    fn fill(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        existing: Option<&Value>,
        origin: Origin,
    ) -> Value {
        obj["apiVersion"] = json!(res.api_version());
        obj["kind"] = json!(res.kind);
        let seeded = |field: &str| {
            (origin == Origin::Seed)
                .then(|| meta_str(&obj, field).map(str::to_string))
                .flatten()
        };
        let uid = seeded("uid")
            .or_else(|| {
                existing
                    .and_then(|e| meta_str(e, "uid"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let created = seeded("creationTimestamp")
            .or_else(|| {
                existing
                    .and_then(|e| meta_str(e, "creationTimestamp"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| now_seconds().to_string());
        let generation = match existing {
            None => 1,
            Some(old) => {
                let previous = old["metadata"]["generation"].as_i64().unwrap_or(1);
                if spec_of(old) == spec_of(&obj) {
                    previous
                } else {
                    previous + 1
                }
            }
        };
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("check_body made metadata an object");
        meta.insert("name".into(), json!(name));
        match namespace {
            Some(ns) if res.namespaced => meta.insert("namespace".into(), json!(ns)),
            _ => meta.remove("namespace"),
        };
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(created));
        meta.insert(
            "resourceVersion".into(),
            json!((self.resource_version + 1).to_string()),
        );
        if res.generation {
            meta.insert("generation".into(), json!(generation));
        } else {
            meta.remove("generation");
        }
        apply_defaults(res, name, &mut obj);
        obj
    }
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_of(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

/// Upstream splits a kind with a status subresource in two: writes to the object keep the stored
/// status, and writes to `/status` keep everything but the status.
fn split_status(res: &Resource, existing: &Value, update: Value, status_only: bool) -> Value {
    if status_only {
        with_status_of(existing, &update)
    } else if res.status_subresource {
        with_status_of(&update, existing)
    } else {
        update
    }
}

/// `base` with its `.status` replaced by that of `source` (removed if `source` has none).
fn with_status_of(base: &Value, source: &Value) -> Value {
    let mut obj = base.clone();
    match source.get("status") {
        Some(status) => obj["status"] = status.clone(),
        None => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
    }
    obj
}

/// A body must be an object whose `apiVersion`/`kind`, when given, match the URL.
fn check_body(res: &Resource, body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::new(400, "the request body must be a JSON object"));
    };
    if let Some(v) = map.get("apiVersion").and_then(Value::as_str)
        && v != res.api_version()
    {
        return Err(ApiError::new(
            400,
            format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                res.api_version()
            ),
        ));
    }
    if let Some(k) = map.get("kind").and_then(Value::as_str)
        && k != res.kind
    {
        return Err(ApiError::new(
            400,
            format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            ),
        ));
    }
    match map.get("metadata") {
        None | Some(Value::Null) => {
            map.insert("metadata".into(), Value::Object(Map::new()));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::new(400, "metadata must be an object")),
    }
    Ok(Value::Object(map))
}

/// The namespace of a write: from the URL, which the body may repeat but not contradict.
fn reconcile_namespace(
    res: &Resource,
    url: Option<&str>,
    obj: &mut Value,
) -> Result<Option<String>, ApiError> {
    if !res.namespaced {
        return Ok(None);
    }
    let body = obj["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty());
    match (url, body) {
        (Some(u), Some(b)) if u != b => Err(ApiError::new(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        (Some(u), _) => Ok(Some(u.to_string())),
        (None, Some(b)) => Ok(Some(b.to_string())),
        (None, None) => Err(ApiError::new(
            400,
            format!("{} is namespaced: a namespace is required", res.plural),
        )),
    }
}

fn check_name_matches(url_name: &str, obj: &Value) -> Result<(), ApiError> {
    match meta_str(obj, "name") {
        Some(n) if n != url_name => Err(ApiError::new(
            400,
            format!("the name of the object ({n}) does not match the name on the URL ({url_name})"),
        )),
        _ => Ok(()),
    }
}

/// A write that names a resourceVersion must name the current one; no resourceVersion means an
/// unconditional write, as upstream.
fn check_resource_version(
    res: &Resource,
    name: &str,
    obj: &Value,
    existing: &Value,
) -> Result<(), ApiError> {
    match meta_str(obj, "resourceVersion").filter(|rv| !rv.is_empty()) {
        Some(rv) if Some(rv) != meta_str(existing, "resourceVersion") => {
            Err(ApiError::conflict(res, name))
        }
        _ => Ok(()),
    }
}

fn validate_name(res: &Resource, name: &str) -> Result<(), ApiError> {
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    let ok = match res.names {
        NameRule::Label => label_ok(name),
        NameRule::Label1035 => label_ok(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
        NameRule::Subdomain => name.len() <= 253 && name.split('.').all(label_ok),
    };
    if ok {
        Ok(())
    } else {
        let rule = match res.names {
            NameRule::Label => "an RFC 1123 label",
            NameRule::Label1035 => "an RFC 1035 label",
            NameRule::Subdomain => "an RFC 1123 subdomain",
        };
        Err(ApiError::invalid(
            res,
            name,
            &format!("metadata.name: Invalid value: {name:?}: must be {rule}"),
        ))
    }
}

/// `generateName` plus five characters from the alphabet upstream uses.
fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// What the API server's defaulting and registry strategies add for the kinds that need it.
fn apply_defaults(res: &Resource, name: &str, obj: &mut Value) {
    match res.plural {
        "namespaces" => {
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if obj["status"]["phase"].as_str().is_none() {
                obj["status"]["phase"] = json!("Active");
            }
        }
        "pods" if obj["status"]["phase"].as_str().is_none() => {
            obj["status"]["phase"] = json!("Pending");
        }
        "secrets" => {
            if let Some(Value::Object(strings)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                for (k, v) in strings {
                    let text = v.as_str().unwrap_or_default();
                    obj["data"][k] = json!(base64(text.as_bytes()));
                }
            }
            if obj["type"].as_str().is_none() {
                obj["type"] = json!("Opaque");
            }
        }
        _ => {}
    }
}

/// Standard base64 with padding (secrets' `stringData` is stored encoded in `data`).
fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Continue tokens are opaque to clients: the hex of the last key served.
fn encode_continue(key: &Key) -> String {
    let raw = serde_json::to_vec(&[&key.0, &key.1]).expect("strings serialize");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<Key, ApiError> {
    let bad = || ApiError::new(400, format!("invalid continue token {token:?}"));
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let [ns, name]: [String; 2] = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((ns, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(plural: &str) -> &'static Resource {
        resources::by_plural(plural).unwrap()
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let k = ("ns-a".to_string(), "name/with\"odd".to_string());
        assert_eq!(decode_continue(&encode_continue(&k)).unwrap(), k);
        assert_eq!(decode_continue("zz").unwrap_err().code(), 400);
        assert_eq!(decode_continue("abc").unwrap_err().code(), 400);
    }

    #[test]
    fn every_write_bumps_the_resource_version_once_per_object() {
        let mut s = Store::new();
        let start = s.resource_version();
        assert_eq!(start, BUILTIN_NAMESPACES.len() as u64);
        s.create(
            res("namespaces"),
            None,
            json!({"metadata": {"name": "a"}}),
            Origin::Api,
            false,
        )
        .unwrap();
        for name in ["x", "y"] {
            s.create(
                res("configmaps"),
                Some("a"),
                json!({"metadata": {"name": name}}),
                Origin::Api,
                false,
            )
            .unwrap();
        }
        assert_eq!(s.resource_version(), start + 3);
        s.delete(
            res("namespaces"),
            None,
            "a",
            &Preconditions::default(),
            false,
        )
        .unwrap();
        assert_eq!(
            s.resource_version(),
            start + 6,
            "the namespace and both config maps"
        );
        assert_eq!(s.iter(res("configmaps"), None).count(), 0);
    }

    #[test]
    fn dry_run_changes_nothing() {
        let mut s = Store::new();
        let rv = s.resource_version();
        let out = s
            .create(
                res("namespaces"),
                None,
                json!({"metadata": {"name": "dry"}}),
                Origin::Api,
                true,
            )
            .unwrap();
        assert_eq!(out["metadata"]["name"], "dry");
        assert!(s.get(res("namespaces"), None, "dry").is_none());
        assert_eq!(s.resource_version(), rv);
    }

    #[test]
    fn seeding_keeps_uid_and_creation_timestamp_but_the_api_does_not() {
        let mut s = Store::new();
        let body = json!({"metadata": {"name": "old", "uid": "u-1", "creationTimestamp": "2020-01-01T00:00:00Z"}});
        let seeded = s
            .create(res("namespaces"), None, body.clone(), Origin::Seed, false)
            .unwrap();
        assert_eq!(seeded["metadata"]["uid"], "u-1");
        assert_eq!(
            seeded["metadata"]["creationTimestamp"],
            "2020-01-01T00:00:00Z"
        );
        let mut body = body;
        body["metadata"]["name"] = json!("new");
        let created = s
            .create(res("namespaces"), None, body, Origin::Api, false)
            .unwrap();
        assert_ne!(created["metadata"]["uid"], "u-1");
        assert_ne!(
            created["metadata"]["creationTimestamp"],
            "2020-01-01T00:00:00Z"
        );
    }

    #[test]
    fn names_are_validated_per_kind() {
        let mut s = Store::new();
        for (plural, ns, bad) in [
            ("namespaces", None, "has.dot"),
            ("services", Some("default"), "1abc"),
            ("configmaps", Some("default"), "Upper"),
        ] {
            let err = s
                .create(
                    res(plural),
                    ns,
                    json!({"metadata": {"name": bad}}),
                    Origin::Api,
                    false,
                )
                .unwrap_err();
            assert_eq!(err.code(), 422, "{plural} {bad}");
        }
        s.create(
            res("configmaps"),
            Some("default"),
            json!({"metadata": {"name": "a.b-c"}}),
            Origin::Api,
            false,
        )
        .unwrap();
    }

    #[test]
    fn generate_name_appends_five_characters() {
        let mut s = Store::new();
        let out = s
            .create(
                res("configmaps"),
                Some("default"),
                json!({"metadata": {"generateName": "run-"}}),
                Origin::Api,
                false,
            )
            .unwrap();
        let name = out["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("run-") && name.len() == 9, "{name}");
    }

    #[test]
    fn secrets_fold_string_data_into_data() {
        let mut s = Store::new();
        let out = s
            .create(
                res("secrets"),
                Some("default"),
                json!({"metadata": {"name": "s"}, "stringData": {"k": "foo"}}),
                Origin::Api,
                false,
            )
            .unwrap();
        assert_eq!(out["data"]["k"], "Zm9v");
        assert_eq!(out["type"], "Opaque");
        assert!(out.get("stringData").is_none());
    }
}
