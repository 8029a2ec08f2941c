//! The Kubernetes provider and the run lock against the fake API server, over real HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use testbed::fakekube::{FakeKube, Fault};
use ttl_teardown::inventory::{Resource, Scope};
use ttl_teardown::kube::{KubeProvider, KubeSource};
use ttl_teardown::lease::{LockError, RunLock};
use ttl_teardown::provider::{Removal, State};

const PREFIX: &str = "ttl.governance.io/";
const OLD: &str = "2020-01-02T03:04:05Z";

/// Annotations that make a resource eligible (the teardown decision itself is the planner's).
fn eligible() -> Value {
    json!({
        "ttl.governance.io/environment": "dev",
        "ttl.governance.io/owner": "a@b.io",
        "ttl.governance.io/project": "preview",
        "ttl.governance.io/cost-center": "cc-1",
        "ttl.governance.io/ttl": "7d",
        "ttl.governance.io/auto-teardown": "true",
        "ttl.governance.io/data-class": "internal",
    })
}

fn with(mut annotations: Value, key: &str, value: &str) -> Value {
    annotations[format!("{PREFIX}{key}")] = json!(value);
    annotations
}

fn namespace(fake: &FakeKube, name: &str, labels: Value, annotations: Value) {
    fake.insert(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels, "annotations": annotations, "creationTimestamp": OLD},
    }))
    .expect("seed namespace");
}

fn object(fake: &FakeKube, kind: &str, ns: &str, name: &str, labels: Value, annotations: Value) {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    fake.insert(json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations, "creationTimestamp": OLD},
    }))
    .expect("seed object");
}

fn provider(fake: &FakeKube, source: &KubeSource) -> KubeProvider {
    KubeProvider::new(fake.client().expect("client"), "dev-cluster", source)
}

fn ids(resources: &[Resource]) -> Vec<&str> {
    resources.iter().map(|r| r.id.as_str()).collect()
}

fn find<'a>(resources: &'a [Resource], id: &str) -> &'a Resource {
    resources
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("{id} not listed; listed: {:?}", ids(resources)))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `preview-123` (label team=a) with an annotated deployment and service, an annotated and an
/// unannotated config map; `other` (team=b) with an annotated deployment.
fn seed_preview(fake: &FakeKube) {
    namespace(
        fake,
        "preview-123",
        json!({"team": "a"}),
        with(eligible(), "ttl", "3d")
            .as_object()
            .cloned()
            .map(|mut m| {
                m.insert("unrelated.io/note".into(), json!("ignored"));
                Value::Object(m)
            })
            .expect("object"),
    );
    object(
        fake,
        "Deployment",
        "preview-123",
        "web",
        json!({"app": "web"}),
        eligible(),
    );
    object(
        fake,
        "Service",
        "preview-123",
        "web",
        json!({"app": "web"}),
        eligible(),
    );
    object(
        fake,
        "ConfigMap",
        "preview-123",
        "settings",
        json!({"app": "db"}),
        eligible(),
    );
    object(
        fake,
        "ConfigMap",
        "preview-123",
        "plain",
        json!({"app": "web"}),
        json!({"unrelated.io/x": "y"}),
    );
    namespace(fake, "other", json!({"team": "b"}), eligible());
    object(fake, "Deployment", "other", "api", json!({}), eligible());
}

fn team_a() -> KubeSource {
    KubeSource {
        namespace_selector: "team=a".to_string(),
        ..KubeSource::default()
    }
}

