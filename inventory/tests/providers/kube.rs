//! The Kubernetes kinds against the project's fake API server, over real HTTP: namespaces and
//! annotated objects as resources, annotations as tags, removal with its re-read, its guard and
//! its built-in protections, partial listings, `get` by id.

use std::collections::BTreeMap;

use inventory::{KubeScope, KubeSource, Providers, Removal, Resource, Scope, State};
use jiff::Timestamp;
use serde_json::{Value, json};
use testbed::fakekube::{FakeKube, Fault};

use crate::guard::{KEPT, KeepGuard};

const PREFIX: &str = "ttl.governance.io/";
const OLD: &str = "2020-01-02T03:04:05Z";

/// Annotations of an opted-in resource (the teardown decision itself is the TTL job's).
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

/// [`eligible`] as tags: the prefix stripped.
fn eligible_tags() -> BTreeMap<String, String> {
    eligible()
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| {
            (
                k.strip_prefix(PREFIX).expect("prefixed").to_string(),
                v.as_str().expect("string").to_string(),
            )
        })
        .collect()
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

fn scope(fake: &FakeKube, source: &KubeSource) -> KubeScope {
    KubeScope::new(fake.client().expect("client"), "dev-cluster", source)
}

fn providers(fake: &FakeKube, source: &KubeSource) -> Providers {
    Providers::from_scopes(Vec::new(), Some(scope(fake, source)))
}

/// Lists and fails on any listing failure.
async fn list(p: &Providers) -> Vec<Resource> {
    let listing = p.list().await;
    assert!(
        listing.failures.is_empty(),
        "{:?}",
        listing
            .failures
            .iter()
            .map(|f| (f.kind, f.error.to_string()))
            .collect::<Vec<_>>()
    );
    listing.resources
}

