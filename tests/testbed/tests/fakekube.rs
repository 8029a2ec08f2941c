//! The fake Kubernetes API server, driven over real HTTP by kube-rs typed clients: what our jobs
//! and their leader-election locks rely on must behave as the real API server does.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, ResourceExt as _};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use testbed::fakekube::{BUILTIN_NAMESPACES, FakeKube, Fault};

/// A server and a client for it.
async fn setup() -> anyhow::Result<(FakeKube, Client)> {
    let kube = FakeKube::start().await?;
    let client = kube.client()?;
    Ok((kube, client))
}

/// A typed object from JSON, so fixtures read like manifests.
fn object<K: DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).expect("fixture matches the typed schema")
}

fn namespace(name: &str) -> Namespace {
    object(json!({"metadata": {"name": name}}))
}

fn config_map(name: &str, labels: Value) -> ConfigMap {
    object(json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}))
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    object(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
            },
        },
    }))
}

/// The `Status` of a failed call, as kube-rs parsed it from the response body.
fn status_of<T: std::fmt::Debug>(result: kube::Result<T>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv<K: kube::Resource>(obj: &K) -> u64 {
    obj.meta()
        .resource_version
        .as_deref()
        .expect("resourceVersion is set")
        .parse()
        .expect("resourceVersion is an integer")
}

fn names<K: kube::Resource>(items: impl IntoIterator<Item = K>) -> Vec<String> {
    items
        .into_iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect()
}

async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<Namespace> {
    Ok(Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace(name))
        .await?)
}

#[tokio::test]
async fn create_fills_server_metadata_and_get_returns_it() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    let before = jiff::Timestamp::now().as_second();
    let ns = create_namespace(&client, "team-a").await?;

    let uid = ns.metadata.uid.as_deref().expect("uid is filled");
    assert_eq!(uuid::Uuid::parse_str(uid)?.get_version_num(), 4);
    let created = ns
        .metadata
        .creation_timestamp
        .as_ref()
        .expect("creationTimestamp is filled")
        .0;
    assert_eq!(created.subsec_nanosecond(), 0, "seconds precision");
    assert!(
        (before..=before + 5).contains(&created.as_second()),
        "created now: {created}"
    );
    assert_eq!(
        ns.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Active")
    );
    assert_eq!(
        ns.labels()
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("team-a")
    );

    let fetched = Api::<Namespace>::all(client.clone()).get("team-a").await?;
    assert_eq!(fetched.metadata, ns.metadata);

    // Every write bumps one global counter, across kinds.
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &config_map("c", json!({})))
        .await?;
    assert!(rv(&cm) > rv(&ns));
    assert_eq!(
        cm.metadata.generation, None,
        "config maps carry no generation upstream"
    );
    assert_ne!(cm.metadata.uid, ns.metadata.uid);
    Ok(())
}

#[tokio::test]
async fn create_refuses_duplicates_missing_namespaces_and_missing_names() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    create_namespace(&client, "a").await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "a");
    cms.create(&PostParams::default(), &config_map("c", json!({})))
        .await?;

    let dup = status_of(
        cms.create(&PostParams::default(), &config_map("c", json!({})))
            .await,
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert!(dup.is_already_exists());
    assert_eq!(dup.details.as_ref().map(|d| d.name.as_str()), Some("c"));

    let nowhere = Api::<ConfigMap>::namespaced(client.clone(), "missing");
    let missing = status_of(
        nowhere
            .create(&PostParams::default(), &config_map("c", json!({})))
            .await,
    );
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert!(
        missing.message.contains("namespaces \"missing\" not found"),
        "{}",
        missing.message
    );

    let unnamed: ConfigMap = object(json!({"data": {"k": "v"}}));
    let invalid = status_of(cms.create(&PostParams::default(), &unnamed).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));

    let generated: ConfigMap = object(json!({"metadata": {"generateName": "run-"}}));
    let made = cms.create(&PostParams::default(), &generated).await?;
    assert!(made.name_any().starts_with("run-") && made.name_any().len() == "run-".len() + 5);
    Ok(())
}