#[tokio::test]
async fn list_maps_namespaces_and_annotated_objects() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let listed = provider(&fake, &team_a()).list().await.expect("list");

    assert_eq!(
        ids(&listed),
        [
            "k8s:preview-123",
            "k8s:configmap/preview-123/settings",
            "k8s:deployment/preview-123/web",
            "k8s:service/preview-123/web",
        ],
        "the unannotated config map and the other team's namespace are not listed"
    );
    let ns = find(&listed, "k8s:preview-123");
    let old: Timestamp = OLD.parse().expect("timestamp");
    let ns_labels = map(&[
        ("kubernetes.io/metadata.name", "preview-123"),
        ("team", "a"),
    ]);
    assert_eq!(ns.kind, "k8s-namespace");
    assert_eq!(ns.name, "preview-123");
    assert_eq!(ns.namespace.as_deref(), Some("preview-123"));
    assert_eq!(
        ns.scope,
        Scope::Kubernetes {
            cluster: "dev-cluster".into()
        }
    );
    assert_eq!(
        ns.tags,
        map(&[
            ("auto-teardown", "true"),
            ("cost-center", "cc-1"),
            ("data-class", "internal"),
            ("environment", "dev"),
            ("owner", "a@b.io"),
            ("project", "preview"),
            ("ttl", "3d"),
        ]),
        "prefix stripped, other annotations ignored"
    );
    assert_eq!(ns.labels, ns_labels);
    assert_eq!(ns.namespace_labels, ns_labels);
    assert_eq!(ns.created_fallback, Some(old));
    assert_eq!(ns.state.as_deref(), Some("Active"));
    assert_eq!(
        ns.wait_for,
        [
            "k8s:configmap/preview-123/settings",
            "k8s:deployment/preview-123/web",
            "k8s:service/preview-123/web",
        ]
    );
    assert!(ns.tags_unreadable.is_none());

    let web = find(&listed, "k8s:deployment/preview-123/web");
    assert_eq!(web.kind, "k8s-deployment");
    assert_eq!(web.name, "web");
    assert_eq!(web.namespace.as_deref(), Some("preview-123"));
    assert_eq!(web.tags.get("ttl").map(String::as_str), Some("7d"));
    assert_eq!(web.tags.len(), 7);
    assert_eq!(web.labels, map(&[("app", "web")]));
    assert_eq!(web.namespace_labels, ns_labels);
    assert_eq!(web.created_fallback, Some(old));
    assert_eq!(web.state.as_deref(), Some("present"));
    assert!(web.wait_for.is_empty());
    assert_eq!(
        find(&listed, "k8s:service/preview-123/web").kind,
        "k8s-service"
    );
    assert_eq!(
        find(&listed, "k8s:configmap/preview-123/settings").kind,
        "k8s-configmap"
    );
}

#[tokio::test]
async fn list_honours_object_selector_and_kinds() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let source = KubeSource {
        object_selector: "app in (web)".to_string(),
        kinds: vec!["k8s-deployment".into(), "k8s-configmap".into()],
        ..team_a()
    };
    let listed = provider(&fake, &source).list().await.expect("list");
    assert_eq!(
        ids(&listed),
        ["k8s:preview-123", "k8s:deployment/preview-123/web"],
        "services are not a configured kind; settings has app=db"
    );
    assert_eq!(
        find(&listed, "k8s:preview-123").wait_for,
        ["k8s:deployment/preview-123/web"]
    );
    // No service was even asked for.
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/services"))
    );
}

#[tokio::test]
async fn default_source_lists_every_namespace_and_terminating_ones_with_their_phase() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    fake.insert(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "going", "creationTimestamp": OLD},
        "status": {"phase": "Terminating"},
    }))
    .expect("seed");
    let listed = provider(&fake, &KubeSource::default())
        .list()
        .await
        .expect("list");
    let namespaces: Vec<&str> = listed
        .iter()
        .filter(|r| r.kind == "k8s-namespace")
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        namespaces,
        [
            "default",
            "going",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "other",
            "preview-123"
        ]
    );
    assert_eq!(
        find(&listed, "k8s:going").state.as_deref(),
        Some("Terminating")
    );
    assert!(
        find(&listed, "k8s:kube-system").tags.is_empty(),
        "unannotated namespaces are listed with no tags (the planner reports them)"
    );
    assert_eq!(
        find(&listed, "k8s:other").wait_for,
        ["k8s:deployment/other/api"]
    );
}

