//! Broker loss: the Kafka broker freezes (SIGSTOP: connections open, nothing answered, as in a
//! partition) while `ttl-teardown --execute` is deleting — at its second removal call, which
//! the fault proxy holds until the broker is frozen, so the moment does not depend on timing. No resource may be removed without
//! its intent on the broker, the run must end `partial` within about one delivery timeout
//! (not one per remaining publish), and once the broker is back the next run finishes the work.

use std::time::{Duration, Instant};

use faults::text;
use serde_json::Value;
use testbed::faultproxy::TripPoint;

use crate::ttl::{Account, removal};

/// The run's `kafka.delivery_timeout`.
const DELIVERY: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_stops_deletions_at_the_last_acknowledged_intent_and_the_next_run_finishes()
{
    let account = Account::seeded().await;
    // Held at its second removal call: the first intent is acknowledged (and the first removal
    // made), the second intent too; the broker freezes there, then the call goes on.
    let proxy = account.proxy(1).await;
    let fired = proxy.trip(removal(), 2, TripPoint::Before);
    let config = account.config(&proxy.endpoint(), &format!("{}s", DELIVERY.as_secs()));
    let (args, env) = account.command(&config);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = faults::spawn("ttl-teardown", account.dir.path(), &args, &env);
    tokio::time::timeout(Duration::from_secs(120), fired.notified())
        .await
        .expect("the run reached its second removal call");
    account.broker.freeze().expect("freeze");
    let frozen = Instant::now();
    proxy.release_trip();
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
    let seen = intents.len();
    println!(
        "broker frozen at the second removal call ({seen} intents on the broker): the run ended partial {:.1} s later (delivery \
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