#[tokio::test]
async fn get_of_a_missing_object_is_a_not_found_status() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let status = status_of(secrets.get("nope").await);
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert!(status.is_not_found());
    let details = status.details.as_ref().expect("details name the object");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("nope", "secrets")
    );
    assert!(secrets.get_opt("nope").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn replace_keeps_identity_and_refuses_a_stale_resource_version() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let original = cms
        .create(&PostParams::default(), &config_map("c", json!({"v": "1"})))
        .await?;

    let mut changed = original.clone();
    changed.data = Some([("k".to_string(), "changed".to_string())].into());
    let replaced = cms.replace("c", &PostParams::default(), &changed).await?;
    assert_eq!(
        replaced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("changed")
    );
    assert!(rv(&replaced) > rv(&original));
    assert_eq!(replaced.metadata.uid, original.metadata.uid);
    assert_eq!(
        replaced.metadata.creation_timestamp,
        original.metadata.creation_timestamp
    );

    // `original` still carries the old resourceVersion.
    let stale = status_of(cms.replace("c", &PostParams::default(), &original).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(stale.is_conflict());

    // Without a resourceVersion the write is unconditional.
    let mut blind = original.clone();
    blind.metadata.resource_version = None;
    let forced = cms.replace("c", &PostParams::default(), &blind).await?;
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("v")
    );

    let missing = status_of(
        cms.replace(
            "other",
            &PostParams::default(),
            &config_map("other", json!({})),
        )
        .await,
    );
    assert_eq!(missing.code, 404);
    let mismatch = status_of(
        cms.replace("c", &PostParams::default(), &config_map("not-c", json!({})))
            .await,
    );
    assert_eq!(mismatch.code, 400);
    Ok(())
}

/// Leader election and run locks: two holders read the same lease; the first to write wins and
/// the second, still holding the old resourceVersion, must get 409.
#[tokio::test]
async fn lease_lock_only_one_of_two_contenders_wins() -> anyhow::Result<()> {
    let kube = FakeKube::start().await?;
    let (alice, bob) = (kube.client()?, kube.client()?);
    let lease: Lease = object(json!({
        "metadata": {"name": "ttl-teardown"},
        "spec": {"holderIdentity": "nobody", "leaseDurationSeconds": 60},
    }));
    Api::<Lease>::namespaced(alice.clone(), "default")
        .create(&PostParams::default(), &lease)
        .await?;

    let mut alice_view = Api::<Lease>::namespaced(alice.clone(), "default")
        .get("ttl-teardown")
        .await?;
    let mut bob_view = Api::<Lease>::namespaced(bob.clone(), "default")
        .get("ttl-teardown")
        .await?;
    assert_eq!(
        alice_view.metadata.resource_version,
        bob_view.metadata.resource_version
    );

    alice_view.spec.as_mut().expect("spec").holder_identity = Some("alice".into());
    let won = Api::<Lease>::namespaced(alice, "default")
        .replace("ttl-teardown", &PostParams::default(), &alice_view)
        .await?;
    assert_eq!(
        won.spec.as_ref().and_then(|s| s.holder_identity.as_deref()),
        Some("alice")
    );

    bob_view.spec.as_mut().expect("spec").holder_identity = Some("bob".into());
    let bobs = Api::<Lease>::namespaced(bob.clone(), "default");
    let lost = status_of(
        bobs.replace("ttl-teardown", &PostParams::default(), &bob_view)
            .await,
    );
    assert_eq!(lost.code, 409);
    assert_eq!(lost.reason, "Conflict");

    // The same holds for a patch that carries the stale resourceVersion.
    let stale_patch = json!({"metadata": {"resourceVersion": bob_view.metadata.resource_version}, "spec": {"holderIdentity": "bob"}});
    let lost = status_of(
        bobs.patch(
            "ttl-teardown",
            &PatchParams::default(),
            &Patch::Merge(&stale_patch),
        )
        .await,
    );
    assert_eq!(lost.code, 409);

    let stored = kube
        .get("leases", Some("default"), "ttl-teardown")
        .expect("lease exists");
    assert_eq!(stored["spec"]["holderIdentity"], "alice");

    // As upstream, a PUT of a missing lease creates it (some election crates rely on that).
    let fresh: Lease =
        object(json!({"metadata": {"name": "other-lock"}, "spec": {"holderIdentity": "bob"}}));
    let created = bobs
        .replace("other-lock", &PostParams::default(), &fresh)
        .await?;
    assert!(created.metadata.uid.is_some());
    assert!(kube.get("leases", Some("default"), "other-lock").is_some());
    Ok(())
}

