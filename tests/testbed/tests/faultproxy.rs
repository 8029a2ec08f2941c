//! The fault proxy in front of real moto and the fake Kubernetes API: it forwards untouched,
//! answers throttling in each service's own shape, fails, cuts and holds requests, and decides
//! the same way for the same seed.

use std::time::{Duration, Instant};

use testbed::fakekube::FakeKube;
use testbed::faultproxy::{Fault, FaultProxy, Route, Rule};
use testbed::moto::Moto;

/// A query-protocol call as the SDK sends it (moto routes on the credential scope).
fn query(
    http: &reqwest::Client,
    endpoint: &str,
    service: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{endpoint}/"))
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
            ),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
}

const DESCRIBE_REGIONS: &str = "Action=DescribeRegions&Version=2016-11-15";
const DESCRIBE_DBS: &str = "Action=DescribeDBInstances&Version=2014-10-31";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_throttles_in_each_services_shape_fails_cuts_and_holds() {
    let moto = Moto::start().await.expect("moto");
    let http = reqwest::Client::new();
    let proxy = FaultProxy::start(&moto.endpoint(), 1).await.expect("proxy");
    let p = proxy.endpoint();

    // No rules: moto's own answer.
    let r = query(&http, &p, "ec2", DESCRIBE_REGIONS)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains("us-east-1"));

    // Throttled: EC2's 503 RequestLimitExceeded, RDS's 400 Throttling.
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Throttle, 1.0)]);
    let r = query(&http, &p, "ec2", DESCRIBE_REGIONS)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("<Code>RequestLimitExceeded</Code>") && body.contains("<Errors>"),
        "{body}"
    );
    let r = query(&http, &p, "rds", DESCRIBE_DBS)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("<ErrorResponse>") && body.contains("<Code>Throttling</Code>"),
        "{body}"
    );

    // A route: only RDS throttled, EC2 passes.
    proxy.set_rules(vec![Rule::new(
        Route::Aws("rds".into()),
        Fault::Throttle,
        1.0,
    )]);
    let ec2 = query(&http, &p, "ec2", DESCRIBE_REGIONS).send().await;
    assert_eq!(ec2.expect("send").status(), 200);
    let rds = query(&http, &p, "rds", DESCRIBE_DBS).send().await;
    assert_eq!(rds.expect("send").status(), 400);

    // A plain 500.
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(500), 1.0)]);
    let r = query(&http, &p, "ec2", DESCRIBE_REGIONS).send().await;
    assert_eq!(r.expect("send").status(), 500);

    // Reset mid-body: the status arrives, the body is cut short.
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::ResetMidBody, 1.0)]);
    let r = query(&http, &p, "ec2", DESCRIBE_REGIONS)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "the body must not arrive whole");

    // Blackhole: nothing comes back; the client's own timeout ends it.
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Blackhole, 1.0)]);
    let r = query(&http, &p, "ec2", DESCRIBE_REGIONS)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));

    // Latency: forwarded, after the delay.
    proxy.set_rules(vec![Rule::new(
        Route::Any,
        Fault::Latency(Duration::from_millis(200)),
        1.0,
    )]);
    let start = Instant::now();
    let r = query(&http, &p, "ec2", DESCRIBE_REGIONS).send().await;
    assert_eq!(r.expect("send").status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(200));

    let stats = proxy.stats();
    for fault in ["throttle", "status", "reset", "blackhole", "latency"] {
        assert!(stats.total(fault) >= 1, "{fault}: {stats:?}");
    }
    assert_eq!(stats.requests.get("ec2").copied(), Some(7), "{stats:?}");
    assert_eq!(stats.requests.get("rds").copied(), Some(2), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_is_throttled_with_429_retry_after_and_a_status() {
    let kube = FakeKube::start().await.expect("fake kube");
    let proxy = FaultProxy::start(&kube.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::NotAws, Fault::Throttle, 1.0)]);
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/namespaces", proxy.endpoint()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let status: serde_json::Value = r.json().await.expect("json");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["code"], 429);
}

/// Which of 60 calls (20 distinct, 3 times each) are throttled at 30 %, for `seed`.
async fn pattern(moto: &Moto, seed: u64) -> Vec<u16> {
    let proxy = FaultProxy::start(&moto.endpoint(), seed)
        .await
        .expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Throttle, 0.3)]);
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for _round in 0..3 {
        for i in 0..20 {
            let body =
                format!("{DESCRIBE_REGIONS}&Filter.1.Name=region-name&Filter.1.Value.1=r{i}");
            let r = query(&http, &proxy.endpoint(), "ec2", &body)
                .send()
                .await
                .expect("send");
            out.push(r.status().as_u16());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_throttles_the_same_calls_and_another_seed_others() {
    let moto = Moto::start().await.expect("moto");
    let a = pattern(&moto, 7).await;
    let b = pattern(&moto, 7).await;
    let c = pattern(&moto, 8).await;
    assert_eq!(a, b, "same seed, same decisions");
    assert_ne!(a, c, "another seed, other decisions");
    let throttled = a.iter().filter(|s| **s == 503).count();
    assert!((5..=35).contains(&throttled), "{throttled} of 60 at 30 %");
    assert!(a.iter().all(|s| *s == 200 || *s == 503), "{a:?}");
}
