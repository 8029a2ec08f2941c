//! Kubernetes: the Secrets that carry a value to its consumers (step 6), and the consumers
//! themselves (step 7): found from the pod templates that reference a Secret, restarted by a
//! pod-template annotation (what `kubectl rollout restart` does), and verified
//! ([`crate::rollout`]).
//!
//! Every write is check-and-set: it names the `resourceVersion` it read, and a 409 means someone
//! else changed the object in between. A Secret owned by an ExternalSecret is never written:
//! the ExternalSecret is annotated `force-sync` (External Secrets' documented way to sync now)
//! and the Secret is watched until its data is the new value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PodSpec, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::{ConsumerRef, KubeSecretRef, WorkloadKind};
use crate::rollout;
use crate::value::{Data, field};

/// Annotation on a written Secret: the rotation that wrote it.
pub const ROTATION_ID: &str = "secret-rotation.governance.io/rotation-id";
/// Annotation on a written Secret: the Vault KV version it holds.
pub const VAULT_VERSION: &str = "secret-rotation.governance.io/vault-version";
/// Pod-template annotation: the rotation and version the pods were restarted for.
pub const TEMPLATE_VERSION: &str = "secret-rotation.governance.io/version";
/// Pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// External Secrets' annotation that makes an ExternalSecret sync at once.
pub const FORCE_SYNC: &str = "force-sync";

/// A workload whose pods use a Secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Workload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

impl From<&ConsumerRef> for Workload {
    fn from(c: &ConsumerRef) -> Self {
        Workload {
            kind: c.kind,
            namespace: c.namespace.clone(),
            name: c.name.clone(),
        }
    }
}

/// Whether a pod spec reads the Secret `name`: `env[].valueFrom.secretKeyRef`, `envFrom[]
/// .secretRef`, a `secret` volume or a `projected` volume's secret source (containers, init
/// containers and ephemeral containers alike).
pub fn references(spec: &PodSpec, name: &str) -> bool {
    let env_uses = |env: &Option<Vec<k8s_openapi::api::core::v1::EnvVar>>| {
        env.iter().flatten().any(|e| {
            e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_some_and(|r| r.name == name)
        })
    };
    let env_from_uses = |from: &Option<Vec<k8s_openapi::api::core::v1::EnvFromSource>>| {
        from.iter()
            .flatten()
            .any(|f| f.secret_ref.as_ref().is_some_and(|r| r.name == name))
    };
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| env_uses(&c.env) || env_from_uses(&c.env_from));
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .any(|c| env_uses(&c.env) || env_from_uses(&c.env_from));
    let volumes = spec.volumes.iter().flatten().any(|v| {
        v.secret
            .as_ref()
            .is_some_and(|s| s.secret_name.as_deref() == Some(name))
            || v.projected.as_ref().is_some_and(|p| {
                p.sources
                    .iter()
                    .flatten()
                    .any(|s| s.secret.as_ref().is_some_and(|s| s.name == name))
            })
    });
    containers || ephemeral || volumes
}

/// What a failed Kubernetes step reports.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// An API call failed.
    #[error("{what}: {source}")]
    Api {
        /// The call.
        what: String,
        /// kube-rs' error (an API `Status` names the reason, never a body we sent).
        #[source]
        source: kube::Error,
    },
    /// A write lost its check-and-set.
    #[error("{what}: changed by someone else since it was read (409)")]
    Conflict {
        /// The call.
        what: String,
    },
    /// Anything else, said in a sentence.
    #[error("{0}")]
    Other(String),
}

fn api_error(what: String, e: kube::Error) -> KubeError {
    match &e {
        kube::Error::Api(status) if status.code == 409 => KubeError::Conflict { what },
        _ => KubeError::Api { what, source: e },
    }
}

/// The pod templates of one namespace, listed once per run.
type Templates = Vec<(Workload, PodSpec)>;

/// Kubernetes access for one run.
pub struct Kube {
    client: kube::Client,
    /// Poll interval of rollout and sync checks.
    pub poll: Duration,
    /// Deadline of one wave's rollouts.
    pub timeout: Duration,
    /// Deadline of an ExternalSecret sync.
    pub sync_timeout: Duration,
    templates: Mutex<BTreeMap<String, Templates>>,
}

fn external_secret_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("external-secrets.io", "v1beta1", "ExternalSecret"),
        "externalsecrets",
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// How a Secret was brought to the new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Propagated {
    /// Written by the job.
    Written,
    /// Already held it (a resumed rotation).
    Already,
    /// Synced by its ExternalSecret.
    Synced(String),
}

impl Kube {
    /// Kubernetes access through `client`.
    pub fn new(
        client: kube::Client,
        poll: Duration,
        timeout: Duration,
        sync_timeout: Duration,
    ) -> Kube {
        Kube {
            client,
            poll,
            timeout,
            sync_timeout,
            templates: Mutex::new(BTreeMap::new()),
        }
    }