#[tokio::test]
async fn merge_and_strategic_patches_merge_and_null_deletes() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let created = cms
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "c", "labels": {"keep": "1", "drop": "1"}}, "data": {"a": "1", "b": "2"}})),
        )
        .await?;

    let merged = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"drop": null, "new": "1"}}, "data": {"b": null, "c": "3"}})),
        )
        .await?;
    assert_eq!(
        merged.labels().keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["keep".into(), "new".into()])
    );
    assert_eq!(
        merged.data.clone().unwrap_or_default(),
        [("a".into(), "1".into()), ("c".into(), "3".into())].into()
    );
    assert!(rv(&merged) > rv(&created));
    assert_eq!(merged.metadata.uid, created.metadata.uid);

    let strategic = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"a": "strategic"}})),
        )
        .await?;
    assert_eq!(
        strategic
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("strategic")
    );
    assert_eq!(
        strategic
            .data
            .as_ref()
            .and_then(|d| d.get("c"))
            .map(String::as_str),
        Some("3")
    );

    let missing = status_of(
        cms.patch(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {}})),
        )
        .await,
    );
    assert_eq!(missing.code, 404);
    Ok(())
}

#[tokio::test]
async fn apply_patch_creates_then_merges() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    let services = Api::<Service>::namespaced(client.clone(), "default");
    let params = PatchParams::apply("governance-test").force();
    let manifest = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
    });
    let created = services
        .patch("web", &params, &Patch::Apply(&manifest))
        .await?;
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert!(created.metadata.uid.is_some());

    let update = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"tier": "front"}}});
    let applied = services
        .patch("web", &params, &Patch::Apply(&update))
        .await?;
    assert_eq!(applied.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(
        applied.labels().get("tier").map(String::as_str),
        Some("front")
    );
    assert_eq!(applied.metadata.uid, created.metadata.uid);
    assert_eq!(kube.list("services", Some("default")).len(), 1);
    Ok(())
}

#[tokio::test]
async fn json_patch_applies_rfc_6902_and_a_failed_test_is_invalid() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &config_map("c", json!({"owner": "team-a"})),
    )
    .await?;

    let ops: Patch<()> = Patch::Json(serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/owner", "value": "team-a"},
        {"op": "add", "path": "/data/added", "value": "x"},
        {"op": "replace", "path": "/data/k", "value": "replaced"},
        {"op": "remove", "path": "/metadata/labels/owner"},
    ]))?);
    let patched = cms.patch("c", &PatchParams::default(), &ops).await?;
    assert_eq!(
        patched.data.clone().unwrap_or_default(),
        [
            ("added".into(), "x".into()),
            ("k".into(), "replaced".into())
        ]
        .into()
    );
    assert!(!patched.labels().contains_key("owner"));

    let before = kube
        .get("configmaps", Some("default"), "c")
        .expect("exists");
    let failing: Patch<()> = Patch::Json(serde_json::from_value(json!([
        {"op": "replace", "path": "/data/k", "value": "never"},
        {"op": "test", "path": "/data/k", "value": "something else"},
    ]))?);
    let invalid = status_of(cms.patch("c", &PatchParams::default(), &failing).await);
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        kube.get("configmaps", Some("default"), "c"),
        Some(before),
        "a failed patch changes nothing"
    );

    let remove_missing: Patch<()> = Patch::Json(serde_json::from_value(
        json!([{"op": "remove", "path": "/data/nope"}]),
    )?);
    assert_eq!(
        status_of(
            cms.patch("c", &PatchParams::default(), &remove_missing)
                .await
        )
        .code,
        422
    );
    Ok(())
}

#[tokio::test]
async fn delete_returns_the_object_then_not_found() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let created = secrets
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "s"}, "stringData": {"password": "foo"}})),
        )
        .await?;
    assert_eq!(
        created
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .map(|b| b.0.clone()),
        Some(b"foo".to_vec())
    );
    assert_eq!(created.type_.as_deref(), Some("Opaque"));

    // A precondition on a different resourceVersion refuses the delete.
    let wrong = DeleteParams::default().preconditions(Preconditions {
        resource_version: Some("1".into()),
        uid: None,
    });
    assert_eq!(status_of(secrets.delete("s", &wrong).await).code, 409);

    let deleted = secrets.delete("s", &DeleteParams::background()).await?;
    let deleted = deleted.left().expect("the deleted object, not a Status");
    assert_eq!(deleted.metadata.uid, created.metadata.uid);
    assert!(kube.get("secrets", Some("default"), "s").is_none());
    assert_eq!(
        status_of(secrets.delete("s", &DeleteParams::default()).await).code,
        404
    );
    Ok(())
}

