//! Sinks and APIs down, one at a time, through the fault proxy: the TTL job's documented exit
//! code, event and message for each.
//!
//! - The Pushgateway answering 503: the run's results could not all be published — exit 1,
//!   the error names the Pushgateway, the result event is still on Kafka; the next push, the
//!   Pushgateway back, lands.
//! - The Kubernetes API answering 503 when an `--execute` run takes its lock: refused before
//!   any side effect — exit 2, the message names the lock, nothing deleted.
//! - The Kubernetes API throttling (429 with `Retry-After`) the lock: refused the same way,
//!   never a run without its lock.

use faults::text;
use serde_json::Value;
use testbed::faultproxy::{Fault, FaultProxy, Route, Rule};
use testbed::kafka::consume_all;
use testbed::pushgateway::Pushgateway;

use crate::ttl::Account;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushgateway_down_is_exit_1_with_the_event_on_kafka_and_kubernetes_down_refuses_execute() {
    let account = Account::seeded().await;
    let moto = account.aws.moto.endpoint();

    // The Pushgateway answers 503 to everything.
    let gateway = Pushgateway::start().await.expect("pushgateway");
    let proxy = FaultProxy::start(&gateway.url(), 1).await.expect("proxy");
    proxy.set_rules(vec![Rule::new(Route::Any, Fault::Status(503), 1.0)]);
    let shared = format!("pushgateway:\n  url: {}\n", proxy.endpoint());
    let config = account.config_with(&moto, "5s", &shared, None);
    let out = account.run(&config, false).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("event");
    // The event is built before the push: the log says what failed.
    assert!(
        stderr.to_lowercase().contains("pushgateway") && stderr.contains("503"),
        "the log names the Pushgateway and its answer:\n{stderr}"
    );
    let results = consume_all(
        &account.broker.bootstrap(),
        "security-job-results",
        10,
        std::time::Duration::from_secs(3),
    )
    .await
    .expect("results");
    assert!(
        results
            .iter()
            .filter_map(|(_, p)| serde_json::from_slice::<Value>(p).ok())
            .any(|e| e["run_id"] == event["run_id"]),
        "the result event is on Kafka all the same"
    );
    assert!(proxy.stats().total("status") >= 1);
    // Back: the same dry run pushes and succeeds.
    proxy.set_rules(vec![]);
    let out = account.run(&config, false).await;
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let metrics = gateway.metrics_json().await.expect("metrics").to_string();
    assert!(metrics.contains("ttl-teardown"), "{metrics}");

    // The Kubernetes API answers 503, then throttles: an --execute run cannot take its lock.
    let kube = FaultProxy::start(&account.kube.url(), 1)
        .await
        .expect("proxy");
    for fault in [Fault::Status(503), Fault::Throttle] {
        kube.set_rules(vec![Rule::new(Route::Any, fault.clone(), 1.0)]);
        let config = account.config_with(&moto, "5s", "", Some(&kube.endpoint()));
        let out = account.run(&config, true).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{fault:?}: refused\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("run lock") || stdout.contains("run lock"),
            "{fault:?}: the message names the lock\n{stderr}"
        );
        let audit = account.audit().await;
        assert!(
            Account::ids(&audit, "intent").is_empty(),
            "{fault:?}: nothing was even announced"
        );
        assert!(
            account.removed().await.is_empty(),
            "{fault:?}: nothing deleted"
        );
    }
}
