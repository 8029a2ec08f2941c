//! Broker loss: the Kafka broker freezes (SIGSTOP: connections open, nothing answered, as in a
//! partition) while `ttl-teardown --execute` is deleting. No resource may be removed without
//! its intent on the broker, the run must end `partial` within about one delivery timeout
//! (not one per remaining publish), and once the broker is back the next run finishes the work.

use std::time::{Duration, Instant};

use faults::text;
use serde_json::Value;
use testbed::faultproxy::{Fault, Route, Rule};
use testbed::kafka::consume_all;

use crate::ttl::Account;

/// The run's `kafka.delivery_timeout`.
const DELIVERY: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_stops_deletions_at_the_last_acknowledged_intent_and_the_next_run_finishes()
{
    let account = Account::seeded().await;
    // AWS slowed down so the run is still deleting when the broker freezes.
    let proxy = account.proxy(1).await;
    proxy.set_rules(vec![Rule::new(
        Route::Any,
        Fault::Latency(Duration::from_millis(150)),
        1.0,
    )]);
    let config = account.config(&proxy.endpoint(), &format!("{}s", DELIVERY.as_secs()));
    let (args, env) = account.command(&config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = faults::spawn("ttl-teardown", account.dir.path(), &args, &env);

    // Freeze the broker once the first intent is on it.
    let bootstrap = account.broker.bootstrap();
    let mut seen = 0;
    for _ in 0..300 {
        let records = consume_all(
            &bootstrap,
            "resource-deleted",
            1000,
            Duration::from_millis(200),
        )
        .await
        .expect("read the audit");
        seen = records
            .iter()
            .filter_map(|(_, p)| serde_json::from_slice::<Value>(p).ok())
            .filter(|e| e["phase"] == "intent" && e["dry_run"] == false)
            .count();
        if seen > 0 {
            break;
        }
    }
    assert!(seen > 0, "the run published no intent");
    account.broker.freeze().expect("freeze");
    let frozen = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the run ends")
        .expect("wait");
    let gave_up = frozen.elapsed();
    account.broker.thaw().expect("thaw");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial\n{stdout}\n{stderr}");
    let event: Value = serde_json::from_str(&stdout).expect("result event on stdout");
    assert_eq!(event["status"], "partial");
    let errors = event["errors"].to_string();
    assert!(
        errors.contains("audit") || errors.contains("kafka"),
        "the error says the audit sink failed: {errors}"
    );

    // Every resource removed had its intent on the broker.
    let audit = account.audit().await;
    let intents = Account::ids(&audit, "intent");
    let removed = account.removed().await;
    let unannounced: Vec<&String> = removed
        .iter()
        .filter(|id| !account.announced(id, &intents))
        .collect();
    assert!(
        unannounced.is_empty(),
        "removed without an intent on the broker: {unannounced:#?}\nintents: {intents:#?}"
    );
    println!(
        "broker frozen after {seen} intent(s): the run ended partial {:.1} s later (delivery \
         timeout {} s), {} resource(s) removed, 0 without an acknowledged intent",
        gave_up.as_secs_f64(),
        DELIVERY.as_secs(),
        removed.len()
    );
    // One timeout for the publish that failed, then no more publishing: not one per record.
    assert!(
        gave_up < DELIVERY * 4,
        "{gave_up:?} after the broker froze: every remaining publish waited its own timeout?"
    );

    // The broker is back: the next run finishes, and the one after finds nothing left to do.
    let out = account.execute(&account.aws.moto.endpoint()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let second: Value = serde_json::from_str(&stdout).expect("event");
    let out = account.execute(&account.aws.moto.endpoint()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let third: Value = serde_json::from_str(&stdout).expect("event");
    assert!(
        second["details"]["deleted"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "the second run finished the work: {second:#}"
    );
    assert_eq!(
        third["details"]["deleted"].as_array().map(Vec::len),
        Some(0),
        "nothing left: {third:#}"
    );
}