/// Ids, sorted.
fn ids(resources: &[Resource]) -> Vec<&str> {
    let mut ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids
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
    let listed = list(&providers(&fake, &team_a())).await;

    assert_eq!(
        ids(&listed),
        [
            "k8s:configmap/preview-123/settings",
            "k8s:deployment/preview-123/web",
            "k8s:preview-123",
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
    let mut ns_tags = eligible_tags();
    ns_tags.insert("ttl".into(), "3d".into());
    assert_eq!(
        ns.tags, ns_tags,
        "prefix stripped, other annotations ignored"
    );
    assert_eq!(ns.labels, ns_labels);
    assert_eq!(ns.namespace_labels, ns_labels);
    assert_eq!(ns.created_fallback, Some(old));
    assert_eq!(ns.attributes.created, Some(old));
    assert_eq!(ns.state.as_deref(), Some("Active"));
    assert_eq!(
        ns.wait_for,
        [
            "k8s:configmap/preview-123/settings",
            "k8s:deployment/preview-123/web",
            "k8s:service/preview-123/web",
        ]
    );
    assert_eq!(ns.part_of, None);
    assert!(ns.tags_unreadable.is_none());

    let web = find(&listed, "k8s:deployment/preview-123/web");
    assert_eq!(web.kind, "k8s-deployment");
    assert_eq!(web.name, "web");
    assert_eq!(web.namespace.as_deref(), Some("preview-123"));
    assert_eq!(web.tags, eligible_tags());
    assert_eq!(web.labels, map(&[("app", "web")]));
    assert_eq!(web.namespace_labels, ns_labels);
    assert_eq!(web.created_fallback, Some(old));
    assert_eq!(web.state.as_deref(), Some("present"));
    assert!(web.wait_for.is_empty());
    assert_eq!(
        web.part_of, None,
        "it goes before its namespace, not with it"
    );
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
    let listed = list(&providers(&fake, &source)).await;
    assert_eq!(
        ids(&listed),
        ["k8s:deployment/preview-123/web", "k8s:preview-123"],
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
    let listed = list(&providers(&fake, &KubeSource::default())).await;
    let mut namespaces: Vec<&str> = listed
        .iter()
        .filter(|r| r.kind == "k8s-namespace")
        .map(|r| r.name.as_str())
        .collect();
    namespaces.sort_unstable();
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
        "unannotated namespaces are listed with no tags (the TTL job reports them)"
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
    let listed = list(&providers(&fake, &source)).await;
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
async fn write_tags_sets_and_removes_prefixed_annotations_only() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let listed = list(&p).await;
    let web = find(&listed, "k8s:deployment/preview-123/web");
    p.write_tags(
        web,
        &[(
            "ttl-notified-stage".into(),
            "48h@2026-11-25T00:00:00Z".into(),
        )],
        &["cost-center".into()],
    )
    .await
    .expect("write tags");

    let stored = fake
        .get("deployments", Some("preview-123"), "web")
        .expect("still there");
    let annotations = &stored["metadata"]["annotations"];
    assert_eq!(
        annotations["ttl.governance.io/ttl-notified-stage"],
        "48h@2026-11-25T00:00:00Z"
    );
    assert!(annotations.get("ttl.governance.io/cost-center").is_none());
    assert_eq!(
        annotations["ttl.governance.io/owner"], "a@b.io",
        "other annotations kept"
    );
    let mut want = eligible_tags();
    want.remove("cost-center");
    want.insert(
        "ttl-notified-stage".into(),
        "48h@2026-11-25T00:00:00Z".into(),
    );
    let again = list(&p).await;
    assert_eq!(find(&again, "k8s:deployment/preview-123/web").tags, want);

    // A namespace too, whose unprefixed annotations stay; nothing to write means no request.
    let ns = find(&listed, "k8s:preview-123");
    p.write_tags(
        ns,
        &[("ttl-notified-stage".into(), "24h@x".into())],
        &["ttl".into()],
    )
    .await
    .expect("write tags");
    let stored = fake.get("namespaces", None, "preview-123").expect("ns");
    let annotations = &stored["metadata"]["annotations"];
    assert_eq!(annotations["ttl.governance.io/ttl-notified-stage"], "24h@x");
    assert!(annotations.get("ttl.governance.io/ttl").is_none());
    assert_eq!(annotations["unrelated.io/note"], "ignored");
    let again = list(&p).await;
    let ns_tags = &find(&again, "k8s:preview-123").tags;
    assert_eq!(
        ns_tags.get("ttl-notified-stage").map(String::as_str),
        Some("24h@x")
    );
    assert!(!ns_tags.contains_key("ttl"));
    let writes = fake.requests().iter().filter(|r| r.is_write()).count();
    p.write_tags(ns, &[], &[]).await.expect("nothing to write");
    assert_eq!(
        fake.requests().iter().filter(|r| r.is_write()).count(),
        writes
    );
}

#[tokio::test]
async fn remove_deployment_is_idempotent_and_state_follows() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let listed = list(&p).await;
    let web = find(&listed, "k8s:deployment/preview-123/web");
    assert_eq!(
        p.state(web).await.expect("state"),
        State::Present("present".into())
    );
    let guard = KeepGuard::default();

    assert_eq!(p.remove(web, &guard).await.expect("remove"), Removal::Done);
    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_none()
    );
    assert!(
        fake.get("services", Some("preview-123"), "web").is_some(),
        "only that object"
    );
    let asked = guard.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].id, web.id);
    assert_eq!(asked[0].tags, eligible_tags());
    assert_eq!(asked[0].state.as_deref(), Some("present"));
    assert_eq!(p.state(web).await.expect("state"), State::Gone);
    assert_eq!(
        p.remove(web, &guard).await.expect("second remove"),
        Removal::Done,
        "idempotent"
    );
    let deletes = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "the second remove found it gone on re-read");
    assert_eq!(guard.asked().len(), 1, "and asked nobody");
}

#[tokio::test]
async fn remove_namespace_cascades_and_is_pending_until_gone() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let listed = list(&p).await;
    let ns = find(&listed, "k8s:preview-123");
    assert_eq!(
        p.state(ns).await.expect("state"),
        State::Present("Active".into())
    );
    let guard = KeepGuard::default();
    assert_eq!(
        p.remove(ns, &guard).await.expect("remove"),
        Removal::Pending {
            state: "Terminating".into()
        }
    );
    // The guard was asked about the namespace, then about every annotated object in it.
    let mut asked: Vec<String> = guard.asked().into_iter().map(|a| a.id).collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            "k8s:configmap/preview-123/settings",
            "k8s:deployment/preview-123/web",
            "k8s:preview-123",
            "k8s:service/preview-123/web",
        ]
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
    assert_eq!(p.remove(ns, &guard).await.expect("again"), Removal::Done);
}

