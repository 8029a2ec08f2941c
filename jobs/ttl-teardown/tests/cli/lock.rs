//! The run lock as the harness holds it, and the retry pass, over the fake Kubernetes API and a
//! real Kafka broker: a run longer than its Lease renews it; a run whose Lease is taken over
//! stops deleting and ends `partial`; a retryable failure is retried in a later pass with its
//! own intent and outcome.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use testbed::fakekube::Fault;

use crate::execute::{Bed, tags};
use crate::text;

/// A Kubernetes-only config with a short Lease and one retry pass `retry_interval` later.
fn config(bed: &Bed, lease: &str, retry_interval: &str) -> PathBuf {
    std::fs::copy(
        crate::repo_root().join("examples/whitelist.yaml"),
        bed.dir.path().join("whitelist.yaml"),
    )
    .expect("copy whitelist");
    let kubeconfig = bed
        .kube
        .write_kubeconfig(bed.dir.path())
        .expect("kubeconfig");
    let text = format!(
        "kubernetes:\n  kubeconfig: {kubeconfig}\n  cluster_name: test\nkafka:\n  delivery_timeout: 5s\njob:\n  whitelist: whitelist.yaml\n  sources:\n    kubernetes: {{namespace_selector: \"team=lock\"}}\n  caps: {{max_percent: 100}}\n  lock: {{duration: {lease}}}\n  retry: {{passes: 1, interval: {retry_interval}}}\n  waiting: {{timeout: 5s, interval: 100ms}}\n",
        kubeconfig = kubeconfig.display(),
    );
    let path = bed.dir.path().join("lock-config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A namespace selected by the config (not itself managed: no annotations) holding expired,
/// already-warned deployments named `names`.
fn seed(bed: &Bed, names: &[&str]) {
    bed.kube
        .insert(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "lock-ns", "labels": {"team": "lock"}}}))
        .expect("namespace");
    let annotations: serde_json::Map<String, Value> = tags(-5, true)
        .into_iter()
        .map(|(k, v)| (format!("ttl.governance.io/{k}"), Value::String(v)))
        .collect();
    for name in names {
        bed.kube
            .insert(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "lock-ns", "annotations": annotations}}))
            .expect("deployment");
    }
}

fn audit_of(events: &[Value], resource: &str) -> Vec<(String, u64, String)> {
    events
        .iter()
        .filter(|e| e["resource"] == resource)
        .map(|e| {
            (
                e["phase"].as_str().unwrap_or_default().to_string(),
                e["attempt"].as_u64().unwrap_or_default(),
                e["result"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn lease_writes(bed: &Bed) -> usize {
    bed.kube
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/leases/ttl-teardown") && r.method == "PUT")
        .count()
}

#[tokio::test]
async fn a_run_longer_than_its_lease_renews_it_and_retries_a_retryable_failure() {
    let bed = Bed::start().await;
    seed(&bed, &["web"]);
    // The first delete of `web` meets a conflict (409: retryable); the retry pass, 5 s later,
    // goes through. The run lasts longer than its 3 s Lease.
    bed.kube.inject(
        Fault::new(409)
            .method("DELETE")
            .resource("deployments")
            .name("web")
            .times(1),
    );
    let config = config(&bed, "3s", "5s");
    let out = bed.run(&config, true).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("result event");
    assert_eq!(event["status"], "success", "{event}");
    assert!(event["duration_seconds"].as_f64().unwrap_or_default() > 5.0);
    assert_eq!(event["details"]["retries"], 1, "{event}");
    assert!(
        bed.kube
            .get("deployments", Some("lock-ns"), "web")
            .is_none(),
        "deleted on the retry"
    );
    let audit = bed.events("resource-deleted").await;
    assert_eq!(
        audit_of(&audit, "k8s:deployment/lock-ns/web"),
        [
            ("intent".to_string(), 1, String::new()),
            ("outcome".to_string(), 1, "failed".to_string()),
            ("intent".to_string(), 2, String::new()),
            ("outcome".to_string(), 2, "deleted".to_string()),
        ]
    );
    // Renewed on the system clock every third of the duration while it worked, then released.
    assert!(
        lease_writes(&bed) >= 4,
        "renewals plus the release: {} writes",
        lease_writes(&bed)
    );
    let lease = bed
        .kube
        .get("leases", Some("governance-jobs"), "ttl-teardown")
        .expect("lease");
    assert_eq!(
        lease["spec"]["holderIdentity"],
        Value::Null,
        "released: {lease}"
    );
    assert_eq!(
        lease["spec"]["leaseTransitions"], 0,
        "never changed hands: {lease}"
    );
}

#[tokio::test]
async fn a_lost_lease_stops_every_further_deletion_and_the_run_is_partial() {
    let bed = Bed::start().await;
    seed(&bed, &["first", "second"]);
    // `first` fails once (retryable) and waits for the retry pass, 6 s later; `second` is
    // deleted in the first pass. Meanwhile another run takes the Lease over.
    bed.kube.inject(
        Fault::new(409)
            .method("DELETE")
            .resource("deployments")
            .name("first")
            .times(1),
    );
    let config = config(&bed, "3s", "6s");
    let run = bed.run(&config, true);
    let steal = async {
        // Once the first pass is over (`second` is gone), overwrite the Lease as a run that took
        // it over would.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while bed
            .kube
            .get("deployments", Some("lock-ns"), "second")
            .is_some()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the first pass never ran"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut lease = bed
            .kube
            .get("leases", Some("governance-jobs"), "ttl-teardown")
            .expect("the run holds the lease");
        lease["spec"]["holderIdentity"] = json!("another-run");
        bed.kube.insert(lease).expect("take the lease over");
    };
    let (out, ()) = tokio::join!(run, steal);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "partial, not refused: {stdout}\n{stderr}"
    );
    let event: Value = serde_json::from_str(&stdout).expect("result event");
    assert_eq!(event["status"], "partial", "{event}");
    assert!(
        event["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .any(|e| e.as_str().unwrap_or_default().contains("run lock")),
        "{event}"
    );
    assert!(
        bed.kube
            .get("deployments", Some("lock-ns"), "first")
            .is_some(),
        "nothing is deleted without the lock"
    );
    let audit = bed.events("resource-deleted").await;
    let first = audit_of(&audit, "k8s:deployment/lock-ns/first");
    assert_eq!(
        first,
        [
            ("intent".to_string(), 1, String::new()),
            ("outcome".to_string(), 1, "failed".to_string()),
        ],
        "no second intent once the lock is lost"
    );
    let lease = bed
        .kube
        .get("leases", Some("governance-jobs"), "ttl-teardown")
        .expect("lease");
    assert_eq!(
        lease["spec"]["holderIdentity"], "another-run",
        "not stolen back"
    );
}
