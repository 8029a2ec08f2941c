//! Throttling: a share (30 % by default, `GOV_FAULTS_RATE`) of every AWS call of an `--execute`
//! TTL run answered with the service's own throttling error (EC2 `RequestLimitExceeded` 503,
//! the query APIs' `Throttling` 400, S3 `SlowDown`, Lambda and EKS 429) by the fault proxy in
//! front of moto. The run must end where the same run without faults ends: the same resources
//! deleted (by name, kind for kind), the same ones left, the same result, and no failure left
//! unreported. The figures (calls, throttled answers, the job's own retry passes) are printed.

#[path = "../../../inventory/tests/providers/bed.rs"]
#[allow(dead_code)]
mod seed;

use std::collections::{BTreeMap, BTreeSet};

use faults::{rate, run, seed as seed_of, text};
use inventory::Resource;
use serde_json::Value;
use testbed::fakekube::FakeKube;
use testbed::faultproxy::{Fault, FaultProxy, Route, Rule};
use testbed::kafka::{Tansu, consume_all};

/// The evaluation instant of every run.
const NOW: &str = "2026-11-23T12:00:00Z";
/// Created 7 days and 5 hours before [`NOW`] with a 7-day TTL: the deadline passed 5 hours ago.
const CREATED: &str = "2026-11-16T07:00:00Z";
/// That deadline, recorded as warned 24 hours ahead.
const WARNED: &str = "warn-24h@2026-11-23T07:00:00Z";

const TOPICS: [&str; 4] = [
    "security-job-results",
    "resource-expiring",
    "tag-violation",
    "resource-deleted",
];

/// Tags of an expired, warned development resource named `name`.
fn expired(name: &str) -> BTreeMap<String, String> {
    let mut t = seed::eligible(name);
    t.insert("created_at".into(), CREATED.into());
    t.insert("ttl-notified-stage".into(), WARNED.into());
    t
}

/// What is left in the account: (kind, Name tag or `-`) → how many, with the state each is in.
/// Ids differ between two moto servers; names and kinds do not.
fn census(all: &[Resource]) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for r in all {
        let name = r.tags.get("Name").cloned().unwrap_or_else(|| "-".into());
        let state = r.state.clone().unwrap_or_default();
        *out.entry((r.kind.to_string(), name, state)).or_insert(0) += 1;
    }
    out
}

/// One account as the TTL run finds it, and what the run did.
struct Outcome {
    before: BTreeMap<(String, String, String), usize>,
    after: BTreeMap<(String, String, String), usize>,
    /// (kind, Name) of every resource with a `deleted` outcome.
    deleted: BTreeSet<(String, String)>,
    event: Value,
    stats: Option<testbed::faultproxy::Stats>,
}