#[tokio::test]
async fn remove_asks_the_guard_about_the_annotations_as_they_are_now() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let listed = list(&p).await;
    let web = find(&listed, "k8s:deployment/preview-123/web");
    assert!(!web.tags.contains_key("keep"));
    // The owner re-annotates between plan and delete.
    object(
        &fake,
        "Deployment",
        "preview-123",
        "web",
        json!({"app": "web"}),
        with(eligible(), "keep", "true"),
    );
    let guard = KeepGuard::default();

    let e = p.remove(web, &guard).await.expect_err("refused");
    assert!(!e.retryable, "a refusal is final");
    assert_eq!(e.action, "delete");
    assert_eq!(e.resource, "k8s:deployment/preview-123/web");
    assert_eq!(
        e.message,
        format!("refused: {KEPT} (annotations under {PREFIX}, re-read just before the delete)")
    );
    let asked = guard.asked();
    assert_eq!(asked.len(), 1);
    let mut now = eligible_tags();
    now.insert("keep".into(), "true".into());
    assert_eq!(asked[0].tags, now, "the re-read annotations");
    assert_eq!(
        asked[0].planned.as_ref(),
        Some(&web.tags),
        "and the planned ones"
    );
    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_some(),
        "not deleted"
    );
    assert!(!fake.requests().iter().any(|r| r.method == "DELETE"));

    // Another change: the guard sees it too, and lets the delete go on.
    object(
        &fake,
        "Service",
        "preview-123",
        "web",
        json!({"app": "web"}),
        with(eligible(), "ttl", "30d"),
    );
    let service = find(&listed, "k8s:service/preview-123/web");
    assert_eq!(
        p.remove(service, &guard).await.expect("remove"),
        Removal::Done
    );
    assert_eq!(
        guard.asked_about(&service.id)[0]
            .tags
            .get("ttl")
            .map(String::as_str),
        Some("30d")
    );
}

#[tokio::test]
async fn remove_namespace_refuses_when_the_guard_refuses_an_object_in_it() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    // Outside the object selector, so not even listed: still it would die with the namespace.
    object(
        &fake,
        "ConfigMap",
        "preview-123",
        "keep-me",
        json!({"app": "db"}),
        with(eligible(), "keep", "true"),
    );
    let source = KubeSource {
        object_selector: "app=web".into(),
        ..team_a()
    };
    let p = providers(&fake, &source);
    let listed = list(&p).await;
    assert!(listed.iter().all(|r| r.name != "keep-me"));
    let guard = KeepGuard::default();
    let e = p
        .remove(find(&listed, "k8s:preview-123"), &guard)
        .await
        .expect_err("refused");
    assert!(!e.retryable);
    assert_eq!(
        e.message,
        format!(
            "refused: it contains k8s:configmap/preview-123/keep-me, whose {KEPT}; deleting the namespace would delete it"
        )
    );
    let contained = guard.asked_about("k8s:configmap/preview-123/keep-me");
    assert_eq!(contained.len(), 1);
    assert_eq!(contained[0].planned, None, "asked as a contained object");
    assert!(fake.get("namespaces", None, "preview-123").is_some());
    assert!(
        fake.get("configmaps", Some("preview-123"), "keep-me")
            .is_some()
    );
    assert!(!fake.requests().iter().any(|r| r.method == "DELETE"));
}

#[tokio::test]
async fn cluster_namespaces_are_never_deleted() {
    let fake = FakeKube::start().await.expect("fake");
    // Even annotated as eligible, as if the caller's rules had been misconfigured.
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
    let p = providers(&fake, &KubeSource::default());
    let listed = list(&p).await;
    let guard = KeepGuard::default();
    for id in [
        "k8s:kube-system",
        "k8s:default",
        "k8s:kube-public",
        "k8s:kube-node-lease",
        "k8s:configmap/kube-system/coredns",
    ] {
        let e = p
            .remove(find(&listed, id), &guard)
            .await
            .expect_err("refused");
        assert!(!e.retryable, "{id}");
        assert!(e.message.contains("never deleted"), "{id}: {e}");
    }
    assert!(
        !fake.requests().iter().any(|r| r.method == "DELETE"),
        "refused before any request"
    );
    assert!(guard.asked().is_empty(), "whatever the guard would say");
    assert!(fake.get("namespaces", None, "kube-system").is_some());
}