#[tokio::test]
async fn label_selectors_support_every_operator() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    for (name, labels) in [
        ("web", json!({"app": "web", "tier": "front"})),
        ("api", json!({"app": "api", "tier": "back"})),
        (
            "db",
            json!({"app": "db", "tier": "back", "example.com/keep": "true"}),
        ),
        ("bare", json!({})),
    ] {
        cms.create(&PostParams::default(), &config_map(name, labels))
            .await?;
    }
    let cases = [
        ("app=web", vec!["web"]),
        ("app==api", vec!["api"]),
        ("tier!=back", vec!["bare", "web"]),
        ("app in (web, db)", vec!["db", "web"]),
        ("app notin (web,db)", vec!["api", "bare"]),
        ("example.com/keep", vec!["db"]),
        ("!tier", vec!["bare"]),
        ("tier=back,!example.com/keep", vec!["api"]),
        ("app,tier in (front,back),app!=api", vec!["db", "web"]),
    ];
    for (selector, expected) in cases {
        let found = cms.list(&ListParams::default().labels(selector)).await?;
        assert_eq!(names(found), expected, "selector {selector:?}");
    }
    let bad = status_of(cms.list(&ListParams::default().labels("app in (web")).await);
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    Ok(())
}

#[tokio::test]
async fn field_selectors_on_name_and_namespace() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    for ns in ["a", "b"] {
        create_namespace(&client, ns).await?;
        for name in ["x", "y"] {
            Api::<ConfigMap>::namespaced(client.clone(), ns)
                .create(&PostParams::default(), &config_map(name, json!({})))
                .await?;
        }
    }
    let all = Api::<ConfigMap>::all(client.clone());
    let by_name = all
        .list(&ListParams::default().fields("metadata.name=x"))
        .await?;
    assert_eq!(
        by_name
            .items
            .iter()
            .map(|c| c.namespace().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let by_ns = all
        .list(&ListParams::default().fields("metadata.namespace=b,metadata.name!=x"))
        .await?;
    assert_eq!(names(by_ns), ["y"]);
    let unsupported = status_of(all.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(unsupported.code, 400);
    Ok(())
}

#[tokio::test]
async fn limit_and_continue_page_through_every_item_exactly_once() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    for ns in ["p1", "p2"] {
        create_namespace(&client, ns).await?;
    }
    // Seven objects in two namespaces, inserted out of order.
    for (ns, name) in [
        ("p2", "b"),
        ("p1", "c"),
        ("p1", "a"),
        ("p2", "a"),
        ("p1", "b"),
        ("p2", "c"),
        ("p1", "d"),
    ] {
        kube.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}))?;
    }
    let all = Api::<ConfigMap>::all(client.clone());
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().limit(3);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = all.list(&params).await?;
        pages.push(page.items.len());
        seen.extend(
            page.items
                .iter()
                .map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any())),
        );
        if let Some(remaining) = page.metadata.remaining_item_count {
            assert_eq!(remaining as usize, 7 - seen.len());
        }
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end");
    }
    assert_eq!(pages, [3, 3, 1]);
    assert_eq!(
        seen,
        ["p1/a", "p1/b", "p1/c", "p1/d", "p2/a", "p2/b", "p2/c"],
        "namespace/name order, each once"
    );

    let garbage = status_of(
        all.list(&ListParams::default().limit(3).continue_token("not-a-token"))
            .await,
    );
    assert_eq!(garbage.code, 400);
    Ok(())
}

#[tokio::test]
async fn all_namespaces_lists_cover_every_scanned_kind() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    for ns in ["one", "two"] {
        create_namespace(&client, ns).await?;
        let pp = PostParams::default();
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .create(&pp, &config_map("cm", json!({})))
            .await?;
        Api::<Secret>::namespaced(client.clone(), ns)
            .create(&pp, &object(json!({"metadata": {"name": "s"}})))
            .await?;
        Api::<Service>::namespaced(client.clone(), ns)
            .create(&pp, &object(json!({"metadata": {"name": "svc"}})))
            .await?;
        Api::<Deployment>::namespaced(client.clone(), ns)
            .create(&pp, &deployment("web", 1))
            .await?;
        Api::<Lease>::namespaced(client.clone(), ns)
            .create(&pp, &object(json!({"metadata": {"name": "lock"}})))
            .await?;
    }
    fn where_<K: kube::Resource + Clone>(list: kube::core::ObjectList<K>) -> Vec<String> {
        list.items
            .iter()
            .map(|o| o.meta().namespace.clone().unwrap_or_default())
            .collect()
    }
    let lp = ListParams::default();
    assert_eq!(
        where_(Api::<ConfigMap>::all(client.clone()).list(&lp).await?),
        ["one", "two"]
    );
    assert_eq!(
        where_(Api::<Secret>::all(client.clone()).list(&lp).await?),
        ["one", "two"]
    );
    assert_eq!(
        where_(Api::<Service>::all(client.clone()).list(&lp).await?),
        ["one", "two"]
    );
    assert_eq!(
        where_(Api::<Deployment>::all(client.clone()).list(&lp).await?),
        ["one", "two"]
    );
    assert_eq!(
        where_(Api::<Lease>::all(client.clone()).list(&lp).await?),
        ["one", "two"]
    );

    // The list envelope carries the list kind, and every item its own apiVersion and kind: read
    // the raw JSON, since typed clients fill those in themselves.
    let raw: Value = client
        .request(http_get("/apis/apps/v1/deployments")?)
        .await?;
    assert_eq!(raw["kind"], "DeploymentList");
    assert_eq!(raw["apiVersion"], "apps/v1");
    assert!(
        raw["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| v.parse::<u64>().is_ok())
    );
    for item in raw["items"].as_array().expect("items") {
        assert_eq!(
            (item["apiVersion"].as_str(), item["kind"].as_str()),
            (Some("apps/v1"), Some("Deployment"))
        );
    }
    Ok(())
}