    async fn templates(&self, namespace: &str) -> Result<Templates, KubeError> {
        let mut cache = self.templates.lock().await;
        if let Some(t) = cache.get(namespace) {
            return Ok(t.clone());
        }
        let mut out: Templates = Vec::new();
        let lp = ListParams::default();
        let what = |k: &str| format!("list {k}s in {namespace}");
        let deployments = Api::<Deployment>::namespaced(self.client.clone(), namespace)
            .list(&lp)
            .await
            .map_err(|e| api_error(what("Deployment"), e))?;
        for d in deployments.items {
            if let Some(spec) = d.spec.and_then(|s| s.template.spec) {
                out.push((
                    workload(WorkloadKind::Deployment, namespace, d.metadata.name),
                    spec,
                ));
            }
        }
        let sets = Api::<StatefulSet>::namespaced(self.client.clone(), namespace)
            .list(&lp)
            .await
            .map_err(|e| api_error(what("StatefulSet"), e))?;
        for s in sets.items {
            if let Some(spec) = s.spec.and_then(|s| s.template.spec) {
                out.push((
                    workload(WorkloadKind::StatefulSet, namespace, s.metadata.name),
                    spec,
                ));
            }
        }
        let daemons = Api::<DaemonSet>::namespaced(self.client.clone(), namespace)
            .list(&lp)
            .await
            .map_err(|e| api_error(what("DaemonSet"), e))?;
        for d in daemons.items {
            if let Some(spec) = d.spec.and_then(|s| s.template.spec) {
                out.push((
                    workload(WorkloadKind::DaemonSet, namespace, d.metadata.name),
                    spec,
                ));
            }
        }
        cache.insert(namespace.to_string(), out.clone());
        Ok(out)
    }

