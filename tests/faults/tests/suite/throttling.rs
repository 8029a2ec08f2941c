//! Throttling: a share (30 % by default, `GOV_FAULTS_RATE`) of every AWS call of an `--execute`
//! TTL run answered with the service's own throttling error (EC2 `RequestLimitExceeded` 503,
//! the query APIs' `Throttling` 400, S3 `SlowDown`, Lambda and EKS 429) by the fault proxy in
//! front of moto. The run must end where the same run without faults ends: the same resources
//! deleted (by name, kind for kind), the same ones left, the same result, and no failure left
//! unreported. The figures (calls, throttled answers, the job's own retry passes) are printed.

use std::collections::BTreeSet;

use faults::{rate, seed, text};
use serde_json::Value;
use testbed::faultproxy::{Fault, Route, Rule, Stats};

use crate::ttl::{Account, Census};

struct Outcome {
    before: Census,
    after: Census,
    /// (kind, Name) of every resource with a `deleted` outcome.
    deleted: BTreeSet<(String, String)>,
    event: Value,
    stats: Option<Stats>,
}

/// A fresh account taken apart, through a proxy throttling `throttled` of the calls if given.
async fn teardown(throttled: Option<f64>, seed_value: u64) -> Outcome {
    let account = Account::seeded().await;
    let proxy = match throttled {
        Some(p) => {
            let proxy = account.proxy(seed_value).await;
            proxy.set_rules(vec![Rule::new(Route::Any, Fault::Throttle, p)]);
            Some(proxy)
        }
        None => None,
    };
    let endpoint = proxy
        .as_ref()
        .map_or_else(|| account.aws.moto.endpoint(), |p| p.endpoint());
    let out = account.execute(&endpoint).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "throttled {throttled:?}: the run must succeed, retrying what was throttled\nstdout: {stdout}\nstderr: {stderr}"
    );
    let event: Value = serde_json::from_str(&stdout).expect("result event");
    let audit = account.audit().await;
    Outcome {
        deleted: account.named(&audit, "outcome", Some("deleted")),
        before: account.before.clone(),
        after: crate::ttl::census(&account.listed().await),
        event,
        stats: proxy.map(|p| p.stats()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_run_ends_where_the_unthrottled_one_does() {
    let share = rate(0.3);
    let seed_value = seed(20261202);
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
    assert_eq!(
        rough.deleted, calm.deleted,
        "the same resources deleted; the throttled run's event: {:#}",
        rough.event
    );
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
         ({:.1} %) and retried by the SDK; the job's retry passes re-tried {} deletions (without \
         faults: {}); {} deleted, the same end state as the run without faults",
        share * 100.0,
        throttled as f64 * 100.0 / requests.max(1) as f64,
        rough.event["details"]["retries"],
        calm.event["details"]["retries"],
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

/// Throttled for good where it matters: every Lambda `ListTags` answered 429 until the SDK's
/// retries run out. The function's tags are unreadable, so it is protected (never deleted on
/// tags nobody could read) and what waits for it (its role) is held — and the run says so: it
/// ends `partial`, naming the function, not as a quiet success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_that_cannot_be_read_protect_the_resource_and_make_the_run_partial() {
    let account = Account::seeded().await;
    let proxy = account.proxy(1).await;
    proxy.set_rules(vec![Rule::new(
        Route::PathPrefix("/2017-03-31/tags/".into()),
        Fault::Throttle,
        1.0,
    )]);
    let out = account.execute(&proxy.endpoint()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial\n{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    assert_eq!(event["status"], "partial");
    let errors = event["errors"].to_string();
    assert!(
        errors.contains("function:api") && errors.contains("could not be read"),
        "{errors}"
    );
    let audit = account.audit().await;
    let deleted = account.named(&audit, "outcome", Some("deleted"));
    for kind in ["lambda-function", "iam-role"] {
        assert!(
            !deleted.iter().any(|(k, _)| k == kind),
            "{kind} must stay: {deleted:?}"
        );
    }
    assert!(
        deleted.iter().any(|(k, _)| k == "ec2-instance"),
        "the rest is still taken apart: {deleted:?}"
    );
    assert!(proxy.stats().total("throttle") >= 2, "the SDK retried");
}