#[tokio::test]
async fn list_follows_continue_tokens() {
    let fake = FakeKube::start().await.expect("fake");
    namespace(&fake, "big", json!({"team": "a"}), eligible());
    for i in 0..1100 {
        object(
            &fake,
            "ConfigMap",
            "big",
            &format!("cm-{i:04}"),
            json!({}),
            eligible(),
        );
    }
    let source = KubeSource {
        kinds: vec!["k8s-configmap".into()],
        ..team_a()
    };
    let listed = provider(&fake, &source).list().await.expect("list");
    assert_eq!(listed.len(), 1101);
    assert_eq!(find(&listed, "k8s:big").wait_for.len(), 1100);
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/configmaps")
        .collect();
    assert_eq!(pages.len(), 3, "1100 objects in pages of 500: {pages:?}");
    assert!(pages.iter().all(|p| p.query.contains("limit=500")));
    assert!(pages[1].query.contains("continue="));
}

#[tokio::test]
async fn set_tags_merges_prefixed_annotations() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = provider(&fake, &team_a());
    let listed = p.list().await.expect("list");
    let web = find(&listed, "k8s:deployment/preview-123/web");
    p.set_tags(
        web,
        &[(
            "ttl-notified-stage".into(),
            "48h@2026-11-25T00:00:00Z".into(),
        )],
    )
    .await
    .expect("set tags");

    let stored = fake
        .get("deployments", Some("preview-123"), "web")
        .expect("still there");
    let annotations = &stored["metadata"]["annotations"];
    assert_eq!(
        annotations["ttl.governance.io/ttl-notified-stage"],
        "48h@2026-11-25T00:00:00Z"
    );
    assert_eq!(
        annotations["ttl.governance.io/owner"], "a@b.io",
        "other annotations kept"
    );
    let again = p.list().await.expect("list");
    assert_eq!(
        find(&again, "k8s:deployment/preview-123/web")
            .tags
            .get("ttl-notified-stage")
            .map(String::as_str),
        Some("48h@2026-11-25T00:00:00Z")
    );
    // A namespace too, and nothing to write means no request.
    let ns = find(&listed, "k8s:preview-123");
    p.set_tags(ns, &[("ttl-notified-stage".into(), "24h@x".into())])
        .await
        .expect("set tags");
    assert_eq!(
        fake.get("namespaces", None, "preview-123").expect("ns")["metadata"]["annotations"]["ttl.governance.io/ttl-notified-stage"],
        "24h@x"
    );
    let writes = fake.requests().iter().filter(|r| r.is_write()).count();
    p.set_tags(ns, &[]).await.expect("no tags");
    assert_eq!(
        fake.requests().iter().filter(|r| r.is_write()).count(),
        writes
    );
}

#[tokio::test]
async fn remove_deployment_is_idempotent_and_state_follows() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = provider(&fake, &team_a());
    let listed = p.list().await.expect("list");
    let web = find(&listed, "k8s:deployment/preview-123/web");
    assert_eq!(
        p.state(web).await.expect("state"),
        State::Present("present".into())
    );

    assert_eq!(p.remove(web).await.expect("remove"), Removal::Done);
    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_none()
    );
    assert!(
        fake.get("services", Some("preview-123"), "web").is_some(),
        "only that object"
    );
    assert_eq!(p.state(web).await.expect("state"), State::Gone);
    assert_eq!(
        p.remove(web).await.expect("second remove"),
        Removal::Done,
        "idempotent"
    );
    let deletes = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "the second remove found it gone on re-read");
}