    /// The consumers of `secrets`: every workload in their namespaces whose pod template reads
    /// one of them, and the `explicit` ones; sorted, without repeats.
    pub async fn consumers(
        &self,
        secrets: &[KubeSecretRef],
        explicit: &[ConsumerRef],
    ) -> Result<Vec<Workload>, KubeError> {
        let mut found: BTreeSet<Workload> = explicit.iter().map(Workload::from).collect();
        for s in secrets {
            for (w, spec) in self.templates(&s.namespace).await? {
                if references(&spec, &s.name) {
                    found.insert(w);
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Why `w` cannot be restarted and verified, if it cannot: missing, a paused Deployment, an
    /// `OnDelete` update strategy.
    pub async fn unrestartable(&self, w: &Workload) -> Result<Option<String>, KubeError> {
        let what = format!("get {w}");
        let why = match w.kind {
            WorkloadKind::Deployment => {
                match Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                    .get_opt(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?
                {
                    None => Some("not found".to_string()),
                    Some(d) if d.spec.as_ref().and_then(|s| s.paused) == Some(true) => {
                        Some("the deployment is paused: a restart would never roll out".into())
                    }
                    Some(_) => None,
                }
            }
            WorkloadKind::StatefulSet => {
                match Api::<StatefulSet>::namespaced(self.client.clone(), &w.namespace)
                    .get_opt(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?
                {
                    None => Some("not found".to_string()),
                    Some(s) => s
                        .spec
                        .and_then(|s| s.update_strategy)
                        .and_then(|u| u.type_)
                        .filter(|t| t != "RollingUpdate")
                        .map(|t| format!("update strategy {t}: a restart would not roll out")),
                }
            }
            WorkloadKind::DaemonSet => {
                match Api::<DaemonSet>::namespaced(self.client.clone(), &w.namespace)
                    .get_opt(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?
                {
                    None => Some("not found".to_string()),
                    Some(d) => d
                        .spec
                        .and_then(|s| s.update_strategy)
                        .and_then(|u| u.type_)
                        .filter(|t| t != "RollingUpdate")
                        .map(|t| format!("update strategy {t}: a restart would not roll out")),
                }
            }
        };
        Ok(why)
    }

    /// The ExternalSecret that owns a Secret: declared in config, or its ownerReference.
    fn owner(s: &KubeSecretRef, secret: &Secret) -> Option<String> {
        s.external_secret.clone().or_else(|| {
            secret
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| {
                    o.kind == "ExternalSecret" && o.api_version.starts_with("external-secrets.io/")
                })
                .map(|o| o.name.clone())
        })
    }

    /// Whether the Secret's data already holds every field of `data` that it carries (and at
    /// least one).
    fn holds(secret: &Secret, data: &Data) -> bool {
        let Some(current) = &secret.data else {
            return false;
        };
        let mut overlap = 0;
        for k in data.keys() {
            if let Some(bytes) = current.get(k) {
                overlap += 1;
                if bytes.0.as_slice() != field(data, k).unwrap_or_default().as_bytes() {
                    return false;
                }
            }
        }
        overlap > 0
    }

    /// Brings the Secret `s` to `data` (KV `version` of rotation `rotation_id`).
    pub async fn propagate(
        &self,
        s: &KubeSecretRef,
        data: &Data,
        rotation_id: &str,
        version: u64,
        now: Timestamp,
    ) -> Result<Propagated, KubeError> {
        let api = Api::<Secret>::namespaced(self.client.clone(), &s.namespace);
        let id = format!("Secret {}/{}", s.namespace, s.name);
        let secret = api
            .get_opt(&s.name)
            .await
            .map_err(|e| api_error(format!("get {id}"), e))?
            .ok_or_else(|| KubeError::Other(format!("{id} not found")))?;
        if let Some(es) = Self::owner(s, &secret) {
            if !Self::holds(&secret, data) {
                self.force_sync(&s.namespace, &es, now).await?;
                self.wait_synced(&api, &s.name, &id, data).await?;
            }
            return Ok(Propagated::Synced(es));
        }
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let version_text = version.to_string();
        if annotations.get(ROTATION_ID).map(String::as_str) == Some(rotation_id)
            && annotations.get(VAULT_VERSION) == Some(&version_text)
            && Self::holds(&secret, data)
        {
            return Ok(Propagated::Already);
        }
        let encoded: serde_json::Map<String, Value> = data
            .keys()
            .map(|k| (k.clone(), json!(b64(field(data, k).unwrap_or_default()))))
            .collect();
        let patch = json!({
            "metadata": {
                "resourceVersion": secret.metadata.resource_version,
                "annotations": {ROTATION_ID: rotation_id, VAULT_VERSION: version_text},
            },
            "data": encoded,
        });
        api.patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| api_error(format!("update {id}"), e))?;
        Ok(Propagated::Written)
    }

    async fn force_sync(
        &self,
        namespace: &str,
        name: &str,
        now: Timestamp,
    ) -> Result<(), KubeError> {
        let api = Api::<DynamicObject>::namespaced_with(
            self.client.clone(),
            namespace,
            &external_secret_resource(),
        );
        let what = format!("annotate ExternalSecret {namespace}/{name}");
        // A controller may update the ExternalSecret's status between our read and our write:
        // re-read and try again a few times before calling it a conflict.
        for attempt in 0..3 {
            let es = api
                .get(name)
                .await
                .map_err(|e| api_error(what.clone(), e))?;
            let patch = json!({"metadata": {
                "resourceVersion": es.metadata.resource_version,
                "annotations": {FORCE_SYNC: now.as_second().to_string()},
            }});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| api_error(what.clone(), e))
            {
                Ok(_) => return Ok(()),
                Err(KubeError::Conflict { .. }) if attempt < 2 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KubeError::Conflict { what })
    }

    async fn wait_synced(
        &self,
        api: &Api<Secret>,
        name: &str,
        id: &str,
        data: &Data,
    ) -> Result<(), KubeError> {
        let start = Instant::now();
        loop {
            let secret = api
                .get(name)
                .await
                .map_err(|e| api_error(format!("get {id}"), e))?;
            if Self::holds(&secret, data) {
                return Ok(());
            }
            if start.elapsed() > self.sync_timeout {
                return Err(KubeError::Other(format!(
                    "{id}: its ExternalSecret did not sync the new value within {}s",
                    self.sync_timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Restarts `w` for `marker` (`<rotation id>/<vault version>`): patches the pod template's
    /// `restartedAt` and version annotations, unless it already carries `marker` (a resumed
    /// rotation). Returns whether it patched.
    pub async fn restart(
        &self,
        w: &Workload,
        marker: &str,
        now: Timestamp,
    ) -> Result<bool, KubeError> {
        let what = format!("restart {w}");
        for attempt in 0..3 {
            let (rv, current, paused) = self.template_marker(w).await?;
            if current.as_deref() == Some(marker) {
                return Ok(false);
            }
            if paused {
                return Err(KubeError::Other(format!(
                    "{w}: the deployment is paused: refusing to restart it"
                )));
            }
            let patch = json!({
                "metadata": {"resourceVersion": rv},
                "spec": {"template": {"metadata": {"annotations": {
                    RESTARTED_AT: now.to_string(),
                    TEMPLATE_VERSION: marker,
                }}}},
            });
            let pp = PatchParams::default();
            let result = match w.kind {
                WorkloadKind::Deployment => {
                    Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                        .patch(&w.name, &pp, &Patch::Merge(&patch))
                        .await
                        .map(drop)
                }
                WorkloadKind::StatefulSet => {
                    Api::<StatefulSet>::namespaced(self.client.clone(), &w.namespace)
                        .patch(&w.name, &pp, &Patch::Merge(&patch))
                        .await
                        .map(drop)
                }
                WorkloadKind::DaemonSet => {
                    Api::<DaemonSet>::namespaced(self.client.clone(), &w.namespace)
                        .patch(&w.name, &pp, &Patch::Merge(&patch))
                        .await
                        .map(drop)
                }
            };
            match result.map_err(|e| api_error(what.clone(), e)) {
                Ok(()) => return Ok(true),
                // Controllers write status all the time: a 409 on a template patch is usually
                // theirs. Re-read and try again; a third conflict is someone else.
                Err(KubeError::Conflict { .. }) if attempt < 2 => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KubeError::Conflict { what })
    }

    /// The resourceVersion, the template's version annotation, and whether it is a paused
    /// Deployment.
    async fn template_marker(
        &self,
        w: &Workload,
    ) -> Result<(Option<String>, Option<String>, bool), KubeError> {
        let what = format!("get {w}");
        let annotation = |t: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>| {
            t.and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(TEMPLATE_VERSION).cloned())
        };
        Ok(match w.kind {
            WorkloadKind::Deployment => {
                let d = Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                    .get(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?;
                let spec = d.spec.as_ref();
                (
                    d.metadata.resource_version.clone(),
                    annotation(spec.map(|s| &s.template)),
                    spec.and_then(|s| s.paused) == Some(true),
                )
            }
            WorkloadKind::StatefulSet => {
                let s = Api::<StatefulSet>::namespaced(self.client.clone(), &w.namespace)
                    .get(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?;
                (
                    s.metadata.resource_version.clone(),
                    annotation(s.spec.as_ref().map(|s| &s.template)),
                    false,
                )
            }
            WorkloadKind::DaemonSet => {
                let d = Api::<DaemonSet>::namespaced(self.client.clone(), &w.namespace)
                    .get(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?;
                (
                    d.metadata.resource_version.clone(),
                    annotation(d.spec.as_ref().map(|s| &s.template)),
                    false,
                )
            }
        })
    }

    /// The rollout status of `w` now.
    pub async fn status(&self, w: &Workload) -> Result<rollout::Status, KubeError> {
        let what = format!("get {w}");
        Ok(match w.kind {
            WorkloadKind::Deployment => rollout::deployment(
                &Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                    .get(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?,
            ),
            WorkloadKind::StatefulSet => rollout::statefulset(
                &Api::<StatefulSet>::namespaced(self.client.clone(), &w.namespace)
                    .get(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?,
            ),
            WorkloadKind::DaemonSet => rollout::daemonset(
                &Api::<DaemonSet>::namespaced(self.client.clone(), &w.namespace)
                    .get(&w.name)
                    .await
                    .map_err(|e| api_error(what, e))?,
            ),
        })
    }

    /// Waits until every workload of a wave is rolled out; the first that fails, or the
    /// deadline, ends the wait with why.
    pub async fn verify(&self, wave: &[Workload]) -> Result<(), KubeError> {
        let start = Instant::now();
        let mut pending: Vec<&Workload> = wave.iter().collect();
        loop {
            let mut still = Vec::new();
            let mut last = String::new();
            for w in pending {
                match self.status(w).await? {
                    rollout::Status::Done => {}
                    rollout::Status::Waiting(why) => {
                        last = format!("{w}: {why}");
                        still.push(w);
                    }
                    rollout::Status::Failed(why) => {
                        return Err(KubeError::Other(format!("{w}: rollout failed: {why}")));
                    }
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if start.elapsed() > self.timeout {
                return Err(KubeError::Other(format!(
                    "rollout not verified within {}s ({last})",
                    self.timeout.as_secs()
                )));
            }
            pending = still;
            tokio::time::sleep(self.poll).await;
        }
    }
}

fn workload(kind: WorkloadKind, namespace: &str, name: Option<String>) -> Workload {
    Workload {
        kind,
        namespace: namespace.to_string(),
        name: name.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> PodSpec {
        serde_json::from_value(v).expect("pod spec")
    }

    #[test]
    fn every_way_a_pod_reads_a_secret_is_a_reference() {
        let cases = [
            json!({"containers": [{"name": "c", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}),
            json!({"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}),
            json!({"containers": [{"name": "c"}], "volumes": [{"name": "v", "secret": {"secretName": "s"}}]}),
            json!({"containers": [{"name": "c"}], "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "s"}}]}}]}),
            json!({"containers": [{"name": "c"}], "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s"}}]}]}),
        ];
        for c in cases {
            assert!(references(&spec(c.clone()), "s"), "{c}");
            assert!(!references(&spec(c.clone()), "other"), "{c}");
        }
        let config_map =
            json!({"containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "s"}}]}]});
        assert!(!references(&spec(config_map), "s"));
    }
}