fn http_get(path: &str) -> anyhow::Result<axum::http::Request<Vec<u8>>> {
    Ok(axum::http::Request::get(path).body(Vec::new())?)
}

#[tokio::test]
async fn deleting_a_namespace_deletes_what_is_in_it() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    for ns in ["doomed", "kept"] {
        create_namespace(&client, ns).await?;
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &config_map("cm", json!({})))
            .await?;
        Api::<Deployment>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &deployment("web", 1))
            .await?;
    }
    let namespaces = Api::<Namespace>::all(client.clone());
    let answer = namespaces
        .delete("doomed", &DeleteParams::default())
        .await?
        .left()
        .expect("the namespace");
    assert_eq!(
        answer.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );

    assert!(namespaces.get_opt("doomed").await?.is_none());
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), "doomed")
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    assert_eq!(
        names(
            Api::<Deployment>::all(client.clone())
                .list(&ListParams::default())
                .await?
        ),
        ["web"]
    );
    assert_eq!(
        kube.list("configmaps", None).len(),
        1,
        "only kept/cm is left"
    );

    // As upstream, the system namespaces cannot be deleted.
    let forbidden = status_of(namespaces.delete("default", &DeleteParams::default()).await);
    assert_eq!(
        (forbidden.code, forbidden.reason.as_str()),
        (403, "Forbidden")
    );
    let names_left = names(namespaces.list(&ListParams::default()).await?);
    let mut expected: Vec<&str> = BUILTIN_NAMESPACES.to_vec();
    expected.push("kept");
    expected.sort();
    assert_eq!(names_left, expected);
    Ok(())
}

#[tokio::test]
async fn the_namespace_comes_from_the_url() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    create_namespace(&client, "from-url").await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "from-url");
    let created = cms
        .create(&PostParams::default(), &config_map("c", json!({})))
        .await?;
    assert_eq!(created.metadata.namespace.as_deref(), Some("from-url"));
    assert!(kube.get("configmaps", Some("from-url"), "c").is_some());

    let mut elsewhere = config_map("d", json!({}));
    elsewhere.metadata.namespace = Some("default".into());
    let mismatch = status_of(cms.create(&PostParams::default(), &elsewhere).await);
    assert_eq!(
        (mismatch.code, mismatch.reason.as_str()),
        (400, "BadRequest")
    );
    assert!(kube.get("configmaps", Some("default"), "d").is_none());
    Ok(())
}

#[tokio::test]
async fn deployments_bump_generation_and_split_status_from_spec() -> anyhow::Result<()> {
    let (_kube, client) = setup().await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    let created = deployments
        .create(&PostParams::default(), &deployment("web", 1))
        .await?;
    assert_eq!(created.metadata.generation, Some(1));

    let labelled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await?;
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let scaled = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(scaled.spec.as_ref().and_then(|s| s.replicas), Some(3));

    let status = json!({"status": {"replicas": 3, "readyReplicas": 2}, "spec": {"replicas": 9}});
    let updated = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    assert_eq!(
        updated.status.as_ref().and_then(|s| s.ready_replicas),
        Some(2)
    );
    assert_eq!(
        updated.spec.as_ref().and_then(|s| s.replicas),
        Some(3),
        "the status subresource ignores spec"
    );

    // ...and the object's own endpoint ignores status, as upstream.
    let ignored = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"readyReplicas": 0}, "metadata": {"labels": {"z": "1"}}}),
            ),
        )
        .await?;
    assert_eq!(
        ignored.status.as_ref().and_then(|s| s.ready_replicas),
        Some(2)
    );
    assert_eq!(ignored.labels().get("z").map(String::as_str), Some("1"));
    let mut with_status = deployment("api", 1);
    with_status.status = Some(object(json!({"readyReplicas": 5})));
    let created = deployments
        .create(&PostParams::default(), &with_status)
        .await?;
    assert_eq!(
        created.status.and_then(|s| s.ready_replicas),
        None,
        "create drops the status"
    );
    Ok(())
}