#[tokio::test]
async fn remove_namespace_cascades_and_is_pending_until_gone() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = provider(&fake, &team_a());
    let listed = p.list().await.expect("list");
    let ns = find(&listed, "k8s:preview-123");
    assert_eq!(
        p.state(ns).await.expect("state"),
        State::Present("Active".into())
    );
    assert_eq!(
        p.remove(ns).await.expect("remove"),
        Removal::Pending {
            state: "Terminating".into()
        }
    );
    assert!(fake.get("namespaces", None, "preview-123").is_none());
    assert!(
        fake.list("configmaps", Some("preview-123")).is_empty(),
        "unmanaged content goes with it"
    );
    assert!(fake.list("deployments", Some("preview-123")).is_empty());
    assert!(
        fake.get("deployments", Some("other"), "api").is_some(),
        "other namespaces untouched"
    );
    assert_eq!(p.state(ns).await.expect("state"), State::Gone);
    assert_eq!(p.remove(ns).await.expect("again"), Removal::Done);
}

#[tokio::test]
async fn remove_refuses_when_annotations_changed_since_listing() {
    for (key, value, says) in [
        ("environment", "prod", "production"),
        ("data-class", "restricted", "never torn down"),
        ("auto-teardown", "false", "not \"true\""),
    ] {
        let fake = FakeKube::start().await.expect("fake");
        seed_preview(&fake);
        let p = provider(&fake, &team_a());
        let listed = p.list().await.expect("list");
        let web = find(&listed, "k8s:deployment/preview-123/web");
        // The owner re-annotates between plan and delete.
        object(
            &fake,
            "Deployment",
            "preview-123",
            "web",
            json!({"app": "web"}),
            with(eligible(), key, value),
        );

        let e = p.remove(web).await.expect_err("refused");
        assert!(!e.retryable, "{key}: a refusal is final");
        assert_eq!(e.action, "delete");
        assert_eq!(e.resource, "k8s:deployment/preview-123/web");
        assert!(e.message.contains("refused"), "{e}");
        assert!(e.message.contains(&format!("{PREFIX}{key}")), "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(
            fake.get("deployments", Some("preview-123"), "web")
                .is_some(),
            "{key}: not deleted"
        );
        assert!(!fake.requests().iter().any(|r| r.method == "DELETE"));
    }
}

#[tokio::test]
async fn remove_namespace_refuses_when_it_holds_a_protected_object() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    // Outside the object selector, so not even listed: still it would die with the namespace.
    object(
        &fake,
        "ConfigMap",
        "preview-123",
        "keep-me",
        json!({"app": "db"}),
        with(eligible(), "environment", "prod"),
    );
    let source = KubeSource {
        object_selector: "app=web".into(),
        ..team_a()
    };
    let p = provider(&fake, &source);
    let listed = p.list().await.expect("list");
    let e = p
        .remove(find(&listed, "k8s:preview-123"))
        .await
        .expect_err("refused");
    assert!(!e.retryable);
    assert!(
        e.message
            .contains("contains k8s:configmap/preview-123/keep-me"),
        "{e}"
    );
    assert!(e.message.contains("production"), "{e}");
    assert!(fake.get("namespaces", None, "preview-123").is_some());
    assert!(
        fake.get("configmaps", Some("preview-123"), "keep-me")
            .is_some()
    );
}

#[tokio::test]
async fn cluster_namespaces_are_never_deleted() {
    let fake = FakeKube::start().await.expect("fake");
    // Even annotated as eligible, as if the whitelist had been misconfigured.
    for ns in ["kube-system", "default", "kube-public", "kube-node-lease"] {
        fake.insert(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "annotations": eligible()},
        }))
        .expect("annotate");
    }
    object(
        &fake,
        "ConfigMap",
        "kube-system",
        "coredns",
        json!({}),
        eligible(),
    );
    let p = provider(&fake, &KubeSource::default());
    let listed = p.list().await.expect("list");
    for id in [
        "k8s:kube-system",
        "k8s:default",
        "k8s:kube-public",
        "k8s:kube-node-lease",
        "k8s:configmap/kube-system/coredns",
    ] {
        let e = p.remove(find(&listed, id)).await.expect_err("refused");
        assert!(!e.retryable, "{id}");
        assert!(e.message.contains("never deleted"), "{id}: {e}");
    }
    assert!(
        !fake.requests().iter().any(|r| r.method == "DELETE"),
        "refused before any request"
    );
    assert!(fake.get("namespaces", None, "kube-system").is_some());
}