#[tokio::test]
async fn api_errors_map_to_provider_errors_and_listing_failures() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let listed = list(&p).await;
    let web = find(&listed, "k8s:deployment/preview-123/web");
    let guard = KeepGuard::default();

    // The object changed between the re-read and the delete: the precondition answers 409.
    fake.inject(Fault::new(409).method("DELETE").times(1));
    let e = p.remove(web, &guard).await.expect_err("conflict");
    assert!(e.retryable, "the next attempt re-reads: {e}");
    assert!(e.message.contains("changed since it was re-read"), "{e}");

    fake.inject(Fault::new(403).method("DELETE").times(1));
    let e = p.remove(web, &guard).await.expect_err("forbidden");
    assert!(!e.retryable);
    assert!(e.message.starts_with("403 Forbidden"), "{e}");

    // Namespaces cannot be listed: nothing is, every kind fails.
    fake.inject(Fault::new(500).resource("namespaces").times(1));
    let listing = p.list().await;
    assert!(listing.resources.is_empty());
    let failed: Vec<&str> = listing.failures.iter().map(|f| f.kind).collect();
    assert_eq!(
        failed,
        [
            "k8s-namespace",
            "k8s-deployment",
            "k8s-service",
            "k8s-configmap"
        ]
    );
    for f in &listing.failures {
        assert!(f.error.retryable);
        assert_eq!(f.error.action, "list k8s-namespace");
        assert_eq!(f.error.resource, "k8s:dev-cluster");
        assert!(
            f.error.message.starts_with("500 InternalError"),
            "{}",
            f.error
        );
        assert_eq!(
            f.scope,
            Scope::Kubernetes {
                cluster: "dev-cluster".into()
            }
        );
    }

    // One kind cannot be listed: only it fails, and it holds back what waits for it (namespaces
    // wait for their objects, config maps for the deployments that mount them), nothing else.
    fake.inject(
        Fault::new(500)
            .method("GET")
            .resource("deployments")
            .times(1),
    );
    let listing = p.list().await;
    let failed: Vec<&str> = listing.failures.iter().map(|f| f.kind).collect();
    assert_eq!(failed, ["k8s-deployment"]);
    assert_eq!(listing.failures[0].error.action, "list k8s-deployment");
    let ns = find(&listing.resources, "k8s:preview-123");
    assert_eq!(
        listing.blocking_failure(ns).map(|f| f.kind),
        Some("k8s-deployment")
    );
    let settings = find(&listing.resources, "k8s:configmap/preview-123/settings");
    assert_eq!(
        listing.blocking_failure(settings).map(|f| f.kind),
        Some("k8s-deployment")
    );
    let service = find(&listing.resources, "k8s:service/preview-123/web");
    assert!(listing.blocking_failure(service).is_none());
    assert!(listing.resources.iter().all(|r| r.kind != "k8s-deployment"));

    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_some(),
        "nothing deleted by failed calls"
    );
    assert_eq!(
        p.remove(web, &guard).await.expect("works again"),
        Removal::Done
    );
}

#[tokio::test]
async fn resources_of_another_cluster_are_refused() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let mut web = find(&list(&p).await, "k8s:deployment/preview-123/web").clone();
    web.scope = Scope::Kubernetes {
        cluster: "prod-cluster".into(),
    };
    let guard = KeepGuard::default();
    let e = p.remove(&web, &guard).await.expect_err("wrong cluster");
    assert!(!e.retryable);
    assert!(
        e.message
            .contains("no configured scope for k8s:prod-cluster"),
        "{e}"
    );
    // The cluster's scope itself refuses it too.
    let e = scope(&fake, &team_a())
        .remove(&web, &guard)
        .await
        .expect_err("wrong cluster");
    assert!(e.message.contains("belongs to k8s:prod-cluster"), "{e}");
    assert!(guard.asked().is_empty());
    assert!(
        fake.get("deployments", Some("preview-123"), "web")
            .is_some()
    );
}

#[tokio::test]
async fn get_reads_one_resource_as_list_describes_it() {
    let fake = FakeKube::start().await.expect("fake");
    seed_preview(&fake);
    let p = providers(&fake, &team_a());
    let listed = list(&p).await;
    for id in [
        "k8s:preview-123",
        "k8s:deployment/preview-123/web",
        "k8s:service/preview-123/web",
        "k8s:configmap/preview-123/settings",
    ] {
        let want = find(&listed, id);
        let got = p
            .get(id)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{id}"));
        assert_eq!(
            (
                got.kind,
                &got.name,
                &got.namespace,
                &got.scope,
                &got.tags,
                &got.labels
            ),
            (
                want.kind,
                &want.name,
                &want.namespace,
                &want.scope,
                &want.tags,
                &want.labels
            ),
            "{id}"
        );
        assert_eq!(got.namespace_labels, want.namespace_labels, "{id}");
        assert_eq!(got.state, want.state, "{id}");
    }
    for id in [
        // Not listed: unannotated, outside the namespace selector, absent, unknown kind.
        "k8s:configmap/preview-123/plain",
        "k8s:other",
        "k8s:deployment/other/api",
        "k8s:deployment/preview-123/nope",
        "k8s:nope",
        "k8s:pod/preview-123/web",
        // Not Kubernetes ids.
        "arn:aws:s3:::preview-123",
        "preview-123",
    ] {
        assert!(p.get(id).await.expect("get").is_none(), "{id}");
    }
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