#[tokio::test]
async fn dry_run_writes_nothing_and_requests_are_recorded() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &config_map("real", json!({})))
        .await?;
    let rv_before = kube.resource_version();

    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answer = cms.create(&dry, &config_map("dry", json!({}))).await?;
    assert_eq!(answer.name_any(), "dry");
    cms.patch(
        "real",
        &PatchParams::default().dry_run(),
        &Patch::Merge(json!({"data": {"k": "dry"}})),
    )
    .await?;
    cms.delete("real", &DeleteParams::default().dry_run())
        .await?;

    assert_eq!(kube.resource_version(), rv_before);
    assert!(kube.get("configmaps", Some("default"), "dry").is_none());
    assert_eq!(
        kube.get("configmaps", Some("default"), "real")
            .expect("still there")["data"]["k"],
        "v"
    );

    let writes: Vec<_> = kube
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert_eq!(
        writes.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["POST", "POST", "PATCH", "DELETE"]
    );
    assert!(writes[1].query.contains("dryRun=All"));
    assert_eq!(writes[3].path, "/api/v1/namespaces/default/configmaps/real");
    Ok(())
}

#[tokio::test]
async fn injected_faults_and_unavailability_fail_requests() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        cms.create(&PostParams::default(), &config_map(name, json!({})))
            .await?;
    }
    kube.inject(
        Fault::new(500)
            .method("delete")
            .resource("configmaps")
            .name("a")
            .times(1),
    );
    let failed = status_of(cms.delete("a", &DeleteParams::default()).await);
    assert_eq!(
        (failed.code, failed.reason.as_str()),
        (500, "InternalError")
    );
    cms.delete("b", &DeleteParams::default()).await?; // other names are unaffected
    cms.delete("a", &DeleteParams::default()).await?; // the fault was used up
    assert!(kube.list("configmaps", Some("default")).is_empty());

    kube.inject(Fault::new(403).resource("secrets"));
    assert_eq!(
        status_of(
            Api::<Secret>::all(client.clone())
                .list(&ListParams::default())
                .await
        )
        .code,
        403
    );
    kube.clear_faults();
    Api::<Secret>::all(client.clone())
        .list(&ListParams::default())
        .await?;

    // kube-rs retries 503 by default; a client without retries shows the answer at once.
    let mut config = kube::Config::new(kube.url().parse()?);
    config.default_retry = false;
    let no_retry = Client::try_from(config)?;
    kube.set_unavailable(true);
    let down = status_of(
        Api::<Namespace>::all(no_retry.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        (down.code, down.reason.as_str()),
        (503, "ServiceUnavailable")
    );
    kube.set_unavailable(false);
    assert!(
        !Api::<Namespace>::all(no_retry)
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn a_kubeconfig_points_clients_and_binaries_at_the_server() -> anyhow::Result<()> {
    let kube = FakeKube::start().await?;
    let dir = tempfile::tempdir()?;
    let path = kube.write_kubeconfig(dir.path())?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    assert_eq!(
        config.cluster_url.to_string().trim_end_matches('/'),
        kube.url()
    );
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config)?;
    let found = names(
        Api::<Namespace>::all(client.clone())
            .list(&ListParams::default())
            .await?,
    );
    assert_eq!(found, BUILTIN_NAMESPACES);

    let version = client.apiserver_version().await?;
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    let groups = client.list_api_groups().await?;
    assert!(
        groups
            .groups
            .iter()
            .any(|g| g.name == "coordination.k8s.io")
    );
    let core = client.list_core_api_resources("v1").await?;
    assert!(
        core.resources
            .iter()
            .any(|r| r.name == "secrets" && r.namespaced)
    );
    Ok(())
}

#[tokio::test]
async fn seeding_keeps_given_timestamps_and_direct_access_sees_api_writes() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    let seeded = kube.insert(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "old", "creationTimestamp": "2020-01-02T03:04:05Z", "labels": {"ttl": "1d"}},
    }))?;
    assert_eq!(
        seeded["metadata"]["creationTimestamp"],
        "2020-01-02T03:04:05Z"
    );
    let via_api = Api::<Namespace>::all(client.clone()).get("old").await?;
    assert_eq!(
        via_api
            .creation_timestamp()
            .map(|t| t.0.to_string())
            .as_deref(),
        Some("2020-01-02T03:04:05Z")
    );

    // Re-seeding replaces the object but keeps its identity.
    let reseeded =
        kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"}}))?;
    assert_eq!(reseeded["metadata"]["uid"], seeded["metadata"]["uid"]);
    assert_eq!(
        reseeded["metadata"]["creationTimestamp"],
        "2020-01-02T03:04:05Z"
    );
    assert!(reseeded["metadata"]["labels"].get("ttl").is_none());

    let orphan = kube.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ghost"}}));
    assert_eq!(orphan.map_err(|e| e.code()).unwrap_err(), 404);
    let unknown =
        kube.insert(json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}));
    assert_eq!(unknown.map_err(|e| e.code()).unwrap_err(), 404);

    Api::<ConfigMap>::namespaced(client.clone(), "old")
        .create(&PostParams::default(), &config_map("c", json!({})))
        .await?;
    assert_eq!(kube.list("configmaps", Some("old")).len(), 1);
    assert!(kube.remove("namespaces", None, "old").is_some());
    assert!(
        kube.list("configmaps", None).is_empty(),
        "removing a namespace removes its content"
    );
    assert!(
        Api::<Namespace>::all(client)
            .get_opt("old")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_the_port() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?; // opens a pooled connection
    let addr = kube.addr();
    kube.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens on {addr} any more"
    );
    Ok(())
}