/// Seeds a fresh moto with the platform (every kind, expired) and kept resources, then runs
/// `ttl-teardown --execute` against it, through a fault proxy throttling `throttled` of the
/// calls when given.
async fn teardown(throttled: Option<f64>, seed_value: u64) -> Outcome {
    let aws = seed::Bed::start().await.expect("moto");
    aws.platform("", &expired("x")).await.expect("platform");
    // Kept: production, and not expired yet.
    let ami = aws.ami().await.expect("ami");
    let prod = seed::with(expired("keep-prod"), "environment", "prod");
    aws.instance(&ami, &[], &prod).await.expect("prod instance");
    let fresh = seed::with(
        seed::eligible("keep-fresh"),
        "created_at",
        "2026-11-22T12:00:00Z",
    );
    aws.volume(8, &fresh).await.expect("fresh volume");
    let before_list = seed::list(&aws.providers()).await.expect("listing");
    let names: BTreeMap<String, (String, String)> = before_list
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                (
                    r.kind.to_string(),
                    r.tags.get("Name").cloned().unwrap_or_else(|| "-".into()),
                ),
            )
        })
        .collect();

    // The run lock's Lease lives in Kubernetes (the stand-in; no Kubernetes source is listed).
    let kube = FakeKube::start().await.expect("fake kube");
    kube.insert(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "governance-jobs"}}))
        .expect("namespace");
    let broker = Tansu::start().await.expect("tansu");
    for t in TOPICS {
        broker.create_topic(t, 1).await.expect("topic");
    }
    let proxy = match throttled {
        Some(p) => {
            let proxy = FaultProxy::start(&aws.moto.endpoint(), seed_value)
                .await
                .expect("proxy");
            proxy.set_rules(vec![Rule::new(Route::Any, Fault::Throttle, p)]);
            Some(proxy)
        }
        None => None,
    };
    let endpoint = proxy
        .as_ref()
        .map_or_else(|| aws.moto.endpoint(), FaultProxy::endpoint);
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        repo.join("examples/whitelist.yaml"),
        dir.path().join("whitelist.yaml"),
    )
    .expect("whitelist");
    let kubeconfig = kube.write_kubeconfig(dir.path()).expect("kubeconfig");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "aws:\n  regions: [{region}]\n  endpoint_url: {endpoint}\n  accounts: [{{id: \"{account}\"}}]\nkubernetes:\n  kubeconfig: {kubeconfig}\n  cluster_name: test\nkafka:\n  delivery_timeout: 5s\njob:\n  whitelist: whitelist.yaml\n  allowed_accounts: [\"{account}\"]\n  sources:\n    aws: true\n  caps:\n    max_percent: 100\n    max_deletions: 100\n  waiting:\n    timeout: 60s\n    interval: 200ms\n",
            region = seed::REGION,
            account = seed::ACCOUNT,
            kubeconfig = kubeconfig.display(),
        ),
    )
    .expect("config");
    let mut env: Vec<(&str, String)> = aws.moto.env();
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("GOV_KAFKA_BROKERS", broker.bootstrap()));
    let out = run(
        "ttl-teardown",
        dir.path(),
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--now",
            NOW,
            "--output",
            "json",
            "--execute",
        ],
        &env,
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "throttled {throttled:?}: the run must succeed, retrying what was throttled\nstdout: {stdout}\nstderr: {stderr}"
    );
    let event: Value = serde_json::from_str(&stdout).expect("result event");
    let audit = consume_all(
        &broker.bootstrap(),
        "resource-deleted",
        1000,
        std::time::Duration::from_secs(3),
    )
    .await
    .expect("audit");
    let deleted = audit
        .iter()
        .filter_map(|(_, p)| serde_json::from_slice::<Value>(p).ok())
        .filter(|e| e["phase"] == "outcome" && e["result"] == "deleted")
        .filter_map(|e| e["resource"].as_str().and_then(|id| names.get(id)).cloned())
        .collect();
    let after = seed::list(&aws.providers()).await.expect("listing after");
    Outcome {
        before: census(&before_list),
        after: census(&after),
        deleted,
        event,
        stats: proxy.map(|p| p.stats()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_run_ends_where_the_unthrottled_one_does() {
    let share = rate(0.3);
    let seed_value = seed_of(20261202);
    let calm = teardown(None, seed_value).await;
    let rough = teardown(Some(share), seed_value).await;

    assert_eq!(calm.before, rough.before, "both accounts seeded alike");
    assert!(
        calm.deleted.len() >= 12,
        "the platform's expired resources were deleted: {:?}",
        calm.deleted
    );
    assert!(
        calm.deleted
            .iter()
            .all(|(_, name)| !name.starts_with("keep-")),
        "{:?}",
        calm.deleted
    );
    assert_eq!(rough.deleted, calm.deleted, "the same resources deleted");
    assert_eq!(rough.after, calm.after, "the same resources left");
    // Ids differ between the two servers; the counts may not.
    let count = |e: &Value, key: &str| e["details"][key].as_array().map(Vec::len);
    for key in ["deleted", "not_deleted", "pending"] {
        assert_eq!(
            count(&rough.event, key),
            count(&calm.event, key),
            "details.{key}"
        );
    }
    assert_eq!(rough.event["status"], "success");
    assert_eq!(
        rough.event["errors"], calm.event["errors"],
        "nothing skipped"
    );

    let stats = rough.stats.expect("stats");
    let throttled = stats.total("throttle");
    let requests = stats.total_requests();
    println!(
        "throttling {:.0} % (seed {seed_value}): {requests} AWS requests, {throttled} throttled \
         ({:.1} %) and retried by the SDK; job retry passes re-tried {} deletions; {} deleted, \
         same end state as the run without faults",
        share * 100.0,
        throttled as f64 * 100.0 / requests.max(1) as f64,
        rough.event["details"]["retries"],
        rough.deleted.len(),
    );
    for (service, n) in &stats.requests {
        let t = stats
            .faults
            .get(&(service.clone(), "throttle".to_string()))
            .copied()
            .unwrap_or(0);
        println!("  {service:<22} {n:>5} requests {t:>5} throttled");
    }
    if share > 0.0 {
        assert!(throttled > 0, "the proxy throttled nothing: {stats:?}");
    }
}
