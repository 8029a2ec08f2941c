//! A stand-in for the workload controllers (Deployment, StatefulSet, DaemonSet), driven by the
//! test: the fake runs no controllers, so a test says per workload how its next rollouts go
//! ([`Rollout`]), and the fake writes the `status` a real controller would report as the
//! rollout proceeds.
//!
//! A rollout starts when a write changes a registered workload's spec (its `metadata.generation`
//! goes up, as when a pod-template annotation is patched). Progress is counted in reads, not
//! time, so tests are deterministic: each GET of the workload (alone or in a list) is one step.
//! The statuses follow the fields `kubectl rollout status` reads:
//! - Deployment: `observedGeneration`, `replicas`, `updatedReplicas`, `readyReplicas`,
//!   `availableReplicas`, and the `Progressing` condition (`NewReplicaSetAvailable` when done,
//!   `ProgressDeadlineExceeded` when it failed, `DeploymentPaused` while `spec.paused`).
//! - StatefulSet: `observedGeneration`, `replicas`, `readyReplicas`, `updatedReplicas`,
//!   `currentRevision`/`updateRevision` (equal when done).
//! - DaemonSet: `observedGeneration`, `desiredNumberScheduled` (from the seeded status, else 1),
//!   `updatedNumberScheduled`, `numberAvailable`, `numberReady`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::resources::Resource;

/// How the next rollouts of one workload go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// In progress for `after_reads` reads after the spec changed, then complete (every replica
    /// updated, ready and available; `after_reads: 0` is complete at the first read).
    Completes {
        /// Reads that still show the rollout in progress.
        after_reads: u32,
    },
    /// A Deployment whose new pods never become available: the `Progressing` condition turns
    /// `False` with reason `ProgressDeadlineExceeded` at the first read. (StatefulSets and
    /// DaemonSets have no progress deadline upstream: for them this is [`Rollout::Stalls`].)
    ExceedsDeadline,
    /// Never gets past "in progress" (the generation is observed, no replica is updated).
    Stalls,
}

type Key = (&'static str, String, String);

struct Pending {
    reads_left: u32,
}

/// The registered behaviours and the rollouts in progress.
#[derive(Default)]
pub(crate) struct Rollouts {
    behaviours: HashMap<Key, Rollout>,
    pending: HashMap<Key, Pending>,
}

/// Whether the fake simulates rollouts of this kind.
pub(crate) fn is_workload(res: &Resource) -> bool {
    res.group == "apps" && matches!(res.plural, "deployments" | "statefulsets" | "daemonsets")
}

fn key(res: &Resource, namespace: &str, name: &str) -> Key {
    (res.plural, namespace.to_string(), name.to_string())
}

impl Rollouts {
    pub fn set(&mut self, res: &'static Resource, namespace: &str, name: &str, rollout: Rollout) {
        self.behaviours.insert(key(res, namespace, name), rollout);
    }

    /// A write left `after` where `before` was: a changed generation of a registered workload
    /// starts a rollout.
    pub fn written(&mut self, res: &'static Resource, before: Option<&Value>, after: &Value) {
        if !is_workload(res) {
            return;
        }
        let generation = |o: &Value| o["metadata"]["generation"].as_i64();
        if before.and_then(generation) == generation(after) {
            return;
        }
        let (ns, name) = (
            after["metadata"]["namespace"].as_str().unwrap_or_default(),
            after["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let k = key(res, ns, name);
        let Some(behaviour) = self.behaviours.get(&k) else {
            return;
        };
        let reads_left = match behaviour {
            Rollout::Completes { after_reads } => *after_reads,
            Rollout::ExceedsDeadline | Rollout::Stalls => u32::MAX,
        };
        self.pending.insert(k, Pending { reads_left });
    }

    /// One read of `obj`: the status it should show now, if the stand-in changes it.
    pub fn read(&mut self, res: &'static Resource, obj: &Value) -> Option<Value> {
        if !is_workload(res) {
            return None;
        }
        let (ns, name) = (
            obj["metadata"]["namespace"].as_str().unwrap_or_default(),
            obj["metadata"]["name"].as_str().unwrap_or_default(),
        );
        let k = key(res, ns, name);
        let behaviour = *self.behaviours.get(&k)?;
        let pending = self.pending.get_mut(&k)?;
        if res.plural == "deployments" && obj["spec"]["paused"].as_bool() == Some(true) {
            // A paused Deployment observes its spec and does nothing else until resumed.
            return Some(paused_status(obj));
        }
        let status = if pending.reads_left == 0 {
            self.pending.remove(&k);
            complete_status(res, obj)
        } else {
            pending.reads_left = pending.reads_left.saturating_sub(1);
            match (behaviour, res.plural) {
                (Rollout::ExceedsDeadline, "deployments") => deadline_status(obj),
                _ => progressing_status(res, obj),
            }
        };
        Some(status)
    }
}

fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(1)
}

fn desired_daemons(obj: &Value) -> i64 {
    obj["status"]["desiredNumberScheduled"]
        .as_i64()
        .unwrap_or(1)
}

fn revision(obj: &Value) -> String {
    format!(
        "{}-{}",
        obj["metadata"]["name"].as_str().unwrap_or_default(),
        generation(obj)
    )
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message})
}