/// A merge patch of one pod-template annotation, as a restart (`kubectl rollout restart`) sends.
fn restart_patch(at: &str) -> Patch<Value> {
    Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": at}}}}}))
}

fn workload(kind: &str, name: &str, replicas: i64) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
        },
    });
    if kind != "DaemonSet" {
        spec["replicas"] = json!(replicas);
    }
    json!({"apiVersion": "apps/v1", "kind": kind,
           "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

#[tokio::test]
async fn rollouts_the_test_drives_complete_after_reads() -> anyhow::Result<()> {
    let (kube, client) = setup().await?;
    kube.insert(workload("Deployment", "web", 3))?;
    let settled = kube
        .complete_rollout("deployments", "default", "web")
        .expect("seeded");
    assert_eq!(settled["status"]["observedGeneration"], 1);
    assert_eq!(settled["status"]["updatedReplicas"], 3);
    kube.set_rollout(
        "deployments",
        "default",
        "web",
        testbed::fakekube::Rollout::Completes { after_reads: 2 },
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    let patched = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &restart_patch("2026-12-01T00:00:00Z"),
        )
        .await?;
    assert_eq!(patched.metadata.generation, Some(2));
    let status = |d: &Deployment| d.status.clone().expect("status");
    for read in 0..2 {
        let d = deployments.get("web").await?;
        let s = status(&d);
        assert_eq!(s.observed_generation, Some(2), "read {read}");
        assert!(s.updated_replicas.unwrap_or(0) < 3, "still rolling: {s:?}");
        assert_eq!(
            s.conditions
                .unwrap_or_default()
                .iter()
                .find(|c| c.type_ == "Progressing")
                .map(|c| c.reason.clone()),
            Some(Some("ReplicaSetUpdated".to_string()))
        );
    }
    // The third read, here through a list, sees it complete.
    let listed = deployments.list(&ListParams::default()).await?;
    let s = status(&listed.items[0]);
    assert_eq!(
        (
            s.observed_generation,
            s.replicas,
            s.updated_replicas,
            s.available_replicas
        ),
        (Some(2), Some(3), Some(3), Some(3))
    );
    // Stays complete, and a metadata-only write starts nothing.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
        )
        .await?;
    assert_eq!(
        status(&deployments.get("web").await?).updated_replicas,
        Some(3)
    );

    // A workload without a registered behaviour keeps the fake's old rule: no controller.
    kube.insert(workload("Deployment", "plain", 1))?;
    deployments
        .patch("plain", &PatchParams::default(), &restart_patch("now"))
        .await?;
    assert!(deployments.get("plain").await?.status.is_none());
    Ok(())
}

#[tokio::test]
async fn a_rollout_can_exceed_its_deadline_stall_or_wait_while_paused() -> anyhow::Result<()> {
    use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
    use testbed::fakekube::Rollout;
    let (kube, client) = setup().await?;
    for (kind, name) in [
        ("Deployment", "failing"),
        ("Deployment", "paused"),
        ("StatefulSet", "db"),
        ("DaemonSet", "agent"),
    ] {
        kube.insert(workload(kind, name, 2))?;
    }
    kube.set_rollout(
        "deployments",
        "default",
        "failing",
        Rollout::ExceedsDeadline,
    );
    kube.set_rollout(
        "deployments",
        "default",
        "paused",
        Rollout::Completes { after_reads: 0 },
    );
    kube.set_rollout(
        "statefulsets",
        "default",
        "db",
        Rollout::Completes { after_reads: 1 },
    );
    kube.set_rollout("daemonsets", "default", "agent", Rollout::Stalls);

    let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
    deployments
        .patch("failing", &PatchParams::default(), &restart_patch("t1"))
        .await?;
    let failing = deployments.get("failing").await?.status.expect("status");
    let progressing = failing
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .expect("condition");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );

    deployments
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await?;
    deployments
        .patch("paused", &PatchParams::default(), &restart_patch("t1"))
        .await?;
    let paused = deployments.get("paused").await?.status.expect("status");
    assert_eq!(paused.observed_generation, Some(3));
    assert_eq!(paused.updated_replicas, None, "nothing rolls while paused");
    assert_eq!(
        paused.conditions.unwrap_or_default()[0].reason.as_deref(),
        Some("DeploymentPaused")
    );
    // Resumed: the next read completes it.
    deployments
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await?;
    let resumed = deployments.get("paused").await?.status.expect("status");
    assert_eq!(
        (resumed.observed_generation, resumed.updated_replicas),
        (Some(4), Some(2))
    );

    let sets = Api::<StatefulSet>::namespaced(client.clone(), "default");
    sets.patch("db", &PatchParams::default(), &restart_patch("t1"))
        .await?;
    let first = sets.get("db").await?.status.expect("status");
    assert_ne!(first.current_revision, first.update_revision, "in progress");
    let done = sets.get("db").await?.status.expect("status");
    assert_eq!(done.current_revision, done.update_revision);
    assert_eq!(
        (done.ready_replicas, done.updated_replicas),
        (Some(2), Some(2))
    );

    let daemons = Api::<DaemonSet>::namespaced(client.clone(), "default");
    daemons
        .patch("agent", &PatchParams::default(), &restart_patch("t1"))
        .await?;
    for _ in 0..5 {
        let s = daemons.get("agent").await?.status.expect("status");
        assert_eq!(s.observed_generation, Some(2));
        assert_eq!(
            s.updated_number_scheduled,
            Some(0),
            "a stalled rollout never finishes"
        );
    }
    Ok(())
}

