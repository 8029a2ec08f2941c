//! Whether a restarted workload runs its new pod template everywhere, decided as
//! `kubectl rollout status` decides it (its `DeploymentStatusViewer`, `StatefulSetStatusViewer`
//! and `DaemonSetStatusViewer`). kube-runtime's `is_deployment_completed` is not used: it ignores
//! `observedGeneration`, so it reports the *previous* rollout as complete before the controller
//! has even seen the new template.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

/// The state of one rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every replica runs the current template and is available.
    Done,
    /// Still rolling; why.
    Waiting(String),
    /// It will not finish by itself; why.
    Failed(String),
}

/// A Deployment: the controller has observed the spec, the `Progressing` condition has not
/// timed out, every replica is updated, no old replica is left, every updated one is available.
pub fn deployment(d: &Deployment) -> Status {
    let spec = d.spec.as_ref();
    if spec.and_then(|s| s.paused) == Some(true) {
        return Status::Failed("the deployment is paused".into());
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = d.status.as_ref() else {
        return Status::Waiting("waiting for the deployment spec update to be observed".into());
    };
    if generation > status.observed_generation.unwrap_or(0) {
        return Status::Waiting("waiting for the deployment spec update to be observed".into());
    }
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if progressing.and_then(|c| c.reason.as_deref()) == Some("ProgressDeadlineExceeded") {
        return Status::Failed("the deployment exceeded its progress deadline".into());
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if let Some(want) = spec.and_then(|s| s.replicas)
        && updated < want
    {
        return Status::Waiting(format!(
            "{updated} out of {want} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return Status::Waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Status::Waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Status::Done
}

/// A StatefulSet with the RollingUpdate strategy (the default): observed, every replica ready,
/// the partition (if any) updated, otherwise the update revision current.
pub fn statefulset(s: &StatefulSet) -> Status {
    let spec = s.spec.as_ref();
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    if let Some(kind) = strategy.and_then(|u| u.type_.as_deref())
        && kind != "RollingUpdate"
    {
        return Status::Failed(format!(
            "update strategy {kind}: pods pick up a new template only when deleted"
        ));
    }
    let Some(status) = s.status.as_ref() else {
        return Status::Waiting("waiting for the statefulset spec update to be observed".into());
    };
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return Status::Waiting("waiting for the statefulset spec update to be observed".into());
    }
    let want = spec.and_then(|s| s.replicas);
    if let Some(want) = want
        && status.ready_replicas.unwrap_or(0) < want
    {
        return Status::Waiting(format!(
            "waiting for {} pods to be ready",
            want - status.ready_replicas.unwrap_or(0)
        ));
    }
    if let Some(partition) = strategy
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
    {
        if let Some(want) = want
            && status.updated_replicas.unwrap_or(0) < want - partition
        {
            return Status::Waiting(format!(
                "waiting for partitioned roll out to finish: {} out of {} new pods have been updated",
                status.updated_replicas.unwrap_or(0),
                want - partition
            ));
        }
        return Status::Done;
    }
    if status.update_revision != Some(status.current_revision.clone().unwrap_or_default()) {
        return Status::Waiting(format!(
            "waiting for statefulset rolling update to complete {} pods at revision {}",
            status.updated_replicas.unwrap_or(0),
            status.update_revision.as_deref().unwrap_or("?")
        ));
    }
    Status::Done
}

/// A DaemonSet with the RollingUpdate strategy: observed, every scheduled pod updated and
/// available.
pub fn daemonset(d: &DaemonSet) -> Status {
    if let Some(kind) = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        && kind != "RollingUpdate"
    {
        return Status::Failed(format!(
            "update strategy {kind}: pods pick up a new template only when deleted"
        ));
    }
    let Some(status) = d.status.as_ref() else {
        return Status::Waiting("waiting for the daemon set spec update to be observed".into());
    };
    if d.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Status::Waiting("waiting for the daemon set spec update to be observed".into());
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        return Status::Waiting(format!(
            "{updated} out of {desired} new pods have been updated"
        ));
    }
    let available = status.number_available.unwrap_or(0);
    if available < desired {
        return Status::Waiting(format!(
            "{available} of {desired} updated pods are available"
        ));
    }
    Status::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(generation: i64, spec_replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": generation},
            "spec": {"replicas": spec_replicas, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("deployment")
    }

    #[test]
    fn a_deployment_is_done_only_once_the_new_generation_is_observed() {
        // Everything available, but for the previous generation: kube-runtime would say done.
        let stale = deploy(
            3,
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert!(matches!(deployment(&stale), Status::Waiting(_)));
        let done = deploy(
            3,
            2,
            json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(deployment(&done), Status::Done);
    }

    #[test]
    fn a_deployment_waits_for_updated_old_and_available_replicas() {
        let cases = [
            (
                json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 3}),
                "1 out of 2 new replicas",
            ),
            (
                json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
                "1 old replicas",
            ),
            (
                json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
                "1 of 2 updated",
            ),
        ];
        for (status, why) in cases {
            match deployment(&deploy(1, 2, status)) {
                Status::Waiting(w) => assert!(w.contains(why), "{w}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_deadline_or_a_pause_fails_the_rollout() {
        let timed_out = deploy(
            2,
            1,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                   "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert!(
            matches!(deployment(&timed_out), Status::Failed(m) if m.contains("progress deadline"))
        );
        let mut paused = deploy(1, 1, json!({"observedGeneration": 1}));
        paused.spec.as_mut().expect("spec").paused = Some(true);
        assert!(matches!(deployment(&paused), Status::Failed(m) if m.contains("paused")));
    }

    #[test]
    fn statefulsets_follow_revisions_and_partitions() {
        let sts = |spec: serde_json::Value, status: serde_json::Value| -> StatefulSet {
            serde_json::from_value(json!({"metadata": {"name": "s", "generation": 2},
                "spec": spec, "status": status}))
            .expect("sts")
        };
        let base = json!({"replicas": 3, "selector": {}, "template": {}, "serviceName": "s"});
        let rolling = sts(
            base.clone(),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
            "updatedReplicas": 1, "currentRevision": "s-1", "updateRevision": "s-2"}),
        );
        assert!(matches!(statefulset(&rolling), Status::Waiting(_)));
        let done = sts(
            base.clone(),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
            "updatedReplicas": 3, "currentRevision": "s-2", "updateRevision": "s-2"}),
        );
        assert_eq!(statefulset(&done), Status::Done);
        let mut partitioned = base.clone();
        partitioned["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}});
        let part = sts(
            partitioned,
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
            "updatedReplicas": 1, "currentRevision": "s-1", "updateRevision": "s-2"}),
        );
        assert_eq!(
            statefulset(&part),
            Status::Done,
            "one of three above the partition"
        );
        let mut on_delete = base;
        on_delete["updateStrategy"] = json!({"type": "OnDelete"});
        assert!(matches!(
            statefulset(&sts(on_delete, json!({}))),
            Status::Failed(_)
        ));
    }

    #[test]
    fn daemonsets_count_scheduled_pods() {
        let ds = |status: serde_json::Value| -> DaemonSet {
            serde_json::from_value(json!({"metadata": {"name": "d", "generation": 4},
                "spec": {"selector": {}, "template": {}}, "status": status}))
            .expect("ds")
        };
        let base = json!({"observedGeneration": 4, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
            "numberReady": 3, "numberMisscheduled": 0});
        let mut waiting = base.clone();
        waiting["updatedNumberScheduled"] = json!(2);
        waiting["numberAvailable"] = json!(3);
        assert!(matches!(daemonset(&ds(waiting)), Status::Waiting(_)));
        let mut done = base.clone();
        done["updatedNumberScheduled"] = json!(3);
        done["numberAvailable"] = json!(3);
        assert_eq!(daemonset(&ds(done)), Status::Done);
        let mut unobserved = base;
        unobserved["observedGeneration"] = json!(3);
        assert!(matches!(daemonset(&ds(unobserved)), Status::Waiting(_)));
    }
}
