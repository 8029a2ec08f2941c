//! The Kubernetes provider against the fake API server, over real HTTP.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};
use testbed::fakekube::{FakeKube, Fault};
use ttl_teardown::inventory::{Resource, Scope};
use ttl_teardown::kube::{KubeProvider, KubeSource};
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