#[tokio::test]
async fn daemonsets_and_external_secrets_are_served() -> anyhow::Result<()> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
    let (kube, client) = setup().await?;
    let daemons = Api::<DaemonSet>::namespaced(client.clone(), "default");
    let created = daemons
        .create(
            &PostParams::default(),
            &object(workload("DaemonSet", "agent", 1)),
        )
        .await?;
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        names(
            Api::<DaemonSet>::all(client.clone())
                .list(&ListParams::default())
                .await?
                .items
        ),
        ["agent"]
    );

    let gvk = GroupVersionKind::gvk("external-secrets.io", "v1beta1", "ExternalSecret");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "externalsecrets");
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), "default", &resource);
    let mut es = DynamicObject::new("db-creds", &resource);
    es.data = json!({"spec": {
        "refreshInterval": "1h",
        "secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
        "target": {"name": "db-creds"},
        "data": [{"secretKey": "password", "remoteRef": {"key": "apps/db", "property": "password"}}],
    }});
    let created = api.create(&PostParams::default(), &es).await?;
    let rv = created.metadata.resource_version.clone();
    let annotated = api
        .patch(
            "db-creds",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"force-sync": "1764547200"}}})),
        )
        .await?;
    assert_ne!(annotated.metadata.resource_version, rv);
    assert_eq!(
        kube.get("externalsecrets", Some("default"), "db-creds")
            .expect("stored")["metadata"]["annotations"]["force-sync"],
        "1764547200"
    );
    // A stale resourceVersion conflicts, as for built-in kinds.
    let mut stale = annotated.clone();
    stale.metadata.resource_version = rv;
    let status = status_of(
        api.replace("db-creds", &PostParams::default(), &stale)
            .await,
    );
    assert_eq!(status.code, 409);
    Ok(())
}