/// What a finished rollout reports: every replica on the current template.
pub(crate) fn complete_status(res: &Resource, obj: &Value) -> Value {
    let generation = generation(obj);
    match res.plural {
        "deployments" => {
            let n = replicas(obj);
            json!({
                "observedGeneration": generation,
                "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                "conditions": [
                    condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                    condition("Progressing", "True", "NewReplicaSetAvailable", "ReplicaSet has successfully progressed."),
                ],
            })
        }
        "statefulsets" => {
            let n = replicas(obj);
            let rev = revision(obj);
            json!({
                "observedGeneration": generation,
                "replicas": n, "readyReplicas": n, "currentReplicas": n, "updatedReplicas": n,
                "availableReplicas": n, "currentRevision": rev, "updateRevision": rev,
            })
        }
        _ => {
            let n = desired_daemons(obj);
            json!({
                "observedGeneration": generation,
                "desiredNumberScheduled": n, "currentNumberScheduled": n, "numberReady": n,
                "updatedNumberScheduled": n, "numberAvailable": n, "numberMisscheduled": 0,
            })
        }
    }
}

/// A rollout under way: the new generation is observed, no replica is updated yet.
fn progressing_status(res: &Resource, obj: &Value) -> Value {
    let generation = generation(obj);
    match res.plural {
        "deployments" => {
            let n = replicas(obj);
            json!({
                "observedGeneration": generation,
                "replicas": n + 1, "updatedReplicas": 1, "readyReplicas": n, "availableReplicas": n,
                "unavailableReplicas": 1,
                "conditions": [
                    condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                    condition("Progressing", "True", "ReplicaSetUpdated", "ReplicaSet is progressing."),
                ],
            })
        }
        "statefulsets" => {
            let n = replicas(obj);
            json!({
                "observedGeneration": generation,
                "replicas": n, "readyReplicas": n - 1, "currentReplicas": n - 1, "updatedReplicas": 0,
                "currentRevision": format!("{}-previous", obj["metadata"]["name"].as_str().unwrap_or_default()),
                "updateRevision": revision(obj),
            })
        }
        _ => {
            let n = desired_daemons(obj);
            json!({
                "observedGeneration": generation,
                "desiredNumberScheduled": n, "currentNumberScheduled": n, "numberReady": n,
                "updatedNumberScheduled": 0, "numberAvailable": n, "numberMisscheduled": 0,
            })
        }
    }
}

fn deadline_status(obj: &Value) -> Value {
    let n = replicas(obj);
    json!({
        "observedGeneration": generation(obj),
        "replicas": n + 1, "updatedReplicas": 1, "readyReplicas": n, "availableReplicas": n,
        "unavailableReplicas": 1,
        "conditions": [
            condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
            condition("Progressing", "False", "ProgressDeadlineExceeded",
                      "ReplicaSet has timed out progressing."),
        ],
    })
}

fn paused_status(obj: &Value) -> Value {
    let mut status = obj["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    status["observedGeneration"] = json!(generation(obj));
    status["conditions"] = json!([condition(
        "Progressing",
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused"
    )]);
    status
}