#[tokio::test]
async fn api_errors_map_to_provider_errors() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = provider(&fake, &team_a());
    let listed = p.list().await.expect("list");
    let web = find(&listed, "k8s:deployment/preview-123/web");

    // The object changed between the re-read and the delete: the precondition answers 409.
    fake.inject(Fault::new(409).method("DELETE").times(1));
    let e = p.remove(web).await.expect_err("conflict");
    assert!(e.retryable, "the next attempt re-reads: {e}");
    assert!(e.message.contains("changed since it was re-read"), "{e}");

    fake.inject(Fault::new(403).method("DELETE").times(1));
    let e = p.remove(web).await.expect_err("forbidden");
    assert!(!e.retryable);
    assert!(e.message.starts_with("403 Forbidden"), "{e}");

    fake.inject(Fault::new(500).resource("namespaces").times(1));
    let e = p.list().await.expect_err("server error");
    assert!(e.retryable);
    assert_eq!(e.action, "list namespaces");
    assert_eq!(e.resource, "k8s:dev-cluster");
    assert!(e.message.starts_with("500 InternalError"), "{e}");

    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_some(),
        "nothing deleted by failed calls"
    );
    assert_eq!(p.remove(web).await.expect("works again"), Removal::Done);
}

#[tokio::test]
async fn resources_of_another_cluster_are_refused() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = provider(&fake, &team_a());
    let mut web = find(
        &p.list().await.expect("list"),
        "k8s:deployment/preview-123/web",
    )
    .clone();
    web.scope = Scope::Kubernetes {
        cluster: "prod-cluster".into(),
    };
    let e = p.remove(&web).await.expect_err("wrong cluster");
    assert!(!e.retryable);
    assert!(e.message.contains("k8s:prod-cluster"), "{e}");
    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_some()
    );
}

#[test]
fn source_validation_names_fields() {
    assert!(KubeSource::default().validate().is_empty());
    let bad = KubeSource {
        annotation_prefix: "ttl".into(),
        kinds: vec!["k8s-deployment".into(), "k8s-secret".into()],
        ..KubeSource::default()
    };
    let problems = bad.validate();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("annotation_prefix:"));
    assert!(problems[1].starts_with("kinds[1]: unknown kind \"k8s-secret\""));
}

// ---------------------------------------------------------------------------------------------
// Run lock.

const LOCK_NS: &str = "governance-jobs";
const LOCK: &str = "ttl-teardown";
const TEN_MIN: Duration = Duration::from_secs(600);

fn t0() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().expect("timestamp")
}

fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

async fn lock_fake() -> FakeKube {
    let fake = FakeKube::start().await.expect("fake");
    namespace(&fake, LOCK_NS, json!({}), json!({}));
    fake
}

async fn acquire(fake: &FakeKube, holder: &str, now: Timestamp) -> Result<RunLock, LockError> {
    RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        holder,
        TEN_MIN,
        now,
    )
    .await
}

fn stored_holder(fake: &FakeKube) -> Option<String> {
    fake.get("leases", Some(LOCK_NS), LOCK)
        .expect("lease exists")["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

fn held_by(e: LockError) -> (String, Option<Timestamp>) {
    match e {
        LockError::Held { holder, until, .. } => (holder, until),
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test]
async fn first_acquire_wins_and_a_second_holder_is_told_who_holds_it() {
    let fake = lock_fake().await;
    let lock = acquire(&fake, "run-1", t0()).await.expect("free lease");
    assert_eq!(lock.holder(), "run-1");
    assert_eq!(lock.lease(), "governance-jobs/ttl-teardown");
    assert_eq!(lock.valid_until(), at(10));
    let stored = fake.get("leases", Some(LOCK_NS), LOCK).expect("created");
    assert_eq!(stored["spec"]["holderIdentity"], "run-1");
    assert_eq!(stored["spec"]["leaseDurationSeconds"], 600);
    assert_eq!(
        stored["spec"]["renewTime"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok()),
        Some(t0())
    );

    let e = acquire(&fake, "run-2", at(5)).await.expect_err("held");
    assert!(e.to_string().contains("held by \"run-1\""), "{e}");
    assert_eq!(held_by(e), ("run-1".to_string(), Some(at(10))));
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-1"));
}

#[tokio::test]
async fn concurrent_acquires_of_an_absent_lease_have_one_winner() {
    let fake = lock_fake().await;
    let (a, b) = tokio::join!(acquire(&fake, "run-a", t0()), acquire(&fake, "run-b", t0()));
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("exactly one must win: {a:?} / {b:?}"),
    };
    assert_eq!(held_by(loser).0, winner.holder());
    assert_eq!(stored_holder(&fake).as_deref(), Some(winner.holder()));
    let creates = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/leases"))
        .count();
    assert_eq!(
        creates, 2,
        "both saw it absent; the API refused the second create (409)"
    );
}

#[tokio::test]
async fn concurrent_takeovers_of_an_expired_lease_have_one_winner() {
    let fake = lock_fake().await;
    drop(acquire(&fake, "dead-pod", t0()).await.expect("taken"));
    let later = at(11);
    let (a, b) = tokio::join!(
        acquire(&fake, "run-a", later),
        acquire(&fake, "run-b", later)
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("exactly one must win: {a:?} / {b:?}"),
    };
    assert_eq!(held_by(loser).0, winner.holder());
    let replaces = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/leases/ttl-teardown"))
        .count();
    assert_eq!(
        replaces, 2,
        "both read the same resourceVersion; the stale replace got 409"
    );
    let stored = fake.get("leases", Some(LOCK_NS), LOCK).expect("lease");
    assert_eq!(stored["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn a_stale_copy_cannot_renew() {
    let fake = lock_fake().await;
    let mut first = acquire(&fake, "run-1", t0()).await.expect("taken");
    // The same run id takes it again (a retried start): the first copy is now stale.
    let mut second = acquire(&fake, "run-1", at(1)).await.expect("ours already");
    let e = first.renew(at(2)).await.expect_err("stale resourceVersion");
    assert!(matches!(e, LockError::Lost { .. }), "{e:?}");
    assert!(e.to_string().contains("409"), "{e}");
    second.renew(at(2)).await.expect("current copy renews");
    assert_eq!(second.valid_until(), at(12));
}

#[tokio::test]
async fn a_dead_holder_expires_and_is_taken_over() {
    let fake = lock_fake().await;
    let mut dead = acquire(&fake, "dead-pod", t0()).await.expect("taken");
    dead.renew(at(4))
        .await
        .expect("renewed once, then the pod died");

    let e = acquire(&fake, "run-2", at(13))
        .await
        .expect_err("renewed until 10:14");
    assert_eq!(held_by(e), ("dead-pod".to_string(), Some(at(14))));

    let mut taker = acquire(&fake, "run-2", at(14) + SignedDuration::from_secs(1))
        .await
        .expect("expired: taken over");
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-2"));
    let stored = fake.get("leases", Some(LOCK_NS), LOCK).expect("lease");
    assert_eq!(stored["spec"]["leaseTransitions"], 1);

    // The pod was not dead after all: its renewal must fail rather than steal the lease back.
    let e = dead.renew(at(15)).await.expect_err("lost");
    assert!(matches!(e, LockError::Lost { .. }), "{e:?}");
    assert!(e.to_string().contains("\"run-2\""), "{e}");
    taker.renew(at(15)).await.expect("the new holder renews");
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-2"));
}

#[tokio::test]
async fn release_frees_the_lease_at_once() {
    let fake = lock_fake().await;
    let lock = acquire(&fake, "run-1", t0()).await.expect("taken");
    lock.release().await.expect("released");
    assert_eq!(stored_holder(&fake), None);
    let next = acquire(&fake, "run-2", t0()).await.expect("free at once");
    assert_eq!(next.holder(), "run-2");
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-2"));
}

#[tokio::test]
async fn release_after_losing_the_lease_reports_it() {
    let fake = lock_fake().await;
    let lost = acquire(&fake, "run-1", t0()).await.expect("taken");
    let _taker = acquire(&fake, "run-2", at(11)).await.expect("expired");
    let e = lost.release().await.expect_err("not ours any more");
    assert!(matches!(e, LockError::Lost { .. }), "{e:?}");
    assert_eq!(
        stored_holder(&fake).as_deref(),
        Some("run-2"),
        "the new holder keeps it"
    );
}

#[tokio::test]
async fn invalid_lock_arguments_are_refused_before_any_request() {
    let fake = lock_fake().await;
    let e = acquire(&fake, " ", t0()).await.expect_err("empty holder");
    assert!(matches!(e, LockError::Invalid { .. }), "{e:?}");
    let e = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::ZERO,
        t0(),
    )
    .await
    .expect_err("zero duration");
    assert!(matches!(e, LockError::Invalid { .. }), "{e:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn lock_api_failures_are_api_errors() {
    let fake = lock_fake().await;
    fake.inject(Fault::new(500).resource("leases").times(1));
    let e = acquire(&fake, "run-1", t0())
        .await
        .expect_err("server error");
    assert!(matches!(e, LockError::Api { action: "read", .. }), "{e:?}");
}

#[tokio::test]
async fn renewal_task_keeps_the_lease_and_hands_it_back() {
    let fake = lock_fake().await;
    let clock: Arc<dyn common::clock::Clock> = Arc::new(common::clock::SystemClock);
    let lock = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::from_secs(2),
        Timestamp::now(),
    )
    .await
    .expect("taken");
    let renewal = lock.spawn_renewal(clock);
    tokio::time::sleep(Duration::from_millis(3000)).await;

    // Without renewals it would have expired a second ago.
    let e = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-2",
        Duration::from_secs(2),
        Timestamp::now(),
    )
    .await
    .expect_err("kept alive");
    assert_eq!(held_by(e).0, "run-1");
    assert!(!renewal.is_lost());
    let renews = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert!(renews >= 3, "renewed every ~0.67 s, got {renews}");

    let lock = renewal.stop().await.expect("handed back");
    lock.release().await.expect("released");
    let next = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-2",
        Duration::from_secs(2),
        Timestamp::now(),
    )
    .await
    .expect("free");
    assert_eq!(next.holder(), "run-2");
}

#[tokio::test]
async fn renewal_task_notices_a_takeover() {
    let fake = lock_fake().await;
    let clock: Arc<dyn common::clock::Clock> = Arc::new(common::clock::SystemClock);
    let lock = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::from_secs(1),
        Timestamp::now(),
    )
    .await
    .expect("taken");
    let renewal = lock.spawn_renewal(clock);
    // Someone edits the lease behind the holder's back (a new resourceVersion).
    let mut stolen = fake.get("leases", Some(LOCK_NS), LOCK).expect("lease");
    stolen["spec"]["holderIdentity"] = json!("intruder");
    fake.insert(stolen).expect("overwrite");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !renewal.is_lost() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewal.is_lost());
    let e = renewal.stop().await.expect_err("lost");
    assert!(e.to_string().contains("\"intruder\""), "{e}");
    assert_eq!(stored_holder(&fake).as_deref(), Some("intruder"));
}
